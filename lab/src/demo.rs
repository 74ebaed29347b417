//! `cpvip-lab demo`: cpvip's whole job on one machine, narrated. Brings the lab up, shows the
//! sessions, the leader and the VIP answering on 6443 and 9345 through the router, kills the
//! leader and measures the outage a client sees, hands over gracefully (SIGTERM), tears down.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::netns::{LabError, Result};
use crate::probe::{Probe, ProbeConfig};
use crate::topology::{Lab, LabConfig, TCP_HELLO_PORT, UDP_ECHO_PORT};

/// Prints progress lines with the time since the demo started.
pub struct Narrator {
    start: Instant,
}

impl Narrator {
    /// Starts the clock.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// One progress line.
    pub fn say(&self, line: &str) {
        println!("[{:>5.1}s] {line}", self.start.elapsed().as_secs_f64());
    }
}

impl Default for Narrator {
    fn default() -> Self {
        Self::new()
    }
}

/// The probe the demo, the benchmarks and `cpvip-lab probe` use: 8 UDP flows and 2 TCP flows
/// every 10 ms.
pub fn probe_config(target: IpAddr) -> ProbeConfig {
    ProbeConfig {
        target,
        udp_port: UDP_ECHO_PORT,
        tcp_port: TCP_HELLO_PORT,
        udp_flows: 8,
        tcp_flows: 2,
        interval: Duration::from_millis(10),
    }
}

/// Starts [`probe_config`] from the lab's client namespace.
pub fn client_probe(lab: &Lab, target: IpAddr) -> Result<Probe> {
    Probe::start(&lab.client, probe_config(target))
}

/// Runs the demo.
pub fn run(config: LabConfig) -> Result<()> {
    let n = Narrator::new();
    let say = |l: &str| n.say(l);
    say(&format!(
        "cpvip lab: router, {} control-plane nodes, Lease server, client (mode {})",
        config.nodes, config.mode
    ));
    let mut lab = Lab::up(config, &say)?;
    let vip4 = IpAddr::V4(lab.plan.vip_v4);
    let vip6 = IpAddr::V6(lab.plan.vip_v6);

    let took = lab.wait_sessions(Duration::from_secs(30))?;
    say(&format!(
        "BGP: all {} sessions Established on the router ({:.1}s)",
        2 * lab.nodes.len(),
        took.as_secs_f64()
    ));
    let anycast = lab.config.mode == "anycast";
    let want = if anycast { lab.nodes.len() } else { 1 };
    let hops = lab.wait_next_hops(vip4, Duration::from_secs(30), |h| h.len() == want)?;
    if anycast {
        say(&format!(
            "anycast: the router spreads {vip4} over {} (ECMP)",
            hops.join(", ")
        ));
    } else {
        say(&format!(
            "leader: {} holds the Lease; the router forwards {vip4} to it",
            hops.join(", ")
        ));
    }
    lab.wait_next_hops(vip6, Duration::from_secs(10), |h| h.len() == want)?;
    for vip in [vip4, vip6] {
        let api = lab.client_curl(vip, 6443, "/")?;
        let ping = lab.client_curl(vip, 9345, "/ping")?;
        say(&format!(
            "client: curl -k https://{vip}:6443/ -> {}; :9345/ping -> {}",
            api.trim(),
            ping.trim()
        ));
    }
    if anycast {
        say("anycast mode: the failover part of the demo is for leader mode; tearing down");
        return Ok(());
    }

    // Unplanned: the leader's cpvip dies (SIGKILL). Its sessions close at once, and the Lease must
    // expire before a standby may take over.
    let leader = hops[0].clone();
    let li = lab
        .node_index(&leader)
        .ok_or_else(|| LabError::Timeout(Duration::ZERO, "leader not found".into()))?;
    say(&format!(
        "failure: SIGKILL of cpvip on {leader}, client probing {vip4} every 10 ms on 10 flows"
    ));
    let probe = client_probe(&lab, vip4)?;
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    if let Some(p) = &lab.nodes[li].cpvip {
        p.signal(libc::SIGKILL)?;
    }
    let new = lab.wait_next_hops(vip4, Duration::from_secs(20), |h| {
        h.len() == 1 && h[0] != leader
    })?;
    say(&format!(
        "takeover: {} now leads ({:.2}s after the kill)",
        new[0],
        t0.elapsed().as_secs_f64()
    ));
    std::thread::sleep(Duration::from_millis(500));
    let report = probe.finish()?;
    say(&format!(
        "client outage after SIGKILL: {:.2}s ({} probes lost); bounded by the Lease duration",
        report.outage_after(t0).as_secs_f64(),
        report.lost_after(t0)
    ));
    lab.nodes[li].cpvip = None;
    lab.start_cpvip(li)?;
    say(&format!(
        "restarted cpvip on {leader} (as systemd would); it rejoins as a standby"
    ));
    lab.wait_sessions(Duration::from_secs(20))?;

    // Planned: SIGTERM of the leader hands over make-before-break.
    let leader = new[0].clone();
    let li = lab
        .node_index(&leader)
        .ok_or_else(|| LabError::Timeout(Duration::ZERO, "leader not found".into()))?;
    say(&format!("planned hand-over: SIGTERM of cpvip on {leader}"));
    let probe = client_probe(&lab, vip4)?;
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    if let Some(p) = &lab.nodes[li].cpvip {
        p.signal(libc::SIGTERM)?;
    }
    let new = lab.wait_next_hops(vip4, Duration::from_secs(10), |h| {
        h.len() == 1 && h[0] != leader
    })?;
    std::thread::sleep(Duration::from_millis(500));
    let report = probe.finish()?;
    let exit = lab.nodes[li]
        .cpvip
        .as_mut()
        .and_then(|p| p.wait_timeout(Duration::from_secs(5)));
    say(&format!(
        "hand-over to {}: client outage {:.3}s, {} of {} probes lost; old leader exited with {}",
        new[0],
        report.outage_after(t0).as_secs_f64(),
        report.lost_after(t0),
        report.sent(),
        exit.map(|s| s.to_string())
            .unwrap_or_else(|| "no exit yet".into())
    ));
    say("tearing down: every process stopped by PID, every namespace deleted");
    drop(lab);
    say("done");
    Ok(())
}
