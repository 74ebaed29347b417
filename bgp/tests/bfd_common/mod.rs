//! Shared set-up of the BFD lab tests: a router namespace and a node namespace joined by a veth,
//! our BFD running in the node namespace, and polling helpers.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use cpvip_bgp::bfd::{Bfd, BfdConfig, BfdSession, BfdStatus};
use cpvip_lab::netns::{Netns, TempDir, require_root, veth};
use cpvip_lab::router::{Frr, FrrConfig, FrrDaemons};
use serde_json::Value;
use tokio::sync::watch;

pub const ROUTER: &str = "10.77.0.1";
pub const NODE: &str = "10.77.0.2";

/// Two namespaces joined by `eth0`–`eth0`, addressed 10.77.0.1/24 (router) and .2 (node).
pub struct Link {
    // Field order is drop order: routers' files go last.
    pub node: Netns,
    pub router: Netns,
    pub dir: TempDir,
}

impl Link {
    pub fn new(tag: &str) -> Link {
        require_root("BFD tests create network namespaces and run routers");
        let dir = TempDir::new(tag).expect("temp dir");
        let router = Netns::new(&format!("{tag}-r")).expect("router namespace");
        let node = Netns::new(&format!("{tag}-n")).expect("node namespace");
        veth(&router, "eth0", &node, "eth0").expect("veth");
        router
            .add_addr("eth0", &format!("{ROUTER}/24"))
            .expect("router address");
        node.add_addr("eth0", &format!("{NODE}/24"))
            .expect("node address");
        Link { node, router, dir }
    }
}

/// Joins each namespace's `eth0` to port `port` of bridge `br0` in `switch` and gives it
/// `address`/24.
pub fn attach_to_switch(switch: &Netns, members: &[(&Netns, &str, &str)]) {
    for &(ns, port, address) in members {
        veth(ns, "eth0", switch, port).expect("veth");
        switch
            .exec(&["ip", "link", "set", port, "master", "br0"])
            .expect("bridge port");
        ns.add_addr("eth0", &format!("{address}/24"))
            .expect("address");
    }
}

/// A BIRD 2 configuration with one BFD neighbor, our node, on `eth0`.
pub fn bird_bfd_config(rx_ms: u64, tx_ms: u64, mult: u8) -> String {
    format!(
        r#"log stderr all;
router id 10.77.0.1;
protocol device {{}}
protocol bfd bfd1 {{
  interface "eth0" {{ min rx interval {rx_ms} ms; min tx interval {tx_ms} ms; multiplier {mult}; }};
  neighbor {NODE} dev "eth0";
}}
"#
    )
}

/// FRR with zebra and bfdd only (no bgpd) in `ns`, bfdd configured with `bfdd`.
pub fn start_frr_bfdd(ns: &Netns, dir: &Path, hostname: &str, bfdd: String) -> Frr {
    Frr::start(
        ns,
        dir,
        FrrDaemons {
            bgp: false,
            bfd: true,
        },
        &FrrConfig {
            zebra: format!("hostname {hostname}\n"),
            bgpd: String::new(),
            bfdd,
        },
    )
    .expect("start FRR zebra + bfdd")
}

/// The BFD peers FRR lists in `show bfd peers json`.
pub fn frr_bfd_peers(frr: &Frr) -> Option<Vec<Value>> {
    let out = frr.vtysh(&["show bfd peers json"]).ok()?;
    let peers: Value = serde_json::from_str(&out).ok()?;
    peers.as_array().cloned()
}

/// A status check for [`wait_for`]: Up with the given detection time.
pub fn up_with_detection(ms: u64) -> impl Fn(&BfdStatus) -> bool {
    move |s| s.is_up() && s.detection_time == Duration::from_millis(ms)
}

pub fn addr(text: &str) -> IpAddr {
    text.parse().expect("address literal")
}

/// Our side of the session towards the router.
pub fn config(interval_ms: u64, detect_mult: u8) -> BfdConfig {
    BfdConfig {
        peer: addr(ROUTER),
        local: addr(NODE),
        desired_min_tx: Duration::from_millis(interval_ms),
        required_min_rx: Duration::from_millis(interval_ms),
        detect_mult,
    }
}

/// Waits until the status satisfies `check`; on timeout returns the last status seen.
pub async fn wait_for(
    status: &mut watch::Receiver<BfdStatus>,
    timeout: Duration,
    check: impl Fn(&BfdStatus) -> bool,
) -> Result<BfdStatus, BfdStatus> {
    let found = tokio::time::timeout(timeout, status.wait_for(|s| check(s)))
        .await
        .ok()
        .and_then(|r| r.ok().map(|s| s.clone()));
    found.ok_or_else(|| status.borrow().clone())
}

/// Starts our session and waits until `up` holds; panics with the last status and `context()`
/// (the router's log) if it does not within `timeout`.
pub async fn start_until_up(
    config: BfdConfig,
    timeout: Duration,
    up: impl Fn(&BfdStatus) -> bool,
    context: impl Fn() -> String,
) -> (BfdSession, watch::Receiver<BfdStatus>, BfdStatus) {
    let session = Bfd::new().start(config).expect("start session");
    let mut status = session.status();
    let reached = wait_for(&mut status, timeout, up)
        .await
        .unwrap_or_else(|s| panic!("not Up: {s:?}\n{}", context()));
    (session, status, reached)
}

/// Polls a blocking probe (a router CLI) every `every` until it yields a value; returns the
/// value and the time since `since`, or `None` after `timeout`.
pub async fn poll_router<T>(
    since: Instant,
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<(T, Duration)> {
    loop {
        if let Some(value) = tokio::task::block_in_place(&mut probe) {
            return Some((value, since.elapsed()));
        }
        if since.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}
