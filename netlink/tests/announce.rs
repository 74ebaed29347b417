//! The announcer on a real L2 segment: node — bridge (in its own namespace) — peer. A raw packet
//! listener in the peer sees the gratuitous ARPs and neighbour advertisements, and the peer's
//! neighbour table moves to the node's MAC.

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{ip, mac_of, neigh_mac};
use cpvip_lab::netns::{Netns, require_root, veth};
use cpvip_netlink::{AnnounceConfig, VipManager};
use socket2::{Domain, Protocol, Socket, Type};

const WHY: &str = "it sends raw frames between network namespaces";
const FAKE_MAC: &str = "02:00:00:00:00:99";

/// Captures every frame arriving in the calling thread's namespace until `done` is set (plus a
/// short grace for frames still in flight; at most 30 s); sends `()` on `ready` once the socket
/// is open.
fn capture(done: &AtomicBool, ready: mpsc::Sender<()>) -> Vec<Vec<u8>> {
    let protocol = Protocol::from(i32::from((libc::ETH_P_ALL as u16).to_be()));
    let mut sock = Socket::new(Domain::PACKET, Type::RAW, Some(protocol)).expect("packet socket");
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    ready.send(()).expect("signal ready");
    let hard_stop = Instant::now() + Duration::from_secs(30);
    let mut grace_until = None;
    let mut frames = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if done.load(Ordering::Acquire) && grace_until.is_none() {
            grace_until = Some(now + Duration::from_millis(300));
        }
        if now >= hard_stop || grace_until.is_some_and(|g| now >= g) {
            return frames;
        }
        if let Ok(n) = sock.read(&mut buf) {
            frames.push(buf[..n].to_vec());
        }
    }
}

struct Seen {
    arp_requests: usize,
    arp_replies: usize,
    neighbour_advertisements: usize,
}

/// Checks every frame from `mac` and counts the well-formed announcements for the VIPs.
fn inspect(frames: &[Vec<u8>], mac: [u8; 6], v4: IpAddr, v6: IpAddr) -> Seen {
    let mut seen = Seen {
        arp_requests: 0,
        arp_replies: 0,
        neighbour_advertisements: 0,
    };
    for f in frames.iter().filter(|f| f.len() >= 14 && f[6..12] == mac) {
        match u16::from_be_bytes([f[12], f[13]]) {
            0x0806 => {
                assert!(f.len() >= 42, "short ARP frame");
                assert_eq!(&f[0..6], &[0xff; 6], "broadcast");
                assert_eq!(&f[22..28], &mac, "sender MAC");
                let spa = IpAddr::from(<[u8; 4]>::try_from(&f[28..32]).expect("4 bytes"));
                let tpa = IpAddr::from(<[u8; 4]>::try_from(&f[38..42]).expect("4 bytes"));
                assert_eq!(spa, v4, "sender IP");
                assert_eq!(tpa, v4, "gratuitous: target IP = sender IP");
                match u16::from_be_bytes([f[20], f[21]]) {
                    1 => seen.arp_requests += 1,
                    2 => {
                        assert_eq!(&f[32..38], &mac, "reply target MAC = sender MAC");
                        seen.arp_replies += 1;
                    }
                    op => panic!("unexpected ARP operation {op}"),
                }
            }
            0x86dd if f.len() >= 14 + 40 + 32 && f[14 + 6] == 58 && f[14 + 40] == 136 => {
                let ip6 = &f[14..];
                assert_eq!(ip6[7], 255, "hop limit 255");
                let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip6[8..24]).expect("16"));
                let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip6[24..40]).expect("16"));
                assert_eq!(IpAddr::V6(src), v6, "source is the VIP");
                assert_eq!(dst, "ff02::1".parse::<Ipv6Addr>().expect("literal"));
                let na = &ip6[40..];
                assert_eq!(na[4] & 0xe0, 0x20, "override set, router/solicited clear");
                let target = Ipv6Addr::from(<[u8; 16]>::try_from(&na[8..24]).expect("16"));
                assert_eq!(IpAddr::V6(target), v6, "target");
                assert_eq!(&na[24..26], &[2, 1], "target link-layer address option");
                assert_eq!(&na[26..32], &mac, "option carries the node's MAC");
                seen.neighbour_advertisements += 1;
            }
            _ => {}
        }
    }
    seen
}

#[test]
fn garp_and_na_reach_peer_on_bridge_and_update_its_neighbours() {
    require_root(WHY);
    let node = Netns::new("an-node").expect("netns");
    let switch = Netns::new("an-sw").expect("netns");
    let peer = Netns::new("an-peer").expect("netns");
    switch.add_bridge("br0").expect("bridge");
    veth(&node, "eth0", &switch, "p-node").expect("veth");
    veth(&peer, "eth0", &switch, "p-peer").expect("veth");
    for port in ["p-node", "p-peer"] {
        switch
            .exec(&["ip", "link", "set", port, "master", "br0"])
            .expect("enslave");
    }
    node.add_addr("eth0", "10.0.6.1/24").expect("addr");
    node.add_addr("eth0", "fd00:6::1/64").expect("addr");
    peer.add_addr("eth0", "10.0.6.2/24").expect("addr");
    peer.add_addr("eth0", "fd00:6::2/64").expect("addr");
    let (v4, v6) = (ip("10.0.6.100"), ip("fd00:6::100"));
    // The peer believes the VIPs are somewhere else (the previous holder).
    for vip in ["10.0.6.100", "fd00:6::100"] {
        peer.exec(&[
            "ip", "neigh", "replace", vip, "lladdr", FAKE_MAC, "dev", "eth0", "nud", "stale",
        ])
        .expect("seed neighbour");
    }
    let node_mac = mac_of(&node, "eth0");

    let config = AnnounceConfig {
        count: 3,
        interval: Duration::from_millis(100),
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    let done = AtomicBool::new(false);
    let (frames, report) = std::thread::scope(|s| {
        let listener = s.spawn(|| peer.enter(|| capture(&done, ready_tx)).expect("enter peer"));
        ready_rx.recv().expect("listener ready");
        let report = node
            .block_on(|| async {
                let m = VipManager::new("eth0", [v4, v6]).await.expect("manager");
                m.bind().await.expect("bind");
                let report = m.announcer(config).announce().await.expect("announce");
                m.unbind().await.expect("unbind");
                report
            })
            .expect("scenario");
        done.store(true, Ordering::Release);
        (listener.join().expect("listener"), report)
    });

    assert_eq!(report.garp_sent, 6, "{report:?}");
    assert_eq!(report.na_sent, 3, "{report:?}");
    assert_eq!(report.failed, 0);
    let seen = inspect(&frames, node_mac, v4, v6);
    assert_eq!(
        seen.arp_requests, 3,
        "gratuitous ARP requests seen by the peer"
    );
    assert_eq!(
        seen.arp_replies, 3,
        "gratuitous ARP replies seen by the peer"
    );
    assert_eq!(
        seen.neighbour_advertisements, 3,
        "unsolicited NAs seen by the peer"
    );
    assert_eq!(
        neigh_mac(&peer, "eth0", v4),
        Some(node_mac),
        "peer's ARP entry moved"
    );
    assert_eq!(
        neigh_mac(&peer, "eth0", v6),
        Some(node_mac),
        "peer's ND entry moved"
    );
}

#[test]
fn announce_on_lo_sends_nothing() {
    require_root(WHY);
    let ns = Netns::new("an-lo").expect("netns");
    let report = ns
        .block_on(|| async {
            let m = VipManager::new("lo", [ip("10.77.1.1"), ip("fd00:77:1::1")])
                .await
                .expect("manager");
            m.bind().await.expect("bind");
            m.announcer(AnnounceConfig::default())
                .announce()
                .await
                .expect("announce")
        })
        .expect("scenario");
    assert_eq!(report.garp_sent + report.na_sent, 0);
    assert_eq!(report.skipped, Some("loopback interface"));
}
