//! BFD interoperability with a real FRR bfdd (with zebra, which bfdd needs for interfaces).

mod bfd_common;

use std::time::{Duration, Instant};

use bfd_common::{
    Link, NODE, ROUTER, config, frr_bfd_peers, poll_router, start_frr_bfdd, start_until_up,
    up_with_detection, wait_for,
};
use cpvip_bgp::bfd::{Bfd, Diag, State};
use cpvip_lab::router::Frr;
use serde_json::Value;

const PEER_STANZA: &str = "peer 10.77.0.2 local-address 10.77.0.1 interface eth0";

fn start_frr(lab: &Link, rx_ms: u64, tx_ms: u64, mult: u8) -> Frr {
    let bfdd = format!(
        "bfd\n {PEER_STANZA}\n  detect-multiplier {mult}\n  receive-interval {rx_ms}\n  \
         transmit-interval {tx_ms}\n  no shutdown\n exit\nexit\n"
    );
    start_frr_bfdd(&lab.router, lab.dir.path(), "rtr", bfdd)
}

/// FRR's JSON view of the session with our node.
fn frr_peer(frr: &Frr) -> Option<Value> {
    frr_bfd_peers(frr)?
        .into_iter()
        .find(|p| p["peer"] == NODE && p["local"] == ROUTER)
}

fn status_is(frr: &Frr, status: &str) -> Option<Value> {
    frr_peer(frr).filter(|p| p["status"] == status)
}

#[test]
fn session_comes_up_and_both_sides_negotiate_the_configured_intervals() {
    let lab = Link::new("bfd-frr-up");
    let frr = start_frr(&lab, 100, 100, 3);
    lab.node
        .block_on(|| async {
            let ours = cpvip_bgp::bfd::BfdConfig {
                desired_min_tx: Duration::from_millis(200),
                required_min_rx: Duration::from_millis(150),
                detect_mult: 4,
                ..config(100, 3)
            };
            let (session, _, up) = start_until_up(
                ours,
                Duration::from_secs(15),
                up_with_detection(450),
                || frr.logs(),
            )
            .await;
            assert_eq!(up.tx_interval, Some(Duration::from_millis(200)));
            assert_eq!(up.rx_interval, Duration::from_millis(150));
            assert_eq!(up.remote_detect_mult, 3);
            // FRR reports what it learned from us ("remote-*") and what it uses.
            let seen = poll_router(
                Instant::now(),
                Duration::from_secs(5),
                Duration::from_millis(50),
                || {
                    status_is(&frr, "up").filter(|p| {
                        p["remote-transmit-interval"] == 200
                            && p["remote-receive-interval"] == 150
                            && p["remote-detect-multiplier"] == 4
                    })
                },
            )
            .await;
            assert!(seen.is_some(), "FRR shows {:?}", frr_peer(&frr));
            println!("FRR peer: {}", frr_peer(&frr).unwrap_or_default());
            session.shutdown().await;
        })
        .expect("node namespace");
}

#[test]
fn frr_declares_down_when_we_fall_silent_and_up_again_when_we_resume() {
    let lab = Link::new("bfd-frr-silent");
    let frr = start_frr(&lab, 100, 100, 3);
    lab.node
        .block_on(|| async {
            let bfd = Bfd::new();
            let session = bfd.start(config(100, 3)).expect("start session");
            let mut status = session.status();
            wait_for(&mut status, Duration::from_secs(15), up_with_detection(300))
                .await
                .unwrap_or_else(|s| panic!("not Up: {s:?}\n{}", frr.logs()));
            let up = poll_router(
                Instant::now(),
                Duration::from_secs(5),
                Duration::from_millis(20),
                || status_is(&frr, "up").filter(|p| p["remote-transmit-interval"] == 100),
            )
            .await;
            assert!(up.is_some(), "FRR: {:?}", frr_peer(&frr));

            let t0 = Instant::now();
            drop(session);
            let (peer, after) = poll_router(
                t0,
                Duration::from_secs(5),
                Duration::from_millis(10),
                || frr_peer(&frr).filter(|p| p["status"] != "up"),
            )
            .await
            .unwrap_or_else(|| panic!("FRR still up: {:?}", frr_peer(&frr)));
            println!(
                "FRR declared the silent node down after {after:?} (detection 300 ms): {peer}"
            );
            assert_eq!(peer["diagnostic"], "control detection time expired");
            assert!(
                after < Duration::from_millis(300 + 700),
                "FRR took {after:?}"
            );

            let session = bfd.start(config(100, 3)).expect("restart session");
            let mut status = session.status();
            wait_for(&mut status, Duration::from_secs(15), |s| s.is_up())
                .await
                .unwrap_or_else(|s| panic!("not Up again: {s:?}"));
            let again = poll_router(
                Instant::now(),
                Duration::from_secs(5),
                Duration::from_millis(50),
                || status_is(&frr, "up"),
            )
            .await;
            assert!(again.is_some(), "FRR: {:?}", frr_peer(&frr));
            session.shutdown().await;
        })
        .expect("node namespace");
}

#[test]
fn frr_shutting_the_peer_is_admin_down_not_a_failure_and_freezing_bfdd_is() {
    let lab = Link::new("bfd-frr-stop");
    let frr = start_frr(&lab, 100, 100, 3);
    lab.node
        .block_on(|| async {
            let (session, mut status, _) = start_until_up(
                config(100, 3),
                Duration::from_secs(15),
                |s| s.is_up(),
                || frr.logs(),
            )
            .await;

            // `shutdown` on the peer: FRR sends AdminDown (RFC 5882 §3.2: not a failure).
            let t0 = Instant::now();
            tokio::task::block_in_place(|| {
                frr.vtysh(&["configure terminal", "bfd", PEER_STANZA, "shutdown"])
            })
            .expect("vtysh shutdown");
            let down = wait_for(&mut status, Duration::from_secs(5), |s| !s.is_up())
                .await
                .unwrap_or_else(|s| panic!("still Up: {s:?}"));
            println!("FRR peer shut down: {down:?} after {:?}", t0.elapsed());
            assert_eq!(down.state, State::Down);
            assert_eq!(down.diag, Diag::NeighborSignaledDown);
            assert_eq!(down.remote_state, State::AdminDown);
            assert!(down.peer_admin_down);
            assert_eq!(down.failures, 0, "AdminDown must not tear BGP down");

            tokio::task::block_in_place(|| {
                frr.vtysh(&["configure terminal", "bfd", PEER_STANZA, "no shutdown"])
            })
            .expect("vtysh no shutdown");
            let up = wait_for(&mut status, Duration::from_secs(15), up_with_detection(300))
                .await
                .unwrap_or_else(|s| panic!("not Up again: {s:?}"));
            assert!(!up.peer_admin_down);

            // bfdd frozen: silence, a failure with diag 1.
            let bfdd = frr.daemon("bfdd").expect("bfdd process");
            let t0 = Instant::now();
            bfdd.signal(libc::SIGSTOP).expect("SIGSTOP bfdd");
            let down = wait_for(&mut status, Duration::from_secs(5), |s| !s.is_up()).await;
            let after = t0.elapsed();
            bfdd.signal(libc::SIGCONT).expect("SIGCONT bfdd");
            let down = down.unwrap_or_else(|s| panic!("still Up: {s:?}"));
            println!("we declared frozen bfdd down after {after:?} (detection 300 ms)");
            assert_eq!(down.diag, Diag::ControlDetectionTimeExpired);
            assert!(!down.peer_admin_down);
            assert_eq!(down.failures, 1);
            assert!(after < Duration::from_millis(300 + 700), "took {after:?}");
            session.shutdown().await;
        })
        .expect("node namespace");
}

#[test]
fn our_shutdown_shows_as_admin_down_in_frr() {
    let lab = Link::new("bfd-frr-admin");
    let frr = start_frr(&lab, 100, 100, 3);
    lab.node
        .block_on(|| async {
            let (session, _, _) = start_until_up(
                config(100, 3),
                Duration::from_secs(15),
                |s| s.is_up(),
                || frr.logs(),
            )
            .await;
            let up = poll_router(
                Instant::now(),
                Duration::from_secs(5),
                Duration::from_millis(20),
                || status_is(&frr, "up"),
            )
            .await;
            assert!(up.is_some(), "FRR: {:?}", frr_peer(&frr));

            session.shutdown().await;
            let (peer, after) = poll_router(
                Instant::now(),
                Duration::from_secs(5),
                Duration::from_millis(20),
                || frr_peer(&frr).filter(|p| p["status"] == "down"),
            )
            .await
            .unwrap_or_else(|| panic!("FRR: {:?}", frr_peer(&frr)));
            println!("FRR after our shutdown ({after:?}): {peer}");
            assert_eq!(peer["diagnostic"], "neighbor signaled session down");
            assert_eq!(peer["remote-diagnostic"], "administratively down");
        })
        .expect("node namespace");
}

#[test]
fn timer_change_while_up_runs_a_poll_sequence_frr_follows_without_a_flap() {
    let lab = Link::new("bfd-frr-poll");
    let frr = start_frr(&lab, 100, 100, 3);
    lab.node
        .block_on(|| async {
            let (session, mut status, _) = start_until_up(
                config(100, 3),
                Duration::from_secs(15),
                up_with_detection(300),
                || frr.logs(),
            )
            .await;
            session
                .set_timers(cpvip_bgp::bfd::Timers {
                    desired_min_tx: Duration::from_millis(300),
                    required_min_rx: Duration::from_millis(250),
                    detect_mult: 5,
                })
                .await;
            let changed = wait_for(&mut status, Duration::from_secs(5), |s| {
                s.tx_interval == Some(Duration::from_millis(300))
                    && s.detection_time == Duration::from_millis(750)
            })
            .await
            .unwrap_or_else(|s| panic!("timers not applied: {s:?}"));
            assert!(changed.is_up());
            let seen = poll_router(
                Instant::now(),
                Duration::from_secs(5),
                Duration::from_millis(50),
                || {
                    status_is(&frr, "up").filter(|p| {
                        p["remote-transmit-interval"] == 300
                            && p["remote-receive-interval"] == 250
                            && p["remote-detect-multiplier"] == 5
                    })
                },
            )
            .await;
            assert!(seen.is_some(), "FRR: {:?}", frr_peer(&frr));
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = status.borrow().clone();
            assert!(now.is_up() && now.failures == 0, "{now:?}");
            assert!(status_is(&frr, "up").is_some(), "FRR: {:?}", frr_peer(&frr));
            session.shutdown().await;
        })
        .expect("node namespace");
}
