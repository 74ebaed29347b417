//! The lab's own plumbing, proven with real processes: namespaces are cleaned up even when a test
//! panics, veths carry traffic, and BIRD and FRR start, answer and stop by PID.

use std::time::Duration;

use cpvip_lab::netns::{Netns, TempDir, require_root, run, veth, wait_until};
use cpvip_lab::router::{Bird, Frr, FrrConfig, FrrDaemons};

fn exists(name: &str) -> bool {
    run(&["ip", "netns", "list"])
        .expect("ip netns list")
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

#[test]
fn namespace_and_its_processes_are_gone_after_a_panic() {
    require_root("creates network namespaces");
    let result = std::panic::catch_unwind(|| {
        let ns = Netns::new("infra-panic").expect("netns");
        let sleeper = ns.spawn(&["sleep", "60"], None).expect("spawn");
        std::mem::forget(sleeper); // only the namespace guard is left to stop it
        let name = ns.name().to_owned();
        let pids = ns.pids();
        assert_eq!(pids.len(), 1, "the sleeper runs inside");
        std::panic::panic_any((name, pids[0]));
    });
    let payload = result.expect_err("the closure panicked");
    let (name, pid) = payload
        .downcast_ref::<(String, i32)>()
        .expect("payload")
        .clone();
    assert!(!exists(&name), "namespace {name} was deleted on unwind");
    assert!(
        wait_until(
            Duration::from_secs(2),
            Duration::from_millis(20),
            || !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))
        ),
        "process {pid} was stopped"
    );
}

#[test]
fn veth_pair_connects_two_namespaces() {
    require_root("creates network namespaces");
    let a = Netns::new("infra-a").expect("netns a");
    let b = Netns::new("infra-b").expect("netns b");
    veth(&a, "eth0", &b, "eth0").expect("veth");
    a.add_addr("eth0", "192.0.2.1/24").expect("addr a");
    b.add_addr("eth0", "192.0.2.2/24").expect("addr b");
    a.exec(&["ping", "-c1", "-W2", "192.0.2.2"])
        .expect("ping across the veth");
    // A socket made inside `block_on` lives in the namespace: it can bind the namespace's address.
    let bound = b
        .block_on(|| async { tokio::net::TcpListener::bind("192.0.2.2:0").await.is_ok() })
        .expect("block_on");
    assert!(bound);
}

#[test]
fn bird_starts_answers_and_stops() {
    require_root("creates network namespaces");
    let ns = Netns::new("infra-bird").expect("netns");
    let dir = TempDir::new("infra-bird").expect("dir");
    let bird = Bird::start(
        &ns,
        dir.path(),
        "router id 192.0.2.1;\nprotocol device {}\n",
    )
    .expect("bird");
    let status = bird.birdc("show status").expect("birdc");
    assert!(status.contains("Daemon is up and running"), "{status}");
    let pid = bird.proc().pid();
    drop(bird);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| !c.contains("bird"))
    );
}

#[test]
fn frr_starts_zebra_bgpd_and_bfdd() {
    require_root("creates network namespaces");
    let ns = Netns::new("infra-frr").expect("netns");
    let dir = TempDir::new("infra-frr").expect("dir");
    let config = FrrConfig {
        zebra: "hostname r\n".into(),
        bgpd: "router bgp 65000\n bgp router-id 192.0.2.1\n".into(),
        bfdd: "bfd\n".into(),
    };
    let frr = Frr::start(
        &ns,
        dir.path(),
        FrrDaemons {
            bgp: true,
            bfd: true,
        },
        &config,
    )
    .expect("frr");
    let out = frr.vtysh(&["show running-config"]).expect("vtysh");
    assert!(out.contains("router bgp 65000"), "{out}");
    assert!(frr.daemon("bgpd").is_some() && frr.daemon("bfdd").is_some());
}
