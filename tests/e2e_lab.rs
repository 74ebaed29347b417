//! End to end: the real `cpvip` binary on three nodes in network namespaces, a real BIRD or FRR
//! router, the Lease test server and a client, asserting only what an operator could observe: the
//! router's routes, what the client reaches on the VIP, and how long it could not.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cpvip_lab::demo::client_probe;
use cpvip_lab::netns::require_root;
use cpvip_lab::topology::{Lab, LabConfig, RouterKind};

fn bin_dir() -> PathBuf {
    let cpvip = Path::new(env!("CARGO_BIN_EXE_cpvip"));
    let dir = cpvip.parent().expect("binary directory").to_path_buf();
    assert!(
        dir.join("cpvip-lab").exists(),
        "cpvip-lab is not built next to cpvip ({}); run `cargo build -p cpvip-lab` or the README's test command",
        dir.display()
    );
    dir
}

fn lab(tag: &str, router: RouterKind, mode: &str, extra: &[&str]) -> Lab {
    lab_with(tag, router, mode, extra, |_| {})
}

fn lab_with(
    tag: &str,
    router: RouterKind,
    mode: &str,
    extra: &[&str],
    adjust: impl FnOnce(&mut LabConfig),
) -> Lab {
    require_root("the lab creates network namespaces");
    let mut config = LabConfig::new(&bin_dir());
    config.cpvip = PathBuf::from(env!("CARGO_BIN_EXE_cpvip"));
    config.test_tag = Some(tag.to_owned());
    config.router = router;
    config.mode = mode.to_owned();
    // Short timers keep the suite fast; the defaults are measured by the bench.
    config.hold_secs = 3;
    config.extra_args = ["--health-interval", "200ms", "--health-timeout", "200ms"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    adjust(&mut config);
    let lab = Lab::up(config, &|line| eprintln!("[{tag}] {line}")).expect("lab up");
    lab.wait_sessions(Duration::from_secs(30))
        .expect("sessions up");
    lab
}

fn vip4(lab: &Lab) -> IpAddr {
    IpAddr::V4(lab.plan.vip_v4)
}

fn vip6(lab: &Lab) -> IpAddr {
    IpAddr::V6(lab.plan.vip_v6)
}

fn one_leader(lab: &Lab, vip: IpAddr) -> String {
    lab.wait_next_hops(vip, Duration::from_secs(20), |h| h.len() == 1)
        .expect("one leader")[0]
        .clone()
}

fn vip_bound(lab: &Lab, i: usize) -> bool {
    lab.nodes[i]
        .ns
        .exec(&["ip", "-4", "addr", "show", "dev", "lo"])
        .is_ok_and(|o| o.contains(&format!("{}/32", lab.plan.vip_v4)))
}

#[test]
fn leader_mode_serves_6443_and_9345_on_both_vips_through_the_router() {
    let lab = lab("e2e-leader", RouterKind::Bird, "leader", &[]);
    let leader = one_leader(&lab, vip4(&lab));
    assert_eq!(
        one_leader(&lab, vip6(&lab)),
        leader,
        "both VIPs follow the one leader"
    );
    for vip in [vip4(&lab), vip6(&lab)] {
        assert_eq!(
            lab.client_curl(vip, 6443, "/").expect("curl 6443").trim(),
            leader
        );
        assert_eq!(
            lab.client_curl(vip, 9345, "/ping")
                .expect("curl 9345")
                .trim(),
            "pong"
        );
    }
    for i in 0..lab.nodes.len() {
        let is_leader = lab.nodes[i].plan.name == leader;
        assert_eq!(
            vip_bound(&lab, i),
            is_leader,
            "only the leader has the VIP ({})",
            lab.nodes[i].plan.name
        );
    }
}

#[test]
fn anycast_mode_gives_the_router_an_ecmp_route_and_follows_health() {
    let lab = lab("e2e-anycast", RouterKind::Bird, "anycast", &[]);
    let all: Vec<String> = lab.nodes.iter().map(|n| n.plan.name.clone()).collect();
    lab.wait_next_hops(vip4(&lab), Duration::from_secs(20), |h| h == all.as_slice())
        .expect("ECMP over all nodes");
    lab.wait_next_hops(vip6(&lab), Duration::from_secs(20), |h| h == all.as_slice())
        .expect("IPv6 ECMP");
    // The supervisor on n2 fails: n2 withdraws within interval x fall (+ slack) and unbinds.
    let t0 = Instant::now();
    lab.set_standin_failing(1, 9345, true).expect("fail n2");
    lab.wait_next_hops(vip4(&lab), Duration::from_secs(5), |h| {
        h.len() == 2 && !h.contains(&"n2".to_string())
    })
    .expect("n2 withdrawn");
    let withdrawn = t0.elapsed();
    assert!(cpvip_lab::netns::wait_until(
        Duration::from_secs(2),
        Duration::from_millis(20),
        || !vip_bound(&lab, 1)
    ));
    lab.set_standin_failing(1, 9345, false).expect("heal n2");
    lab.wait_next_hops(vip4(&lab), Duration::from_secs(5), |h| h == all.as_slice())
        .expect("n2 back after rise");
    eprintln!("anycast health withdraw took {withdrawn:?} (interval 200ms x fall 3)");
    // DESIGN: withdrawn within interval x fall + 1 s.
    assert!(
        withdrawn < Duration::from_millis(200 * 3 + 1000),
        "withdraw took {withdrawn:?}"
    );
}

#[test]
fn leader_sigkill_and_link_cut_fail_over_within_the_lease() {
    let mut lab = lab("e2e-failover", RouterKind::Bird, "leader", &[]);
    let vip = vip4(&lab);
    let leader = one_leader(&lab, vip);
    let li = lab.node_index(&leader).expect("leader index");
    let t0 = Instant::now();
    lab.nodes[li]
        .cpvip
        .as_ref()
        .expect("cpvip")
        .signal(libc::SIGKILL)
        .expect("kill");
    let new = lab
        .wait_next_hops(vip, Duration::from_secs(15), |h| {
            h.len() == 1 && h[0] != leader
        })
        .expect("takeover")[0]
        .clone();
    eprintln!("SIGKILL: {new} leads after {:?}", t0.elapsed());
    assert_eq!(lab.client_curl(vip, 6443, "/").expect("curl").trim(), new);
    // A crash-restart cleans the VIP the killed process left behind.
    lab.nodes[li].cpvip = None;
    lab.start_cpvip(li).expect("restart");
    assert!(cpvip_lab::netns::wait_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || !vip_bound(&lab, li)
    ));

    // Now cut the new leader off the segment: it cannot renew, fences itself, a standby takes over.
    let ni = lab.node_index(&new).expect("index");
    let t0 = Instant::now();
    lab.set_link(ni, false).expect("cut");
    let third = lab
        .wait_next_hops(vip, Duration::from_secs(25), |h| {
            h.len() == 1 && h[0] != new
        })
        .expect("takeover")[0]
        .clone();
    let took = t0.elapsed();
    eprintln!("link cut: {third} leads after {took:?}");
    // The cut leader fenced itself: it no longer has the VIP bound after its renew deadline.
    assert!(cpvip_lab::netns::wait_until(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || !vip_bound(&lab, ni)
    ));
    lab.set_link(ni, true).expect("reconnect");
}

#[test]
fn planned_hand_over_keeps_the_vip_reachable() {
    let mut lab = lab("e2e-handover", RouterKind::Bird, "leader", &[]);
    let vip = vip4(&lab);
    let leader = one_leader(&lab, vip);
    let li = lab.node_index(&leader).expect("leader index");
    let probe = client_probe(&lab, vip).expect("probe");
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    lab.nodes[li]
        .cpvip
        .as_ref()
        .expect("cpvip")
        .signal(libc::SIGTERM)
        .expect("term");
    lab.wait_next_hops(vip, Duration::from_secs(10), |h| {
        h.len() == 1 && h[0] != leader
    })
    .expect("hand-over");
    let status = lab.nodes[li]
        .cpvip
        .as_mut()
        .expect("cpvip")
        .wait_timeout(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let report = probe.finish().expect("probe");
    let gap = report.outage_after(t0);
    eprintln!(
        "hand-over gap {gap:?}, lost {} of {}",
        report.lost_after(t0),
        report.sent()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM exits 0: {status:?}"
    );
    assert!(gap < Duration::from_secs(2), "hand-over gap {gap:?}");
    assert!(!vip_bound(&lab, li), "the old leader unbound the VIP");
}

#[test]
fn unhealthy_leader_hands_leadership_to_a_healthy_node() {
    let lab = lab("e2e-health", RouterKind::Bird, "leader", &[]);
    let vip = vip4(&lab);
    let leader = one_leader(&lab, vip);
    let li = lab.node_index(&leader).expect("leader index");
    lab.set_standin_failing(li, 9345, true).expect("fail");
    let new = lab
        .wait_next_hops(vip, Duration::from_secs(10), |h| {
            h.len() == 1 && h[0] != leader
        })
        .expect("moved")[0]
        .clone();
    assert_eq!(
        lab.client_curl(vip, 9345, "/ping").expect("curl").trim(),
        "pong"
    );
    assert!(cpvip_lab::netns::wait_until(
        Duration::from_secs(3),
        Duration::from_millis(20),
        || !vip_bound(&lab, li)
    ));
    eprintln!("leadership moved from {leader} to {new}");
}

#[test]
fn sessions_come_back_after_a_router_restart_with_frr() {
    let mut lab = lab("e2e-frr", RouterKind::Frr, "leader", &[]);
    let vip = vip4(&lab);
    let leader = one_leader(&lab, vip);
    lab.restart_router().expect("restart router");
    lab.wait_sessions(Duration::from_secs(30))
        .expect("sessions back by themselves");
    assert_eq!(
        one_leader(&lab, vip),
        leader,
        "the leader did not change with the router"
    );
    assert_eq!(
        lab.client_curl(vip, 6443, "/").expect("curl").trim(),
        leader
    );
}

/// `cpvip status` (table and JSON) read from the running daemons themselves.
#[test]
fn cpvip_status_shows_the_leader_and_its_established_peers() {
    let lab = lab("e2e-status", RouterKind::Bird, "leader", &[]);
    let leader = one_leader(&lab, vip4(&lab));
    let li = lab.node_index(&leader).expect("leader index");
    let cpvip = env!("CARGO_BIN_EXE_cpvip");
    let table = lab.nodes[li]
        .ns
        .exec(&[cpvip, "status"])
        .expect("cpvip status");
    assert!(
        table.contains(&format!("on {leader}")) && table.contains("LEADER"),
        "{table}"
    );
    assert!(
        table.contains("Established") && table.contains("10.99.0.1") && table.contains("fd99::1"),
        "{table}"
    );
    let standby = (li + 1) % lab.nodes.len();
    let json = lab.nodes[standby]
        .ns
        .exec(&[cpvip, "status", "--json"])
        .expect("cpvip status --json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(report["leader"], false, "{json}");
    assert_eq!(report["holder"], leader.as_str(), "{json}");
    assert_eq!(report["serving"], false, "{json}");
    let peers = report["peers"].as_array().expect("peers");
    assert!(
        peers.len() == 2 && peers.iter().all(|p| p["state"] == "Established"),
        "standbys keep their sessions: {json}"
    );
    let metrics = lab.nodes[li]
        .ns
        .exec(&["curl", "-s", "http://127.0.0.1:2112/metrics"])
        .expect("metrics");
    assert!(
        metrics.contains("cpvip_leader 1")
            && metrics.contains("cpvip_serving{vip=\"10.99.200.1\"} 1"),
        "{metrics}"
    );
}

fn bfd_cut_withdraws_fast(tag: &str, router: RouterKind) {
    let lab = lab_with(tag, router, "anycast", &[], |c| {
        c.bfd = true;
        // A hold time BFD must beat by far.
        c.hold_secs = 30;
    });
    let all: Vec<String> = lab.nodes.iter().map(|n| n.plan.name.clone()).collect();
    lab.wait_next_hops(vip4(&lab), Duration::from_secs(20), |h| h == all.as_slice())
        .expect("ECMP");
    // BFD sessions need their slow start (1 s) to reach 100 ms.
    std::thread::sleep(Duration::from_secs(3));
    let t0 = Instant::now();
    lab.set_link(0, false).expect("cut n1");
    lab.wait_next_hops(vip4(&lab), Duration::from_secs(10), |h| {
        h.len() == 2 && !h.contains(&"n1".to_string())
    })
    .expect("n1's route dropped");
    let took = t0.elapsed();
    eprintln!("{tag}: route to the cut node dropped after {took:?} (BFD 100 ms x 3, hold 30 s)");
    // Detection time 300 ms; the hold timer alone would take up to 30 s.
    assert!(took < Duration::from_secs(3), "{took:?}");
    lab.set_link(0, true).expect("reconnect");
    lab.wait_next_hops(vip4(&lab), Duration::from_secs(20), |h| h == all.as_slice())
        .expect("n1 back");
}

#[test]
fn bfd_drops_a_cut_node_fast_with_bird() {
    bfd_cut_withdraws_fast("e2e-bfd-bird", RouterKind::Bird);
}

#[test]
fn bfd_drops_a_cut_node_fast_with_frr() {
    bfd_cut_withdraws_fast("e2e-bfd-frr", RouterKind::Frr);
}

#[test]
fn router_bfd_going_silent_tears_our_bgp_session_down() {
    let lab = lab_with("e2e-bfd-silent", RouterKind::Bird, "anycast", &[], |c| {
        c.bfd = true
    });
    std::thread::sleep(Duration::from_secs(3));
    let Some(cpvip_lab::topology::Router::Bird(bird)) = &lab.router else {
        panic!("BIRD router")
    };
    bird.birdc("disable bfd1")
        .expect("disable BFD on the router");
    let cpvip = env!("CARGO_BIN_EXE_cpvip");
    let mut last = String::new();
    let torn_down =
        cpvip_lab::netns::wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
            last = lab.nodes[0]
                .ns
                .exec(&[cpvip, "status", "--json"])
                .unwrap_or_default();
            serde_json::from_str::<serde_json::Value>(&last).is_ok_and(|r| {
                r["peers"].as_array().is_some_and(|peers| {
                    peers.iter().any(|p| {
                        p["flaps"].as_u64() >= Some(1)
                            && p["last_error"].as_str().is_some_and(|e| e.contains("BFD"))
                    })
                })
            })
        });
    assert!(torn_down, "a BGP session went down because of BFD: {last}");
}

/// The README's main job, as a user runs it: `cpvip-lab demo` exits 0, narrates the takeover and
/// the hand-over, and leaves no namespace and no file behind.
#[test]
fn the_demo_runs_end_to_end_and_leaves_nothing_behind() {
    require_root("the lab creates network namespaces");
    let lab_bin = bin_dir().join("cpvip-lab");
    let out = std::process::Command::new(&lab_bin)
        .args(["demo", "--cpvip", env!("CARGO_BIN_EXE_cpvip")])
        .output()
        .expect("run cpvip-lab demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "sessions Established",
        "holds the Lease",
        "-> pong",
        "now leads",
        "hand-over to",
        "done",
    ] {
        assert!(
            text.contains(expected),
            "demo output lacks {expected:?}:\n{text}"
        );
    }
    let left = cpvip_lab::netns::run(&["ip", "netns", "list"]).expect("ip netns list");
    assert!(
        !left.contains(cpvip_lab::topology::LAB_PREFIX),
        "namespaces left: {left}"
    );
    assert!(
        !Path::new(cpvip_lab::topology::LAB_DIR).exists(),
        "lab directory left behind"
    );
}
