//! Tests of the reconciler: planning, ordering, idempotence, drain, failures and back-off.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::daemon::testkit::{Call, Spy};
use crate::daemon::{DaemonSettings, Mode};

fn vip() -> IpAddr {
    "192.0.2.10".parse().expect("literal")
}

fn settings(garp: bool) -> DaemonSettings {
    let mut s = DaemonSettings::new(Mode::Anycast, "me", vec![vip()]);
    s.garp = garp;
    s
}

fn reconciler(spy: &Spy, garp: bool) -> Reconciler<Spy, Spy> {
    Reconciler::new(spy.clone(), spy.clone(), &settings(garp))
}

#[test]
fn planner_orders_start_and_stop() {
    let mut applied = Applied::default();
    let mut plan = Vec::new();
    while let Some(step) = next_step(&applied, true, true) {
        plan.push(step);
        apply(&mut applied, step);
    }
    assert_eq!(
        plan,
        [Step::Bind, Step::AnnounceTakeover, Step::Announce],
        "start serving: bind, GARP/NA, announce"
    );
    plan.clear();
    while let Some(step) = next_step(&applied, false, true) {
        plan.push(step);
        apply(&mut applied, step);
    }
    assert_eq!(plan, [Step::Withdraw, Step::Drain, Step::Unbind]);
    assert_eq!(next_step(&applied, false, true), None, "converged");
}

#[test]
fn planner_skips_takeover_without_garp_and_cleans_up_unknown_state() {
    assert_eq!(
        next_step(&Applied::default(), true, false),
        Some(Step::Bind)
    );
    // A previous run may have left the VIP bound: the first "not serving" unbinds, no drain.
    assert_eq!(
        next_step(&Applied::default(), false, false),
        Some(Step::Unbind)
    );
    let bound = Applied {
        bound: Some(true),
        ..Applied::default()
    };
    assert_eq!(next_step(&bound, true, false), Some(Step::Announce));
}

#[test]
fn planner_resumes_serving_mid_drain_without_unbinding() {
    let mid_drain = Applied {
        bound: Some(true),
        takeover_sent: true,
        announced: false,
        drain_pending: true,
    };
    assert_eq!(next_step(&mid_drain, true, true), Some(Step::Announce));
}

#[tokio::test(start_paused = true)]
async fn converge_calls_actuators_in_order_and_is_idempotent() {
    let spy = Spy::default();
    let mut r = reconciler(&spy, true);
    r.converge(true).await.expect("serve");
    r.converge(true).await.expect("serve again");
    assert_eq!(
        spy.calls(),
        [Call::Bind, Call::Takeover, Call::Announce(vec![vip()])]
    );
    let before_stop = tokio::time::Instant::now();
    r.converge(false).await.expect("stop");
    r.converge(false).await.expect("stop again");
    assert_eq!(
        spy.calls()[3..],
        [Call::Withdraw, Call::Unbind],
        "withdraw then unbind, once"
    );
    let withdraw = spy.time_of(&Call::Withdraw).expect("withdrawn");
    let unbind = spy.time_of(&Call::Unbind).expect("unbound");
    assert!(withdraw >= before_stop);
    assert!(
        unbind - withdraw >= Duration::from_millis(200),
        "drain of 200 ms between withdraw and unbind, got {:?}",
        unbind - withdraw
    );
    assert!(!r.applied().serving());
    spy.assert_ordering();
}

#[tokio::test(start_paused = true)]
async fn failed_step_reports_error_backs_off_and_is_retried() {
    let spy = Spy::default();
    spy.fail_next("bind", 3);
    let mut r = reconciler(&spy, false);
    let report = r.subscribe();
    let mut delays = Vec::new();
    loop {
        let step = r.next_step(true).expect("not converged yet");
        match r.execute(step).await {
            Ok(()) if r.next_step(true).is_none() => break,
            Ok(()) => {}
            Err((err, delay)) => {
                assert_eq!(err.0, "injected bind failure");
                let seen = report.borrow().clone();
                assert_eq!(seen.consecutive_failures, delays.len() as u32 + 1);
                assert!(
                    seen.last_error
                        .as_deref()
                        .is_some_and(|e| e.contains("Bind") && e.contains("injected")),
                    "{seen:?}"
                );
                delays.push(delay);
            }
        }
    }
    assert_eq!(
        delays,
        [100, 200, 400].map(Duration::from_millis),
        "exponential back-off from retry_initial"
    );
    let seen = report.borrow().clone();
    assert_eq!(seen.last_error, None, "cleared by the next success");
    assert_eq!(seen.consecutive_failures, 0);
    assert!(seen.applied.serving());
    assert_eq!(spy.calls(), [Call::Bind, Call::Announce(vec![vip()])]);
}

#[tokio::test(start_paused = true)]
async fn failed_takeover_does_not_block_the_announcement() {
    let spy = Spy::default();
    spy.fail_next("takeover", 1);
    let mut r = reconciler(&spy, true);
    let report = r.subscribe();
    r.execute(Step::Bind).await.expect("bind");
    r.execute(Step::AnnounceTakeover)
        .await
        .expect("a failed GARP is not a failed step");
    assert!(
        report
            .borrow()
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("takeover")),
        "the GARP failure is reported: {:?}",
        report.borrow()
    );
    assert_eq!(r.next_step(true), Some(Step::Announce), "not retried");
    r.converge(true).await.expect("serve despite a failed GARP");
    assert_eq!(spy.calls(), [Call::Bind, Call::Announce(vec![vip()])]);
}

#[tokio::test(start_paused = true)]
async fn failed_withdraw_never_unbinds_an_announced_vip() {
    let spy = Spy::default();
    let mut r = reconciler(&spy, false);
    r.converge(true).await.expect("serve");
    spy.fail_next("withdraw", 2);
    assert!(r.converge(false).await.is_err());
    assert!(r.converge(false).await.is_err());
    assert_eq!(r.next_step(false), Some(Step::Withdraw), "still announced");
    r.converge(false).await.expect("third attempt");
    assert_eq!(
        spy.calls(),
        [
            Call::Bind,
            Call::Announce(vec![vip()]),
            Call::Withdraw,
            Call::Unbind
        ]
    );
    spy.assert_ordering();
}

#[test]
fn backoff_doubles_and_caps() {
    let (i, m) = (Duration::from_millis(100), Duration::from_secs(5));
    assert_eq!(backoff(i, m, 1), Duration::from_millis(100));
    assert_eq!(backoff(i, m, 4), Duration::from_millis(800));
    assert_eq!(backoff(i, m, 7), Duration::from_secs(5));
    assert_eq!(backoff(i, m, u32::MAX), Duration::from_secs(5));
}
