//! `cpvip-lab`: command-line entry to the lab (demo, up/down/status/exec, bench) and to the
//! helper processes the lab starts inside its namespaces (stand-ins, Lease server).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use cpvip_lab::bench::{self, Failure};
use cpvip_lab::demo::Narrator;
use cpvip_lab::standin::{self, Kind, StandinConfig};
use cpvip_lab::topology::{self, Lab, LabConfig, RouterKind};

#[derive(Parser)]
#[command(
    name = "cpvip-lab",
    version,
    about = "cpvip in a small data centre of network namespaces (needs root)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Brings the lab up, shows cpvip doing its job (failover, hand-over), tears down.
    Demo(LabArgs),
    /// Brings the lab up and leaves it running (namespaces cpvlab-*); see `status`, `exec`, `down`.
    Up(LabArgs),
    /// Removes the lab started by `up`: processes (by PID) and namespaces.
    Down,
    /// Shows the router's sessions and routes of the lab started by `up`.
    Status,
    /// Runs a command in one of the lab's namespaces: rtr, cli, sw, n1, n2, n3.
    Exec {
        /// Namespace role.
        ns: String,
        /// Command and arguments.
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Measures failover as a client sees it.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Runs the Kubernetes Lease test server (HTTPS) in this process.
    LeaseServer(cpvip_lab::lease_server::cli::LeaseServerArgs),
    /// Probes the VIP from the client namespace of the lab started by `up` and prints what answered.
    Probe {
        /// Address to probe (default: the IPv4 VIP).
        #[arg(long, default_value = "10.99.200.1")]
        target: std::net::IpAddr,
        /// How long.
        #[arg(long, default_value_t = 2)]
        seconds: u64,
    },
    /// (internal) Stand-in 6443/9345 listeners of one node.
    #[command(hide = true)]
    Standin(StandinArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Outage per failure kind (SIGKILL, freeze, link cut, SIGTERM), min/median/max over trials.
    Failover {
        #[command(flatten)]
        lab: LabArgs,
        /// Trials per failure kind.
        #[arg(long, default_value_t = 3)]
        trials: usize,
        /// Also run keepalived (VRRP, advert 1 s) in the same lab for comparison.
        #[arg(long)]
        keepalived: bool,
        /// Only these failure kinds (default: all).
        #[arg(long, value_enum)]
        failure: Vec<FailureArg>,
        /// Where to write the JSON results.
        #[arg(long, default_value = "lab-results/failover.json")]
        json: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FailureArg {
    Sigkill,
    Freeze,
    Cut,
    Sigterm,
}

#[derive(Args, Clone)]
struct LabArgs {
    /// The router.
    #[arg(long, value_enum, default_value = "bird")]
    router: RouterArg,
    /// cpvip's mode.
    #[arg(long, default_value = "leader", value_parser = ["leader", "anycast"])]
    mode: String,
    /// BFD 100 ms x 3 between router and nodes.
    #[arg(long)]
    bfd: bool,
    /// The cpvip binary (default: next to cpvip-lab).
    #[arg(long)]
    cpvip: Option<PathBuf>,
    /// BGP hold time in seconds (cpvip's default).
    #[arg(long, default_value_t = 3)]
    hold: u16,
}

#[derive(Clone, Copy, ValueEnum)]
enum RouterArg {
    Bird,
    Frr,
}

#[derive(Args)]
struct StandinArgs {
    #[arg(long)]
    node: String,
    #[arg(long)]
    switch_dir: PathBuf,
    #[arg(long)]
    apiserver: Option<SocketAddr>,
    #[arg(long)]
    supervisor: Option<SocketAddr>,
    #[arg(long)]
    udp_echo: Vec<SocketAddr>,
    #[arg(long)]
    tcp_hello: Option<SocketAddr>,
    #[arg(long)]
    token: Option<String>,
    #[arg(long)]
    client_ca: Option<PathBuf>,
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
}

fn lab_config(args: &LabArgs) -> anyhow::Result<LabConfig> {
    let me = std::env::current_exe().context("locating cpvip-lab")?;
    let dir = me.parent().context("cpvip-lab has no directory")?;
    let mut config = LabConfig::new(dir);
    config.lab_bin = me.clone();
    if let Some(cpvip) = &args.cpvip {
        config.cpvip = cpvip
            .canonicalize()
            .with_context(|| format!("--cpvip {}", cpvip.display()))?;
    }
    anyhow::ensure!(
        config.cpvip.exists(),
        "cpvip binary not found at {} (build it, or pass --cpvip)",
        config.cpvip.display()
    );
    config.router = match args.router {
        RouterArg::Bird => RouterKind::Bird,
        RouterArg::Frr => RouterKind::Frr,
    };
    config.mode = args.mode.clone();
    config.bfd = args.bfd;
    config.hold_secs = args.hold;
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cpvip-lab: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::LeaseServer(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_writer(std::io::stderr)
                .init();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(cpvip_lab::lease_server::cli::run(args))
        }
        Command::Standin(a) => {
            let mut https = Vec::new();
            https.extend(a.apiserver.map(|addr| (addr, Kind::Apiserver)));
            https.extend(a.supervisor.map(|addr| (addr, Kind::Supervisor)));
            let config = StandinConfig {
                node: a.node,
                https,
                udp_echo: a.udp_echo,
                tcp_hello: a.tcp_hello,
                switch_dir: a.switch_dir,
                token: a.token,
                client_ca: a.client_ca,
                cert: a.cert.zip(a.key),
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(standin::serve(config))
        }
        Command::Demo(args) => {
            cpvip_lab::netns::require_root("the lab creates network namespaces");
            topology::down();
            Ok(cpvip_lab::demo::run(lab_config(&args)?)?)
        }
        Command::Up(args) => {
            cpvip_lab::netns::require_root("the lab creates network namespaces");
            topology::down();
            let n = Narrator::new();
            let lab = Lab::up(lab_config(&args)?, &|l| n.say(l))?;
            lab.wait_sessions(std::time::Duration::from_secs(30))?;
            n.say(
                "lab is up: `cpvip-lab status`, `cpvip-lab exec n1 target/release/cpvip status`, `cpvip-lab down`",
            );
            // The lab keeps running after this process exits: hand every guard over.
            std::mem::forget(lab);
            Ok(())
        }
        Command::Probe { target, seconds } => {
            let client =
                cpvip_lab::netns::Netns::adopt(&format!("{}cli", topology::LAB_PREFIX)).keep();
            let probe =
                cpvip_lab::probe::Probe::start(&client, cpvip_lab::demo::probe_config(target))?;
            let start = std::time::Instant::now();
            std::thread::sleep(std::time::Duration::from_secs(seconds));
            let report = probe.finish()?;
            println!("answered by: {:?}", report.answered_by_after(start));
            for (flow, (ok, lost)) in report.per_flow().iter().enumerate() {
                println!("flow {flow}: {ok} answered, {lost} lost");
            }
            Ok(())
        }
        Command::Down => {
            let removed = topology::down();
            println!(
                "removed {} namespaces{}",
                removed.len(),
                if removed.is_empty() { "" } else { ":" }
            );
            for r in removed {
                println!("  {r}");
            }
            Ok(())
        }
        Command::Status => {
            let ctl = format!("{}/router/bird.ctl", topology::LAB_DIR);
            if std::path::Path::new(&ctl).exists() {
                print!(
                    "{}",
                    cpvip_lab::netns::run(&["birdc", "-s", &ctl, "show", "protocols"])?
                );
            } else {
                print!(
                    "{}",
                    cpvip_lab::netns::run(&[
                        "vtysh",
                        "--vty_socket",
                        &format!("{}/router/frr", topology::LAB_DIR),
                        "-c",
                        "show bgp summary"
                    ])?
                );
            }
            print!(
                "{}",
                cpvip_lab::netns::run(&[
                    "ip",
                    "-n",
                    &format!("{}rtr", topology::LAB_PREFIX),
                    "route",
                    "show",
                    "10.99.200.0/24"
                ])?
            );
            Ok(())
        }
        Command::Exec { ns, command } => {
            let name = format!("{}{ns}", topology::LAB_PREFIX);
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", &name])
                .args(&command)
                .status()?;
            anyhow::ensure!(
                status.success(),
                "{} exited with {status}",
                command.join(" ")
            );
            Ok(())
        }
        Command::Bench {
            what:
                BenchCommand::Failover {
                    lab,
                    trials,
                    keepalived,
                    failure,
                    json,
                },
        } => {
            cpvip_lab::netns::require_root("the lab creates network namespaces");
            topology::down();
            let failures: Vec<Failure> = if failure.is_empty() {
                Failure::ALL.to_vec()
            } else {
                failure
                    .iter()
                    .map(|f| match f {
                        FailureArg::Sigkill => Failure::Sigkill,
                        FailureArg::Freeze => Failure::Freeze,
                        FailureArg::Cut => Failure::Cut,
                        FailureArg::Sigterm => Failure::Sigterm,
                    })
                    .collect()
            };
            let config = lab_config(&lab)?;
            let n = Narrator::new();
            let system = format!(
                "cpvip {} {:?}{}",
                config.mode,
                config.router,
                if config.bfd { " bfd" } else { "" }
            )
            .to_lowercase();
            let trials_cpvip = bench::cpvip_failover(config.clone(), &failures, trials, &n)?;
            let mut rows = bench::summarise(&system, &trials_cpvip);
            let mut all = serde_json::json!({ "cpvip": trials_cpvip });
            if keepalived {
                let k = bench::keepalived_failover(config, &failures, trials, &n)?;
                rows.extend(bench::summarise("keepalived vrrp advert 1s", &k));
                all["keepalived"] = serde_json::to_value(&k)?;
            }
            all["summary"] = serde_json::to_value(&rows)?;
            bench::print_table(&rows);
            if let Some(parent) = json.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&json, serde_json::to_string_pretty(&all)?)?;
            println!("results written to {}", json.display());
            Ok(())
        }
    }
}
