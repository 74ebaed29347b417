//! Interop with real FRR bgpd (with zebra) as the router, in namespaces made by each test.
//! Assertions use FRR's own JSON view of its BGP table and neighbors.

mod common;

use std::time::Duration;

use common::*;
use cpvip_bgp::{Community, LargeCommunity, PeerConfig, Speaker};
use cpvip_lab::router::{Frr, FrrConfig, FrrDaemons};
use serde_json::Value;

const UP: Duration = Duration::from_secs(30);

/// bgpd.conf for AS 65000 with the given neighbor lines (each ` neighbor ...`) and IPv6
/// activation of `v6_neighbors`.
fn bgpd(neighbors: &str, v6_neighbors: &[&str]) -> String {
    let mut c = format!(
        "hostname r\nrouter bgp {ROUTER_ASN}\n bgp router-id {R4}\n no bgp ebgp-requires-policy\n \
         timers bgp 1 3\n{neighbors}"
    );
    if !v6_neighbors.is_empty() {
        c.push_str(" address-family ipv6 unicast\n");
        for n in v6_neighbors {
            c.push_str(&format!("  neighbor {n} activate\n"));
        }
        c.push_str(" exit-address-family\n");
    }
    c
}

fn start_frr(lab: &Lab, bgpd_conf: String) -> Frr {
    Frr::start(
        &lab.r,
        lab.dir.path(),
        FrrDaemons {
            bgp: true,
            bfd: false,
        },
        &FrrConfig {
            zebra: "hostname r\n".into(),
            bgpd: bgpd_conf,
            bfdd: String::new(),
        },
    )
    .expect("frr")
}

fn json(frr: &Frr, cmd: &str) -> Value {
    frr.vtysh(&[cmd])
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

fn frr_route(frr: &Frr, af: &str, prefix: &str) -> Value {
    let v = json(frr, &format!("show bgp {af} unicast {prefix} json"));
    v["paths"][0].clone()
}

fn frr_state(frr: &Frr, neighbor: &str) -> String {
    let v = json(frr, &format!("show bgp neighbors {neighbor} json"));
    v[neighbor]["bgpState"].as_str().unwrap_or("").to_string()
}

#[test]
fn ebgp_ipv4_and_ipv6_with_communities() {
    let lab = Lab::new("bgp-f46");
    let frr = start_frr(
        &lab,
        bgpd(
            &format!(
                " neighbor {S4} remote-as {SPEAKER_ASN}\n neighbor {S4} timers connect 1\n \
                 neighbor {S6} remote-as {SPEAKER_ASN}\n neighbor {S6} timers connect 1\n"
            ),
            &[S6],
        ),
    );
    let frr = &frr;
    lab.s
        .block_on(move || async move {
            let mut cfg = speaker(
                SPEAKER_ASN,
                vec![
                    PeerConfig::new(ip(R4), ROUTER_ASN),
                    PeerConfig::new(ip(R6), ROUTER_ASN),
                ],
            );
            cfg.attributes.communities = vec![Community::new(65000, 100)];
            cfg.attributes.large_communities = vec![LargeCommunity {
                global: SPEAKER_ASN,
                local1: 1,
                local2: 2,
            }];
            let h = Speaker::start(cfg).expect("start");
            h.set_routes(routes(&["203.0.113.10/32", "2001:db8:100::10/128"]));
            wait_for("IPv4 route in FRR", UP, || {
                frr_route(frr, "ipv4", "203.0.113.10/32").is_object()
            })
            .await;
            let p = frr_route(frr, "ipv4", "203.0.113.10/32");
            assert_eq!(p["aspath"]["string"], "65001", "{p}");
            assert_eq!(p["community"]["string"], "65000:100", "{p}");
            assert_eq!(p["largeCommunity"]["string"], "65001:1:2", "{p}");
            assert_eq!(p["nexthops"][0]["ip"], S4, "{p}");
            wait_for("IPv6 route in FRR", UP, || {
                frr_route(frr, "ipv6", "2001:db8:100::10/128").is_object()
            })
            .await;
            let p = frr_route(frr, "ipv6", "2001:db8:100::10/128");
            assert_eq!(p["nexthops"][0]["ip"], S6, "{p}");
            // The IPv4 session carries no IPv6 route and vice versa.
            assert!(!frr_route(frr, "ipv6", "203.0.113.10/32").is_object());
            h.set_routes(routes(&["2001:db8:100::10/128"]));
            wait_for("IPv4 withdrawal in FRR", UP, || {
                !frr_route(frr, "ipv4", "203.0.113.10/32").is_object()
            })
            .await;
            assert!(frr_route(frr, "ipv6", "2001:db8:100::10/128").is_object());
        })
        .expect("netns");
}

#[test]
fn ibgp_with_frr() {
    let lab = Lab::new("bgp-fi");
    let frr = start_frr(
        &lab,
        bgpd(
            &format!(" neighbor {S4} remote-as {ROUTER_ASN}\n neighbor {S4} timers connect 1\n"),
            &[],
        ),
    );
    let frr = &frr;
    lab.s
        .block_on(move || async move {
            let h = start_speaker(ROUTER_ASN, R4);
            h.set_routes(routes(&["203.0.113.50/32"]));
            wait_for("iBGP route in FRR", UP, || {
                frr_route(frr, "ipv4", "203.0.113.50/32").is_object()
            })
            .await;
            let p = frr_route(frr, "ipv4", "203.0.113.50/32");
            assert_eq!(p["locPrf"], 100, "{p}");
            assert_eq!(p["aspath"]["string"], "Local", "{p}");

            // ROUTE-REFRESH (RFC 2918): FRR asks, we re-send our routes as UPDATEs.
            let updates = || {
                json(frr, &format!("show bgp neighbors {S4} json"))[S4]["messageStats"]
                    ["updatesRecv"]
                    .as_u64()
                    .unwrap_or(0)
            };
            let before = updates();
            frr.vtysh(&[&format!("clear bgp ipv4 unicast {S4} soft in")])
                .expect("soft in");
            wait_for("UPDATE re-sent after ROUTE-REFRESH", UP, || {
                updates() > before
            })
            .await;
            assert!(frr_route(frr, "ipv4", "203.0.113.50/32").is_object());
            assert_eq!(status(&h, R4).flaps, 0);
        })
        .expect("netns");
}

#[test]
fn md5_right_key_establishes_wrong_key_never_does() {
    let lab = Lab::new("bgp-fmd5");
    let frr = start_frr(
        &lab,
        bgpd(
            &format!(
                " neighbor {S4} remote-as {SPEAKER_ASN}\n neighbor {S4} password s3cret\n \
                 neighbor {S4} timers connect 1\n neighbor {S6} remote-as {SPEAKER_ASN}\n \
                 neighbor {S6} password s3cret\n neighbor {S6} timers connect 1\n"
            ),
            &[S6],
        ),
    );
    let frr = &frr;
    lab.s
        .block_on(move || async move {
            let mut good = PeerConfig::new(ip(R4), ROUTER_ASN);
            good.password = Some("s3cret".into());
            let mut bad = PeerConfig::new(ip(R6), ROUTER_ASN);
            bad.password = Some("wrong".into());
            let h = Speaker::start(speaker(SPEAKER_ASN, vec![good, bad])).expect("start");
            wait_established(&h, R4, true, UP).await;
            wait_for("FRR sees the MD5 session", UP, || {
                frr_state(frr, S4) == "Established"
            })
            .await;
            // Several connect attempts (1, 2, 4 s back-off) with the wrong key: none gets through.
            tokio::time::sleep(Duration::from_secs(8)).await;
            let st = status(&h, R6);
            assert_ne!(st.state, cpvip_bgp::State::Established);
            assert_eq!(st.messages_received, 0, "{st:?}");
            assert_ne!(frr_state(frr, S6), "Established");
        })
        .expect("netns");
}

#[test]
fn gtsm_accepts_ttl_255_and_rejects_ttl_64() {
    let lab = Lab::new("bgp-fgtsm");
    let frr = start_frr(
        &lab,
        bgpd(
            &format!(
                " neighbor {S4} remote-as {SPEAKER_ASN}\n neighbor {S4} ttl-security hops 1\n \
                 neighbor {S4} timers connect 1\n neighbor {S6} remote-as {SPEAKER_ASN}\n \
                 neighbor {S6} ebgp-multihop 64\n neighbor {S6} timers connect 1\n"
            ),
            &[S6],
        ),
    );
    let frr = &frr;
    lab.s
        .block_on(move || async move {
            let mut gtsm4 = PeerConfig::new(ip(R4), ROUTER_ASN);
            gtsm4.gtsm = true;
            let mut gtsm6 = PeerConfig::new(ip(R6), ROUTER_ASN);
            gtsm6.gtsm = true;
            let h = Speaker::start(speaker(SPEAKER_ASN, vec![gtsm4, gtsm6])).expect("start");
            wait_established(&h, R4, true, UP).await;
            tokio::time::sleep(Duration::from_secs(8)).await;
            let st = status(&h, R6);
            assert_ne!(st.state, cpvip_bgp::State::Established);
            assert_eq!(st.messages_received, 0, "{st:?}");
            assert_ne!(frr_state(frr, S6), "Established");
        })
        .expect("netns");
}
