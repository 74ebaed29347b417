//! RFC 5881 transport rules observed on the wire: TTL 255 and a 49152-65535 source port on
//! send, TTL 255 required on receive, and IPv6 single hop against a real BIRD.

mod bfd_common;

use std::time::Duration;

use bfd_common::{
    Link, NODE, ROUTER, addr, attach_to_switch, bird_bfd_config, config, start_frr_bfdd,
    up_with_detection, wait_for,
};
use cpvip_bgp::bfd::BfdError;
use cpvip_bgp::bfd::packet::ControlPacket;
use cpvip_bgp::bfd::{Bfd, BfdConfig, Diag, State};
use cpvip_lab::netns::{Netns, TempDir, require_binary, require_root, wait_until};
use cpvip_lab::router::Bird;

fn down_packet(my_discriminator: u32) -> [u8; 24] {
    ControlPacket {
        diag: Diag::None,
        state: State::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        auth_present: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discriminator,
        your_discriminator: 0,
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 100_000,
        required_min_echo_rx_us: 0,
    }
    .encode()
}

#[test]
fn packets_with_ttl_below_255_are_ignored_and_ttl_255_accepted() {
    let lab = Link::new("bfd-ttl");
    let send_from_router = |ttl: u32, discriminator: u32| {
        lab.router
            .enter(|| {
                let socket = std::net::UdpSocket::bind((addr(ROUTER), 49999)).expect("bind");
                socket.set_ttl(ttl).expect("ttl");
                socket
                    .send_to(&down_packet(discriminator), (addr(NODE), 3784))
                    .expect("send");
            })
            .expect("router namespace");
    };
    lab.node
        .block_on(|| async {
            let session = Bfd::new().start(config(100, 3)).expect("start session");
            let mut status = session.status();

            tokio::task::block_in_place(|| send_from_router(64, 0x64));
            let moved = wait_for(&mut status, Duration::from_millis(700), |s| {
                s.remote_discriminator != 0 || s.state != State::Down
            })
            .await;
            assert!(moved.is_err(), "a TTL 64 packet was accepted: {moved:?}");

            tokio::task::block_in_place(|| send_from_router(255, 0xff));
            let init = wait_for(&mut status, Duration::from_secs(2), |s| {
                s.state == State::Init
            })
            .await
            .unwrap_or_else(|s| panic!("TTL 255 packet ignored: {s:?}"));
            assert_eq!(init.remote_discriminator, 0xff);
            session.shutdown().await;
        })
        .expect("node namespace");
}

#[test]
fn we_send_with_ttl_255_from_an_ephemeral_port_to_3784() {
    require_binary("tcpdump", "apt-get install -y tcpdump");
    let lab = Link::new("bfd-wire");
    let capture = lab
        .router
        .spawn(
            &[
                "tcpdump", "-l", "-n", "-v", "-c", "2", "-i", "eth0", "udp", "port", "3784",
            ],
            Some(&lab.dir.path().join("tcpdump.txt")),
        )
        .expect("tcpdump");
    // tcpdump needs a moment to open the capture.
    std::thread::sleep(Duration::from_millis(500));
    lab.node
        .block_on(|| async {
            let session = Bfd::new().start(config(100, 3)).expect("start session");
            // Enable sends at once, then at the 1 s slow-start rate.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            session.shutdown().await;
        })
        .expect("node namespace");
    let capture_file = lab.dir.path().join("tcpdump.txt");
    let read = || std::fs::read_to_string(&capture_file).unwrap_or_default();
    // tcpdump prints each packet as it comes (-l); give its output a moment to land.
    wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
        read().contains(&format!("> {ROUTER}.3784"))
    });
    let text = read();
    drop(capture);
    // "IP (tos 0xc0, ttl 255, ...) 10.77.0.2.53211 > 10.77.0.1.3784: BFDv1, ..."
    let header = text
        .lines()
        .find(|l| l.starts_with("IP ") || l.contains(" IP ("))
        .unwrap_or_else(|| panic!("no packet captured:\n{text}"));
    assert!(header.contains("ttl 255"), "{text}");
    assert!(header.contains("tos 0xc0"), "CS6: {text}");
    let ports = text
        .lines()
        .find(|l| l.contains(&format!("{NODE}.")) && l.contains(&format!("> {ROUTER}.3784")))
        .unwrap_or_else(|| panic!("no {NODE} > {ROUTER}.3784 line:\n{text}"));
    let source_port: u16 = ports
        .split_whitespace()
        .next()
        .and_then(|a| a.rsplit('.').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no source port in {ports}"));
    assert!(
        (49152..=65535).contains(&source_port),
        "source port {source_port}"
    );
}

#[test]
fn ipv6_session_with_bird_comes_up() {
    let lab = Link::new("bfd-v6");
    lab.router
        .add_addr("eth0", "fd77::1/64")
        .expect("v6 router");
    lab.node.add_addr("eth0", "fd77::2/64").expect("v6 node");
    let bird = Bird::start(
        &lab.router,
        lab.dir.path(),
        r#"log stderr all;
router id 10.77.0.1;
protocol device {}
protocol bfd bfd1 {
  interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
  neighbor fd77::2 dev "eth0";
}
"#,
    )
    .expect("bird");
    lab.node
        .block_on(|| async {
            let session = Bfd::new()
                .start(BfdConfig {
                    peer: addr("fd77::1"),
                    local: addr("fd77::2"),
                    ..config(100, 3)
                })
                .expect("start v6 session");
            let mut status = session.status();
            let up = wait_for(&mut status, Duration::from_secs(10), up_with_detection(300))
                .await
                .unwrap_or_else(|s| panic!("not Up over IPv6: {s:?}\n{}", bird.log()));
            assert_eq!(up.tx_interval, Some(Duration::from_millis(100)));
            let shown =
                tokio::task::block_in_place(|| bird.birdc("show bfd sessions")).expect("birdc");
            assert!(
                shown
                    .lines()
                    .any(|l| l.starts_with("fd77::2") && l.contains(" Up ")),
                "{shown}"
            );
            session.shutdown().await;
        })
        .expect("node namespace");
}

#[test]
fn two_sessions_share_one_local_address_and_a_duplicate_is_refused() {
    // node, a BIRD router and an FRR router on one bridge: both peers reach our one socket.
    require_root("BFD tests create network namespaces and run routers");
    let dir = TempDir::new("bfd-two").expect("temp dir");
    let switch = Netns::new("bfd-two-sw").expect("switch namespace");
    switch.add_bridge("br0").expect("bridge");
    let node = Netns::new("bfd-two-n").expect("node namespace");
    let bird_ns = Netns::new("bfd-two-b").expect("bird namespace");
    let frr_ns = Netns::new("bfd-two-f").expect("frr namespace");
    attach_to_switch(
        &switch,
        &[
            (&node, "p1", NODE),
            (&bird_ns, "p2", ROUTER),
            (&frr_ns, "p3", "10.77.0.3"),
        ],
    );
    let bird_dir = dir.path().join("bird");
    std::fs::create_dir_all(&bird_dir).expect("bird dir");
    let bird = Bird::start(&bird_ns, &bird_dir, &bird_bfd_config(100, 100, 3)).expect("bird");
    let frr = start_frr_bfdd(
        &frr_ns,
        dir.path(),
        "rtr2",
        "bfd\n peer 10.77.0.2 local-address 10.77.0.3 interface eth0\n  \
         detect-multiplier 3\n  receive-interval 200\n  transmit-interval 200\n \
         exit\nexit\n"
            .into(),
    );
    node.block_on(|| async {
        let bfd = Bfd::new();
        let one = bfd.start(config(100, 3)).expect("first session");
        let two = bfd
            .start(BfdConfig {
                peer: addr("10.77.0.3"),
                ..config(100, 3)
            })
            .expect("second session on the same local address");
        assert!(matches!(
            bfd.start(config(100, 3)),
            Err(BfdError::Duplicate { .. })
        ));
        let (mut s1, mut s2) = (one.status(), two.status());
        let up1 = wait_for(&mut s1, Duration::from_secs(15), up_with_detection(300))
            .await
            .unwrap_or_else(|s| panic!("BIRD session not Up: {s:?}\n{}", bird.log()));
        let up2 = wait_for(&mut s2, Duration::from_secs(15), up_with_detection(600))
            .await
            .unwrap_or_else(|s| panic!("FRR session not Up: {s:?}\n{}", frr.logs()));
        assert_ne!(up1.local_discriminator, up2.local_discriminator);
        // Dropping one leaves the other, and the shared socket, running.
        drop(one);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(s2.borrow().is_up(), "{:?}", *s2.borrow());
        assert_eq!(s2.borrow().failures, 0);
        two.shutdown().await;
    })
    .expect("node namespace");
}
