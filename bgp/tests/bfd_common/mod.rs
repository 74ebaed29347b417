//! Shared set-up of the BFD lab tests: a router namespace and a node namespace joined by a veth,
//! our BFD running in the node namespace, and polling helpers.
#![allow(dead_code)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use cpvip_bgp::bfd::{BfdConfig, BfdStatus};
use cpvip_lab::netns::{Netns, TempDir, require_root, veth};
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
