//! The composed service with a real TCP health check (a stand-in for the supervisor's 9345),
//! a real HTTP server read by the `cpvip status` client, and spy actuators; real time.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};

use super::*;
use crate::daemon::lifecycle::{CEASE_REASON, EXIT_OK, NoElection};
use crate::daemon::testkit::{Call, Spy};
use crate::daemon::{DaemonSettings, Mode};
use crate::health::RiseFall;
use crate::status::fetch_status;

const INTERVAL: Duration = Duration::from_millis(100);
const FALL: u32 = 3;
const BOUND: Duration = Duration::from_secs(10);

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < BOUND, "timed out waiting for {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

async fn status(addr: SocketAddr) -> crate::http::StatusReport {
    let body = fetch_status(addr).await.expect("daemon reachable");
    serde_json::from_str(&body).expect("status report")
}

#[tokio::test]
async fn anycast_node_follows_its_check_and_shuts_down_cleanly() {
    let stand_in = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind stand-in");
    let check_addr = stand_in.local_addr().expect("addr");
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let http_addr = http.local_addr().expect("addr");
    let spy = Spy::default();
    let vip = "192.0.2.10".parse().expect("literal");
    let service = Service {
        settings: DaemonSettings::new(Mode::Anycast, "cp-1", vec![vip]),
        checks: vec![crate::health::Check::tcp("127.0.0.1", check_addr.port())],
        health: crate::health::HealthSettings {
            interval: INTERVAL,
            timeout: Duration::from_millis(500),
            thresholds: RiseFall {
                rise: 2,
                fall: FALL,
            },
        },
        vip: spy.clone(),
        routes: spy.clone(),
        election: NoElection::default(),
        http,
        peers: Box::new(Vec::new),
        speaker_running: Box::new(|| true),
    };
    let (signals, signal_rx) = mpsc::channel(2);
    let task = tokio::spawn(run_service(service, signal_rx));

    wait_until("serving", || {
        spy.calls().contains(&Call::Announce(vec![vip]))
    })
    .await;
    let report = status(http_addr).await;
    assert!(report.serving && report.vips[0].bound, "{report:?}");
    assert_eq!(report.announced, [vip]);
    assert_eq!(report.checks[0].state, crate::health::CheckState::Up);

    let failed_at = Instant::now();
    drop(stand_in);
    wait_until("unbound", || {
        spy.calls().iter().filter(|c| **c == Call::Unbind).count() == 2
    })
    .await;
    let withdrawn = spy.time_of(&Call::Withdraw).expect("withdrawn") - failed_at;
    let allowed = INTERVAL * FALL + Duration::from_secs(1);
    println!("withdrawn {withdrawn:?} after the check's listener went away (allowed {allowed:?})");
    assert!(withdrawn <= allowed, "{withdrawn:?} > {allowed:?}");
    let report = status(http_addr).await;
    assert!(!report.serving && !report.vips[0].bound && report.announced.is_empty());
    assert_eq!(report.healthy, Some(false));

    let _stand_in = TcpListener::bind(check_addr)
        .await
        .expect("rebind stand-in");
    wait_until("re-announced", || {
        spy.calls()
            .iter()
            .filter(|c| matches!(c, Call::Announce(_)))
            .count()
            == 2
    })
    .await;

    let t0 = Instant::now();
    signals.send(()).await.expect("daemon listens");
    assert_eq!(task.await.expect("no panic"), EXIT_OK);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let calls = spy.actuator_calls();
    assert_eq!(
        calls[calls.len() - 3..],
        [
            Call::Withdraw,
            Call::Cease(CEASE_REASON.to_string()),
            Call::Unbind
        ]
    );
    spy.assert_ordering();
    assert!(
        fetch_status(http_addr).await.is_err(),
        "HTTP stopped with the daemon"
    );
}
