//! The lab's data centre: a router, three control-plane nodes on one L2 segment, a Lease server and
//! a client behind the router, each in its own network namespace.
//!
//! ```text
//!   client ──(10.98.0.0/24)── router ── switch (bridge br0, 10.99.0.0/24 + fd99::/64) ── n1, n2, n3
//!                             BIRD|FRR        └─ Lease server 10.99.0.2:7443
//! ```
//! The segment is a bridge inside its own namespace, so a dead node is noticed by timers or BFD,
//! never by the router's link going down. Each node runs `cpvip run` plus stand-in 6443/9345
//! listeners; the VIP (10.99.200.1 and fd99:200::1) is bound on the serving node's `lo`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config_text;
use crate::netns::{LabError, Netns, Proc, Result, TempDir, veth, wait_until};
pub use crate::plan::{NodePlan, Plan};
use crate::router::{Bird, Frr, FrrConfig, FrrDaemons};

/// UDP echo port of the stand-ins (probed by the client).
pub const UDP_ECHO_PORT: u16 = 7946;
/// TCP hello port of the stand-ins (probed by the client).
pub const TCP_HELLO_PORT: u16 = 7947;
/// The VIP keepalived's VRRP moves in the comparison bench (on the segment itself).
pub const KEEPALIVED_VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 200);
/// Port of cpvip's HTTP endpoint inside each node.
pub const HTTP_PORT: u16 = 2112;
/// Bearer token of the lab's Lease server, also required by the 6443 stand-ins' `/readyz`.
pub const TOKEN: &str = "cpvip-lab-token";

/// Which router runs in the router namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterKind {
    /// BIRD 2.
    Bird,
    /// FRR (zebra + bgpd, + bfdd with BFD).
    Frr,
}

/// How the lab is built.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// The router.
    pub router: RouterKind,
    /// cpvip's `--mode`.
    pub mode: String,
    /// BFD between the router and every node.
    pub bfd: bool,
    /// Number of control-plane nodes (1-9).
    pub nodes: usize,
    /// The `cpvip` binary.
    pub cpvip: PathBuf,
    /// The `cpvip-lab` binary (runs the stand-ins and the Lease server).
    pub lab_bin: PathBuf,
    /// Namespace naming: `Some(tag)` for tests (unique `cpvt-` names, removed on drop), `None` for
    /// the hands-on lab (fixed `cpvlab-` names that `cpvip-lab down` finds).
    pub test_tag: Option<String>,
    /// Extra `cpvip run` flags for every node.
    pub extra_args: Vec<String>,
    /// BGP hold time on both sides.
    pub hold_secs: u16,
    /// Start cpvip on the nodes (false: the caller starts its own daemon, e.g. keepalived).
    pub start_cpvip: bool,
}

impl LabConfig {
    /// Defaults for a lab with binaries in `bin_dir`.
    pub fn new(bin_dir: &Path) -> Self {
        Self {
            router: RouterKind::Bird,
            mode: "leader".into(),
            bfd: false,
            nodes: 3,
            cpvip: bin_dir.join("cpvip"),
            lab_bin: bin_dir.join("cpvip-lab"),
            test_tag: None,
            extra_args: Vec::new(),
            hold_secs: 3,
            start_cpvip: true,
        }
    }
}

/// The running router.
#[derive(Debug)]
pub enum Router {
    /// BIRD 2.
    Bird(Bird),
    /// FRR.
    Frr(Frr),
}

/// One control-plane node.
#[derive(Debug)]
pub struct Node {
    /// Its plan entry.
    pub plan: NodePlan,
    /// Its directory (logs, switch files).
    pub dir: PathBuf,
    /// The cpvip daemon, when running.
    pub cpvip: Option<Proc>,
    /// Stand-in for 6443 (kube-apiserver).
    pub apiserver: Option<Proc>,
    /// Stand-in for 9345 (supervisor) plus the probe ports.
    pub supervisor: Option<Proc>,
    /// Its namespace (dropped last).
    pub ns: Netns,
}

/// A running lab. Dropping it stops everything and removes every namespace and file it made;
/// `cpvip-lab up` forgets it instead, and `cpvip-lab down` removes it later by name.
pub struct Lab {
    /// How it was built.
    pub config: LabConfig,
    /// Its addressing.
    pub plan: Plan,
    /// The router.
    pub router: Option<Router>,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The Lease server process.
    pub lease_server: Option<Proc>,
    /// The kubeconfig every node uses.
    pub kubeconfig: PathBuf,
    /// Router namespace.
    pub rtr: Netns,
    /// Client namespace.
    pub client: Netns,
    /// Switch (bridge) namespace, also home of the Lease server.
    pub sw: Netns,
    /// The lab's directory.
    pub dir: TempDir,
}

/// Prefix of the hands-on lab's namespaces.
pub const LAB_PREFIX: &str = "cpvlab-";
/// Where the hands-on lab keeps its files.
pub const LAB_DIR: &str = "/run/cpvip-lab";

fn make_ns(config: &LabConfig, role: &str) -> Result<Netns> {
    match &config.test_tag {
        Some(tag) => Netns::new(&format!("{tag}-{role}")),
        None => Netns::create(format!("{LAB_PREFIX}{role}")),
    }
}

impl Lab {
    /// Builds the lab and starts everything; `progress` receives one line per step.
    pub fn up(config: LabConfig, progress: &dyn Fn(&str)) -> Result<Self> {
        let plan = Plan::new(config.nodes, config.hold_secs);
        let dir = match &config.test_tag {
            Some(tag) => TempDir::new(tag)?,
            None => TempDir::at(PathBuf::from(LAB_DIR))?,
        };
        progress("creating namespaces: switch, router, client, nodes");
        let sw = make_ns(&config, "sw")?;
        let rtr = make_ns(&config, "rtr")?;
        let client = make_ns(&config, "cli")?;
        sw.add_bridge("br0")?;
        // Router: eth0 on the segment, eth1 towards the client.
        veth(&sw, "p-rtr", &rtr, "eth0")?;
        sw.exec(&["ip", "link", "set", "p-rtr", "master", "br0"])?;
        rtr.add_addr("eth0", &format!("{}/24", plan.router_v4))?;
        rtr.add_addr("eth0", &format!("{}/64", plan.router_v6))?;
        veth(&rtr, "eth1", &client, "eth0")?;
        rtr.add_addr("eth1", "10.98.0.1/24")?;
        rtr.add_addr("eth1", "fd98::1/64")?;
        rtr.enable_forwarding()?;
        // ECMP by L4 hash, as routers in front of anycast services do: each client flow sticks to
        // one node, and different flows spread over all of them.
        rtr.exec(&["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"])?;
        rtr.exec(&["sysctl", "-qw", "net.ipv6.fib_multipath_hash_policy=1"])?;
        client.add_addr("eth0", &format!("{}/24", plan.client_v4))?;
        client.add_addr("eth0", &format!("{}/64", plan.client_v6))?;
        client.exec(&["ip", "route", "add", "default", "via", "10.98.0.1"])?;
        client.exec(&["ip", "-6", "route", "add", "default", "via", "fd98::1"])?;
        // The Lease server lives on the bridge itself.
        sw.add_addr("br0", &format!("{}/24", plan.lease_server))?;

        let mut nodes = Vec::new();
        for np in &plan.nodes {
            let ns = make_ns(&config, &np.name)?;
            let port = format!("p-{}", np.name);
            veth(&sw, &port, &ns, "eth0")?;
            sw.exec(&["ip", "link", "set", &port, "master", "br0"])?;
            // Keep IPv6 addresses across a link cut, as a real server's config management would.
            ns.exec(&["sysctl", "-qw", "net.ipv6.conf.eth0.keep_addr_on_down=1"])?;
            ns.add_addr("eth0", &format!("{}/24", np.v4))?;
            ns.add_addr("eth0", &format!("{}/64", np.v6))?;
            let node_dir = dir.join(&np.name);
            std::fs::create_dir_all(&node_dir)
                .map_err(|e| LabError::Io(node_dir.display().to_string(), e))?;
            let node = Node {
                plan: np.clone(),
                dir: node_dir,
                cpvip: None,
                apiserver: None,
                supervisor: None,
                ns,
            };
            restore_routes(&node, &plan)?;
            nodes.push(node);
        }

        let mut lab = Self {
            // The RKE2 path: an EC P-256 client certificate, as in rke2.yaml.
            kubeconfig: dir.join("lease-server").join("kubeconfig-cert.yaml"),
            config,
            plan,
            router: None,
            nodes,
            lease_server: None,
            rtr,
            client,
            sw,
            dir,
        };
        progress(&format!(
            "starting the router ({:?}, AS {}){}",
            lab.config.router,
            lab.plan.router_asn,
            if lab.config.bfd {
                " with BFD 100 ms x 3"
            } else {
                ""
            }
        ));
        lab.start_router()?;
        progress(&format!(
            "starting the Lease server on {}:7443",
            lab.plan.lease_server
        ));
        lab.start_lease_server()?;
        progress("starting stand-in 6443/9345 listeners on every node");
        for i in 0..lab.nodes.len() {
            lab.start_standins(i)?;
        }
        if lab.config.start_cpvip {
            progress(&format!(
                "starting cpvip on {} nodes (mode {})",
                lab.nodes.len(),
                lab.config.mode
            ));
            for i in 0..lab.nodes.len() {
                lab.start_cpvip(i)?;
            }
        }
        Ok(lab)
    }

    fn start_router(&mut self) -> Result<()> {
        let dir = self.dir.join("router");
        std::fs::create_dir_all(&dir).map_err(|e| LabError::Io(dir.display().to_string(), e))?;
        self.router = Some(match self.config.router {
            RouterKind::Bird => Router::Bird(Bird::start(
                &self.rtr,
                &dir,
                &config_text::bird(&self.plan, self.config.bfd),
            )?),
            RouterKind::Frr => Router::Frr(Frr::start(
                &self.rtr,
                &dir,
                FrrDaemons {
                    bgp: true,
                    bfd: self.config.bfd,
                },
                &FrrConfig {
                    zebra: "hostname lab-router\n".into(),
                    bgpd: config_text::frr_bgpd(&self.plan, self.config.bfd),
                    bfdd: config_text::frr_bfdd(&self.plan),
                },
            )?),
        });
        Ok(())
    }

    /// Stops and starts the router (its sessions drop and must come back by themselves).
    pub fn restart_router(&mut self) -> Result<()> {
        self.router = None;
        self.start_router()
    }

    fn start_lease_server(&mut self) -> Result<()> {
        let dir = self.dir.join("lease-server");
        std::fs::create_dir_all(&dir).map_err(|e| LabError::Io(dir.display().to_string(), e))?;
        let listen = format!("{}:7443", self.plan.lease_server);
        let dir_s = dir.to_string_lossy().into_owned();
        let bin = self.config.lab_bin.to_string_lossy().into_owned();
        let log = self.dir.join("lease-server.log");
        self.lease_server = Some(self.sw.spawn(
            &[
                bin.as_str(),
                "lease-server",
                "--listen",
                &listen,
                "--dir",
                &dir_s,
                "--token",
                TOKEN,
            ],
            Some(&log),
        )?);
        if !wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            self.kubeconfig.exists()
        }) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(LabError::Timeout(
                Duration::from_secs(10),
                format!("Lease server did not start: {text}"),
            ));
        }
        Ok(())
    }

    /// Starts node `i`'s stand-in listeners (6443, and 9345 with the probe ports).
    pub fn start_standins(&mut self, i: usize) -> Result<()> {
        let bin = self.config.lab_bin.to_string_lossy().into_owned();
        let node = &mut self.nodes[i];
        let dir = node.dir.to_string_lossy().into_owned();
        let log = node.dir.join("standin.log");
        let name = node.plan.name.clone();
        let common = [
            bin.as_str(),
            "standin",
            "--node",
            name.as_str(),
            "--switch-dir",
            dir.as_str(),
        ];
        let mut api = common.to_vec();
        let pki = |f: &str| {
            self.dir
                .join("lease-server")
                .join(f)
                .to_string_lossy()
                .into_owned()
        };
        let (client_ca, cert, key) = (pki("ca.crt"), pki("server.crt"), pki("server.key"));
        api.extend([
            "--apiserver",
            "[::]:6443",
            "--token",
            TOKEN,
            "--client-ca",
            client_ca.as_str(),
            "--cert",
            cert.as_str(),
            "--key",
            key.as_str(),
        ]);
        node.apiserver = Some(node.ns.spawn(&api, Some(&log))?);
        let mut sup = common.to_vec();
        let tcp = format!("[::]:{TCP_HELLO_PORT}");
        let udp: Vec<String> = [
            IpAddr::V4(node.plan.v4),
            IpAddr::V6(node.plan.v6),
            IpAddr::V4(self.plan.vip_v4),
            IpAddr::V6(self.plan.vip_v6),
            IpAddr::V4(KEEPALIVED_VIP),
        ]
        .iter()
        .map(|ip| std::net::SocketAddr::new(*ip, UDP_ECHO_PORT).to_string())
        .collect();
        sup.extend(["--supervisor", "[::]:9345", "--tcp-hello", tcp.as_str()]);
        for addr in &udp {
            sup.extend(["--udp-echo", addr.as_str()]);
        }
        node.supervisor = Some(node.ns.spawn(&sup, Some(&log))?);
        Ok(())
    }

    /// The `cpvip run` argument list for node `i`.
    pub fn cpvip_args(&self, i: usize) -> Vec<String> {
        let node = &self.nodes[i];
        let bfd = if self.config.bfd { ",bfd" } else { "" };
        let mut args: Vec<String> = vec![
            "run".into(),
            "--vip".into(),
            self.plan.vip_v4.to_string(),
            "--vip".into(),
            self.plan.vip_v6.to_string(),
            "--mode".into(),
            self.config.mode.clone(),
            "--node-name".into(),
            node.plan.name.clone(),
            "--kubeconfig".into(),
            self.kubeconfig.to_string_lossy().into_owned(),
            "--bgp-as".into(),
            self.plan.node_asn.to_string(),
            "--bgp-peer".into(),
            format!("{},as={}{bfd}", self.plan.router_v4, self.plan.router_asn),
            "--bgp-peer".into(),
            format!("{},as={}{bfd}", self.plan.router_v6, self.plan.router_asn),
            "--bgp-hold-time".into(),
            format!("{}s", self.plan.hold_secs),
        ];
        args.extend(self.config.extra_args.iter().cloned());
        args
    }

    /// Starts cpvip on node `i` (its log goes to `<node dir>/cpvip.log`).
    pub fn start_cpvip(&mut self, i: usize) -> Result<()> {
        let args = self.cpvip_args(i);
        let bin = self.config.cpvip.to_string_lossy().into_owned();
        let node = &mut self.nodes[i];
        let mut argv = vec![bin];
        argv.extend(args);
        let log = node.dir.join("cpvip.log");
        node.cpvip = Some(node.ns.spawn(&argv, Some(&log))?);
        Ok(())
    }

    /// Index of the node named `name`.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.plan.name == name)
    }

    /// Switches node `i`'s stand-in health endpoint for `port` (6443 or 9345) to failing or back.
    pub fn set_standin_failing(&self, i: usize, port: u16, failing: bool) -> Result<()> {
        let file = self.nodes[i].dir.join(format!("fail-{port}"));
        let r = if failing {
            std::fs::write(&file, b"1")
        } else {
            std::fs::remove_file(&file)
        };
        r.map_err(|e| LabError::Io(file.display().to_string(), e))
    }

    /// Cuts node `i` off the segment (its link down) or reconnects it.
    pub fn set_link(&self, i: usize, up: bool) -> Result<()> {
        let node = &self.nodes[i];
        node.ns
            .exec(&["ip", "link", "set", "eth0", if up { "up" } else { "down" }])?;
        if up {
            restore_routes(node, &self.plan)?;
        }
        Ok(())
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) every process of node `i` (found by PID in its
    /// namespace), as if the machine hung.
    pub fn freeze(&self, i: usize, frozen: bool) {
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        for pid in self.nodes[i].ns.pids() {
            let _ = crate::netns::signal_pid(pid, signal);
        }
    }
}

fn restore_routes(node: &Node, plan: &Plan) -> Result<()> {
    node.ns.exec(&[
        "ip",
        "route",
        "replace",
        "default",
        "via",
        &plan.router_v4.to_string(),
    ])?;
    node.ns.exec(&[
        "ip",
        "-6",
        "route",
        "replace",
        "default",
        "via",
        &plan.router_v6.to_string(),
    ])?;
    Ok(())
}

/// Removes the hands-on lab: stops every process in its namespaces (by PID) and deletes them and
/// its directory. Safe to run when nothing is there.
pub fn down() -> Vec<String> {
    let mut removed = Vec::new();
    if let Ok(list) = crate::netns::run(&["ip", "netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if name.starts_with(LAB_PREFIX) {
                crate::netns::destroy(name);
                removed.push(name.to_owned());
            }
        }
    }
    let _ = std::fs::remove_dir_all(LAB_DIR);
    removed
}
