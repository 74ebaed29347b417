//! Shared pieces of the interop tests: a router namespace and a speaker namespace joined by a
//! veth, router configurations, and polling helpers with generous bounds.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use cpvip_bgp::{PeerConfig, Route, Speaker, SpeakerConfig, SpeakerHandle, State};
use cpvip_lab::netns::{Netns, TempDir, require_root, veth};
use cpvip_lab::router::Bird;

pub const R4: &str = "10.0.0.1";
pub const S4: &str = "10.0.0.2";
pub const R6: &str = "2001:db8::1";
pub const S6: &str = "2001:db8::2";
pub const ROUTER_ASN: u32 = 65000;
pub const SPEAKER_ASN: u32 = 65001;

/// Router namespace `r` and speaker namespace `s`, eth0 on both, IPv4 and IPv6 addressed.
pub struct Lab {
    pub dir: TempDir,
    pub s: Netns,
    pub r: Netns,
}

impl Lab {
    pub fn new(tag: &str) -> Self {
        require_root("the BGP interop tests create network namespaces");
        let r = Netns::new(&format!("{tag}-r")).expect("router netns");
        let s = Netns::new(&format!("{tag}-s")).expect("speaker netns");
        veth(&r, "eth0", &s, "eth0").expect("veth");
        for (ns, v4, v6) in [(&r, R4, R6), (&s, S4, S6)] {
            ns.exec(&["ip", "addr", "add", &format!("{v4}/24"), "dev", "eth0"])
                .expect("v4 addr");
            ns.exec(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                "eth0",
                "nodad",
            ])
            .expect("v6 addr");
        }
        let dir = TempDir::new(tag).expect("temp dir");
        Self { dir, s, r }
    }

    /// Starts BIRD in the router namespace with `config`.
    pub fn start_bird(&self, config: &str) -> Bird {
        Bird::start(&self.r, self.dir.path(), config).expect("bird")
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub fn route(s: &str) -> Route {
    s.parse().expect("test route")
}

pub fn routes(list: &[&str]) -> BTreeSet<Route> {
    list.iter().map(|s| route(s)).collect()
}

/// A speaker with fast timers (hold 3 s) and the given peers.
pub fn speaker(local_asn: u32, peers: Vec<PeerConfig>) -> SpeakerConfig {
    SpeakerConfig {
        local_asn,
        router_id: ip(S4).to_string().parse().expect("router id"),
        hold_time: 3,
        peers,
        listen_port: None,
        listen_addr: None,
        attributes: Default::default(),
    }
}

/// Starts a speaker in `local_asn` (fast timers) with one peer: the router, AS 65000, at
/// `router`. Call inside the speaker namespace's runtime.
pub fn start_speaker(local_asn: u32, router: &str) -> SpeakerHandle {
    Speaker::start(speaker(
        local_asn,
        vec![PeerConfig::new(ip(router), ROUTER_ASN)],
    ))
    .expect("start")
}

/// BIRD protocol block for one neighbor.
pub struct BirdPeer<'a> {
    pub name: &'a str,
    pub local: &'a str,
    pub local_asn: u32,
    pub neighbor: &'a str,
    pub neighbor_asn: u32,
    pub extra: &'a str,
}

/// A BIRD 2 configuration importing everything from the given neighbors (and exporting nothing).
pub fn bird_config(peers: &[BirdPeer]) -> String {
    let mut c = String::from(
        "log stderr all;\nrouter id 10.0.0.1;\nprotocol device { scan time 10; }\n\
         protocol direct { ipv4; ipv6; interface \"eth0\"; }\n",
    );
    for p in peers {
        let af = if p.neighbor.contains(':') {
            "ipv6"
        } else {
            "ipv4"
        };
        c.push_str(&format!(
            "protocol bgp {} {{\n  local {} as {};\n  neighbor {} as {};\n  \
             connect retry time 1; error wait time 1, 2;\n  {}\n  {af} {{ import all; export none; }};\n}}\n",
            p.name, p.local, p.local_asn, p.neighbor, p.neighbor_asn, p.extra
        ));
    }
    c
}

/// A BIRD configuration with one neighbor of router AS 65000: the speaker at `neighbor` in
/// `neighbor_asn`, seen from the router's `local` address.
pub fn bird_one_peer(
    name: &str,
    local: &str,
    neighbor: &str,
    neighbor_asn: u32,
    extra: &str,
) -> String {
    bird_config(&[BirdPeer {
        name,
        local,
        local_asn: ROUTER_ASN,
        neighbor,
        neighbor_asn,
        extra,
    }])
}

/// The usual eBGP neighbor: router AS 65000 at R4, speaker AS 65001 at S4.
pub fn bird_ebgp4(extra: &str) -> String {
    bird_one_peer("s4", R4, S4, SPEAKER_ASN, extra)
}

/// Polls `check` every 100 ms until it holds or `timeout` passes; panics with `what` then.
pub async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !check() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the speaker's session to `peer` is (or is not) Established.
pub async fn wait_established(h: &SpeakerHandle, peer: &str, up: bool, timeout: Duration) {
    let addr = ip(peer);
    let what = format!("session to {peer} established={up}");
    wait_for(&what, timeout, || {
        h.peers()
            .iter()
            .any(|p| p.address == addr && (p.state == State::Established) == up)
    })
    .await;
}

pub fn status(h: &SpeakerHandle, peer: &str) -> cpvip_bgp::PeerStatus {
    let addr = ip(peer);
    h.peers()
        .into_iter()
        .find(|p| p.address == addr)
        .expect("configured peer")
}
