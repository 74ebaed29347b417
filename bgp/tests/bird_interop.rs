//! Interop with a real BIRD 2 as the router, in namespaces made by each test. Every assertion is
//! on BIRD's own view (`birdc show route all`, its log) or on a real session state.

mod common;

use std::time::Duration;

use common::*;
use cpvip_bgp::{Community, LargeCommunity, PeerConfig, Speaker};
use cpvip_lab::router::Bird;

const UP: Duration = Duration::from_secs(20);

fn show_routes(bird: &Bird) -> String {
    bird.birdc("show route all").unwrap_or_default()
}

#[test]
fn ipv4_announce_communities_withdraw_and_change() {
    let lab = Lab::new("bgp-b4");
    let bird = lab.start_bird(&bird_ebgp4(""));
    let bird = &bird;
    lab.s
        .block_on(move || async move {
            let mut cfg = speaker(SPEAKER_ASN, vec![PeerConfig::new(ip(R4), ROUTER_ASN)]);
            cfg.attributes.communities = vec![Community::new(65000, 100)];
            cfg.attributes.large_communities = vec![LargeCommunity {
                global: SPEAKER_ASN,
                local1: 1,
                local2: 2,
            }];
            cfg.attributes.med = Some(50);
            let h = Speaker::start(cfg).expect("start");
            h.set_routes(routes(&["203.0.113.10/32"]));
            wait_established(&h, R4, true, UP).await;
            wait_for("route in BIRD", UP, || {
                show_routes(bird).contains("203.0.113.10/32")
            })
            .await;
            let all = show_routes(bird);
            for want in [
                "BGP.origin: IGP",
                "BGP.as_path: 65001",
                "BGP.next_hop: 10.0.0.2",
                "BGP.med: 50",
                "BGP.community: (65000,100)",
                "BGP.large_community: (65001, 1, 2)",
            ] {
                assert!(all.contains(want), "missing {want:?} in:\n{all}");
            }
            let st = status(&h, R4);
            assert_eq!(st.prefixes_sent, 1);
            let neg = st.negotiated.expect("negotiated");
            assert_eq!(neg.hold_time, 3);
            assert!(neg.four_octet_as && neg.route_refresh);

            // set_routes change: one added, one removed, the unchanged set is a no-op.
            h.set_routes(routes(&["203.0.113.11/32"]));
            h.set_routes(routes(&["203.0.113.11/32"]));
            wait_for("changed route set in BIRD", UP, || {
                let r = show_routes(bird);
                r.contains("203.0.113.11/32") && !r.contains("203.0.113.10/32")
            })
            .await;
            // IPv6 routes are never sent on an IPv4 session.
            h.set_routes(routes(&["203.0.113.11/32", "2001:db8:100::10/128"]));
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(!show_routes(bird).contains("2001:db8:100::10"));
            assert_eq!(status(&h, R4).prefixes_sent, 1);

            // Withdraw everything.
            h.set_routes(routes(&[]));
            wait_for("withdrawal in BIRD", UP, || {
                !show_routes(bird).contains("203.0.113.11/32")
            })
            .await;
            assert_eq!(status(&h, R4).flaps, 0);
        })
        .expect("netns");
}

#[test]
fn ipv6_session_announces_128_via_mp_reach() {
    let lab = Lab::new("bgp-b6");
    let conf = bird_one_peer("s6", R6, S6, SPEAKER_ASN, "");
    let bird = lab.start_bird(&conf);
    let bird = &bird;
    lab.s
        .block_on(move || async move {
            let h = start_speaker(SPEAKER_ASN, R6);
            h.set_routes(routes(&["2001:db8:100::10/128", "203.0.113.10/32"]));
            wait_established(&h, R6, true, UP).await;
            wait_for("IPv6 route in BIRD", UP, || {
                show_routes(bird).contains("2001:db8:100::10/128")
            })
            .await;
            let all = show_routes(bird);
            assert!(all.contains("BGP.next_hop: 2001:db8::2"), "{all}");
            assert!(
                !all.contains("203.0.113.10/32"),
                "IPv4 route on an IPv6 session: {all}"
            );
            h.set_routes(routes(&[]));
            wait_for("IPv6 withdrawal (MP_UNREACH) in BIRD", UP, || {
                !show_routes(bird).contains("2001:db8:100::10/128")
            })
            .await;
        })
        .expect("netns");
}

#[test]
fn ibgp_sends_local_pref_and_empty_as_path() {
    let lab = Lab::new("bgp-bi");
    let conf = bird_one_peer("s4", R4, S4, ROUTER_ASN, "");
    let bird = lab.start_bird(&conf);
    let bird = &bird;
    lab.s
        .block_on(move || async move {
            let mut cfg = speaker(ROUTER_ASN, vec![PeerConfig::new(ip(R4), ROUTER_ASN)]);
            cfg.attributes.local_pref = Some(200);
            let h = Speaker::start(cfg).expect("start");
            h.set_routes(routes(&["203.0.113.20/32"]));
            wait_for("iBGP route in BIRD", UP, || {
                show_routes(bird).contains("203.0.113.20/32")
            })
            .await;
            let all = show_routes(bird);
            assert!(all.contains("BGP.local_pref: 200"), "{all}");
            assert!(
                all.contains("BGP.as_path: \n") || all.contains("BGP.as_path:\n"),
                "{all}"
            );
            assert!(all.contains("BGP.next_hop: 10.0.0.2"), "{all}");
        })
        .expect("netns");
}

#[test]
fn four_octet_local_asn() {
    let lab = Lab::new("bgp-b32");
    let asn = 4_200_000_001;
    let conf = bird_one_peer("s4", R4, S4, asn, "");
    let bird = lab.start_bird(&conf);
    let bird = &bird;
    lab.s
        .block_on(move || async move {
            let h = start_speaker(asn, R4);
            h.set_routes(routes(&["203.0.113.30/32"]));
            wait_for("route from AS 4200000001 in BIRD", UP, || {
                show_routes(bird).contains("BGP.as_path: 4200000001")
            })
            .await;
            let proto = bird.birdc("show protocols all s4").expect("birdc");
            assert!(proto.contains("Established"), "{proto}");
            assert!(proto.contains("4200000001"), "{proto}");
        })
        .expect("netns");
}

#[test]
fn hold_timer_expires_when_router_freezes_and_session_returns() {
    let lab = Lab::new("bgp-bh");
    let bird = lab.start_bird(&bird_ebgp4("hold time 3;"));
    let bird = &bird;
    lab.s
        .block_on(move || async move {
            let h = start_speaker(SPEAKER_ASN, R4);
            wait_established(&h, R4, true, UP).await;
            bird.proc().signal(libc::SIGSTOP).expect("SIGSTOP");
            let frozen = tokio::time::Instant::now();
            wait_established(&h, R4, false, Duration::from_secs(10)).await;
            let took = frozen.elapsed();
            bird.proc().signal(libc::SIGCONT).expect("SIGCONT");
            let st = status(&h, R4);
            assert!(
                st.last_error.as_deref() == Some("hold timer expired"),
                "{:?}",
                st.last_error
            );
            // Generous bound: negotiated hold is 3 s.
            assert!(took >= Duration::from_secs(1), "dropped after {took:?}");
            wait_established(&h, R4, true, Duration::from_secs(40)).await;
            assert_eq!(status(&h, R4).flaps, 1);
        })
        .expect("netns");
}

#[test]
fn router_restart_reconnects_and_shutdown_sends_cease_with_message() {
    let lab = Lab::new("bgp-br");
    let conf = bird_ebgp4("");
    let mut first = lab.start_bird(&conf);
    let first = &mut first;
    let (r, dir) = (&lab.r, lab.dir.path());
    lab.s
        .block_on(move || async move {
            let h = start_speaker(SPEAKER_ASN, R4);
            h.set_routes(routes(&["203.0.113.40/32"]));
            wait_established(&h, R4, true, UP).await;

            first.proc_mut().stop(Duration::from_secs(5));
            wait_established(&h, R4, false, UP).await;
            let bird = Bird::start(r, dir, &conf).expect("bird again");
            wait_for(
                "route in the restarted BIRD",
                Duration::from_secs(60),
                || show_routes(&bird).contains("203.0.113.40/32"),
            )
            .await;

            let reason = "cpvip test: node drained";
            let t = tokio::time::Instant::now();
            h.shutdown(reason, Duration::from_secs(3)).await;
            assert!(t.elapsed() < Duration::from_secs(4));
            // The route goes at once (withdraw + Cease), not after a hold time.
            wait_for("route gone after shutdown", Duration::from_secs(2), || {
                !show_routes(&bird).contains("203.0.113.40/32")
            })
            .await;
            wait_for(
                "Cease with our message in BIRD's log",
                Duration::from_secs(5),
                || bird.log().contains(reason),
            )
            .await;
        })
        .expect("netns");
}

#[test]
fn passive_peer_accepts_the_router_and_collisions_resolve() {
    let lab = Lab::new("bgp-bp");
    // Two sessions from BIRD: `p` to a passive peer, `c` to an active peer that also listens
    // (both sides connect: RFC 4271 §6.8 collision resolution keeps exactly one).
    let conf = bird_config(&[
        BirdPeer {
            name: "p",
            local: R4,
            local_asn: ROUTER_ASN,
            neighbor: S4,
            neighbor_asn: SPEAKER_ASN,
            extra: "",
        },
        BirdPeer {
            name: "c",
            local: R6,
            local_asn: ROUTER_ASN,
            neighbor: S6,
            neighbor_asn: SPEAKER_ASN,
            extra: "connect delay time 1;",
        },
    ]);
    let bird = lab.start_bird(&conf);
    let bird = &bird;
    lab.s
        .block_on(move || async move {
            let mut passive = PeerConfig::new(ip(R4), ROUTER_ASN);
            passive.passive = true;
            let mut cfg = speaker(
                SPEAKER_ASN,
                vec![passive, PeerConfig::new(ip(R6), ROUTER_ASN)],
            );
            cfg.listen_port = Some(179);
            let h = Speaker::start(cfg).expect("start");
            h.set_routes(routes(&["203.0.113.70/32", "2001:db8:100::70/128"]));
            wait_established(&h, R4, true, UP).await;
            wait_established(&h, R6, true, UP).await;
            wait_for("both routes in BIRD", UP, || {
                let r = show_routes(bird);
                r.contains("203.0.113.70/32") && r.contains("2001:db8:100::70/128")
            })
            .await;
            // Stable: no flap once the collision (if any) was resolved.
            tokio::time::sleep(Duration::from_secs(4)).await;
            assert_eq!(status(&h, R4).flaps, 0);
            assert_eq!(status(&h, R6).flaps, 0);
            let protos = bird.birdc("show protocols").expect("birdc");
            assert_eq!(protos.matches("Established").count(), 2, "{protos}");
        })
        .expect("netns");
}

#[test]
fn peer_down_hook_tears_down_at_once_and_reconnects() {
    let lab = Lab::new("bgp-bfd");
    let bird = lab.start_bird(&bird_ebgp4(""));
    let bird = &bird;
    lab.s
        .block_on(move || async move {
            let h = start_speaker(SPEAKER_ASN, R4);
            h.set_routes(routes(&["203.0.113.80/32"]));
            wait_for("route in BIRD", UP, || {
                show_routes(bird).contains("203.0.113.80/32")
            })
            .await;
            let down = h.peer_down_sender(ip(R4)).expect("configured peer");
            down.peer_down("bfd: neighbor down").await;
            wait_for(
                "route gone after the forced down",
                Duration::from_secs(2),
                || !show_routes(bird).contains("203.0.113.80/32"),
            )
            .await;
            let st = status(&h, R4);
            assert_eq!(st.flaps, 1);
            assert!(
                st.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("bfd: neighbor down")),
                "{st:?}"
            );
            // It comes back by itself after the back-off.
            wait_for("route back after reconnect", UP, || {
                show_routes(bird).contains("203.0.113.80/32")
            })
            .await;
        })
        .expect("netns");
}
