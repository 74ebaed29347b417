//! Event-sequence tests of the run loop and the shutdown, on paused tokio time with spy
//! actuators and a fake election.

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

use super::*;
use crate::daemon::testkit::{Call, FakeElection, Spy};
use crate::daemon::{DaemonSettings, Mode};

fn vip() -> IpAddr {
    "192.0.2.10".parse().expect("literal")
}

struct Harness {
    spy: Spy,
    election: FakeElection,
    health: watch::Sender<Option<bool>>,
    signals: mpsc::Sender<()>,
    status: watch::Receiver<DaemonStatus>,
    task: JoinHandle<i32>,
}

/// Starts a daemon and lets it run its start-up (the clean-up unbind, no verdict yet).
async fn start(mode: Mode, tweak: impl FnOnce(&mut DaemonSettings)) -> Harness {
    let mut settings = DaemonSettings::new(mode, "me", vec![vip()]);
    tweak(&mut settings);
    let spy = Spy::default();
    let election = FakeElection::new(spy.clone());
    let health = watch::Sender::new(None);
    let (signals, signal_rx) = mpsc::channel(4);
    let daemon = Daemon::new(
        settings,
        spy.clone(),
        spy.clone(),
        election.clone(),
        health.subscribe(),
    );
    let status = daemon.status();
    let task = tokio::spawn(daemon.run(signal_rx));
    sleep(Duration::from_millis(1)).await;
    Harness {
        spy,
        election,
        health,
        signals,
        status,
        task,
    }
}

fn serving_calls(garp: bool) -> Vec<Call> {
    let mut calls = vec![Call::Bind];
    if garp {
        calls.push(Call::Takeover);
    }
    calls.push(Call::Announce(vec![vip()]));
    calls
}

fn count(calls: &[Call], call: &Call) -> usize {
    calls.iter().filter(|c| *c == call).count()
}

fn index(calls: &[Call], call: &Call) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("{call:?} not in {calls:?}"))
}

/// Time of the last successful `call` (the first unbind is the start-up clean-up).
fn last_time_of(spy: &Spy, call: &Call) -> Instant {
    spy.attempts()
        .into_iter()
        .rev()
        .find(|a| a.ok && &a.call == call)
        .map(|a| a.at)
        .unwrap_or_else(|| panic!("{call:?} never succeeded"))
}

fn last_index(calls: &[Call], call: &Call) -> usize {
    calls
        .iter()
        .rposition(|c| c == call)
        .unwrap_or_else(|| panic!("{call:?} not in {calls:?}"))
}

impl Harness {
    async fn signal(&self) {
        self.signals.send(()).await.expect("daemon listens");
    }

    async fn exit_code(self) -> i32 {
        self.task.await.expect("daemon task did not panic")
    }
}

#[tokio::test(start_paused = true)]
async fn start_up_never_announces_before_the_first_health_verdict() {
    let h = start(Mode::Anycast, |s| s.garp = true).await;
    sleep(Duration::from_secs(10)).await;
    assert_eq!(
        h.spy.actuator_calls(),
        [Call::Unbind],
        "only the clean-up of a previous run"
    );
    assert_eq!(h.status.borrow().healthy, None);
    h.health.send_replace(Some(true));
    sleep(Duration::from_millis(10)).await;
    let mut expected = vec![Call::Unbind];
    expected.extend(serving_calls(true));
    assert_eq!(h.spy.actuator_calls(), expected);
    assert!(h.status.borrow().reconcile.applied.serving());
}

#[tokio::test(start_paused = true)]
async fn anycast_withdraws_drains_and_unbinds_when_unhealthy_and_comes_back() {
    let h = start(Mode::Anycast, |_| {}).await;
    h.health.send_replace(Some(true));
    sleep(Duration::from_millis(10)).await;
    h.health.send_replace(Some(false));
    sleep(Duration::from_secs(1)).await;
    let calls = h.spy.actuator_calls();
    assert_eq!(calls[3..], [Call::Withdraw, Call::Unbind]);
    let gap =
        last_time_of(&h.spy, &Call::Unbind) - h.spy.time_of(&Call::Withdraw).expect("withdrawn");
    assert!(
        gap >= Duration::from_millis(200),
        "drain before unbind, got {gap:?}"
    );
    h.health.send_replace(Some(true));
    sleep(Duration::from_millis(10)).await;
    assert_eq!(h.spy.actuator_calls()[5..], serving_calls(false));
    h.spy.assert_ordering();
}

#[tokio::test(start_paused = true)]
async fn leader_mode_serves_only_the_leader_and_an_unhealthy_leader_steps_down() {
    let h = start(Mode::Leader, |_| {}).await;
    h.health.send_replace(Some(true));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        h.spy.actuator_calls(),
        [Call::Unbind],
        "healthy standby: no VIP"
    );
    assert!(
        h.spy.calls().contains(&Call::SetEligible(true)),
        "healthy: contend"
    );
    h.election.elect_me();
    sleep(Duration::from_millis(10)).await;
    assert_eq!(h.spy.actuator_calls()[1..], serving_calls(false));
    h.health.send_replace(Some(false));
    sleep(Duration::from_secs(1)).await;
    let calls = h.spy.calls();
    let ineligible = last_index(&calls, &Call::SetEligible(false));
    assert!(
        ineligible > index(&calls, &Call::SetEligible(true)),
        "{calls:?}"
    );
    assert_eq!(h.spy.actuator_calls()[3..], [Call::Withdraw, Call::Unbind]);
    assert!(!h.status.borrow().desired.serve);
}

#[tokio::test(start_paused = true)]
async fn flapping_health_keeps_the_vip_bound_and_settles_on_the_last_verdict() {
    let h = start(Mode::Anycast, |_| {}).await;
    h.health.send_replace(Some(true));
    sleep(Duration::from_millis(10)).await;
    // Each unhealthy spell is shorter than the 200 ms drain: the address must never go.
    for i in 0..40 {
        h.health.send_replace(Some(i % 2 == 1));
        sleep(Duration::from_millis(30)).await;
    }
    h.health.send_replace(Some(true));
    sleep(Duration::from_secs(1)).await;
    let calls = h.spy.actuator_calls();
    assert_eq!(
        count(&calls, &Call::Unbind),
        1,
        "only the start-up clean-up: {calls:?}"
    );
    assert_eq!(count(&calls, &Call::Bind), 1);
    assert_eq!(
        count(&calls, &Call::Withdraw),
        20,
        "each unhealthy spell withdraws"
    );
    assert!(h.status.borrow().reconcile.applied.serving());
    h.spy.assert_ordering();
    h.health.send_replace(Some(false));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(h.status.borrow().reconcile.applied.bound, Some(false));
    h.spy.assert_ordering();
}

#[tokio::test(start_paused = true)]
async fn actuator_errors_are_retried_with_back_off_and_reported() {
    let h = start(Mode::Anycast, |_| {}).await;
    h.spy.fail_next("announce", 3);
    h.health.send_replace(Some(true));
    sleep(Duration::from_millis(350)).await;
    {
        let status = h.status.borrow();
        assert!(!status.reconcile.applied.announced);
        assert!(
            status
                .reconcile
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("injected announce")),
            "{status:?}"
        );
    }
    sleep(Duration::from_secs(2)).await;
    let attempts: Vec<_> = h
        .spy
        .attempts()
        .into_iter()
        .filter(|a| matches!(a.call, Call::Announce(_)))
        .collect();
    assert_eq!(
        attempts.iter().map(|a| a.ok).collect::<Vec<_>>(),
        [false, false, false, true]
    );
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert_eq!(gaps, [100, 200, 400].map(Duration::from_millis));
    let status = h.status.borrow().clone();
    assert!(status.reconcile.applied.serving());
    assert_eq!(status.reconcile.last_error, None);
}

#[tokio::test(start_paused = true)]
async fn sigterm_in_anycast_withdraws_ceases_releases_unbinds_and_exits_zero() {
    let h = start(Mode::Anycast, |_| {}).await;
    h.health.send_replace(Some(true));
    sleep(Duration::from_millis(10)).await;
    let t0 = Instant::now();
    h.signal().await;
    let spy = h.spy.clone();
    assert_eq!(h.exit_code().await, EXIT_OK);
    assert!(
        t0.elapsed() <= Duration::from_secs(1),
        "bounded: {:?}",
        t0.elapsed()
    );
    let calls = spy.calls();
    let tail = &calls[index(&calls, &Call::Withdraw)..];
    assert_eq!(
        tail,
        [
            Call::Withdraw,
            Call::Cease(CEASE_REASON.to_string()),
            Call::ElectionShutdown,
            Call::Unbind
        ]
    );
    let gap = last_time_of(&spy, &Call::Unbind) - spy.time_of(&Call::Withdraw).expect("withdrawn");
    assert!(
        gap >= Duration::from_millis(200),
        "drain kept at shutdown: {gap:?}"
    );
    spy.assert_ordering();
}

#[tokio::test(start_paused = true)]
async fn leader_hands_over_make_before_break() {
    let h = start(Mode::Leader, |_| {}).await;
    h.health.send_replace(Some(true));
    h.election.elect_me();
    sleep(Duration::from_millis(10)).await;
    h.signal().await;
    sleep(Duration::from_millis(500)).await;
    let calls = h.spy.calls();
    assert!(
        calls.contains(&Call::Release),
        "Lease released first: {calls:?}"
    );
    assert!(
        !calls.contains(&Call::Withdraw),
        "still announcing until a new holder"
    );
    assert_eq!(h.status.borrow().phase, Phase::HandingOver);
    let new_holder_at = Instant::now();
    h.election.holder.send_replace(Some("node-b".to_string()));
    let spy = h.spy.clone();
    assert_eq!(h.exit_code().await, EXIT_OK);
    let withdraw = spy.time_of(&Call::Withdraw).expect("withdrawn");
    let after = withdraw - new_holder_at;
    assert!(
        after >= Duration::from_millis(300) && after < Duration::from_millis(400),
        "withdraw one grace (300 ms) after the new holder, got {after:?}"
    );
    let calls = spy.calls();
    assert!(index(&calls, &Call::Release) < index(&calls, &Call::Withdraw));
    assert!(
        index(&calls, &Call::Release) < last_index(&calls, &Call::SetEligible(false)),
        "released through the hand-over, not by turning ineligible first: {calls:?}"
    );
    assert!(index(&calls, &Call::Withdraw) < last_index(&calls, &Call::Unbind));
    spy.assert_ordering();
}

#[tokio::test(start_paused = true)]
async fn hand_over_gives_up_after_two_seconds_and_stays_within_three() {
    let h = start(Mode::Leader, |_| {}).await;
    h.health.send_replace(Some(true));
    h.election.elect_me();
    sleep(Duration::from_millis(10)).await;
    let t0 = Instant::now();
    h.signal().await;
    let spy = h.spy.clone();
    assert_eq!(h.exit_code().await, EXIT_OK);
    let withdraw = spy.time_of(&Call::Withdraw).expect("withdrawn") - t0;
    assert!(withdraw >= Duration::from_secs(2) && withdraw < Duration::from_millis(2100));
    assert!(t0.elapsed() <= Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[tokio::test(start_paused = true)]
async fn garp_leader_unbinds_before_releasing_the_lease() {
    let h = start(Mode::Leader, |s| {
        s.garp = true;
        s.unbind_before_handover = true;
    })
    .await;
    h.health.send_replace(Some(true));
    h.election.elect_me();
    sleep(Duration::from_millis(10)).await;
    h.signal().await;
    let spy = h.spy.clone();
    assert_eq!(h.exit_code().await, EXIT_OK);
    let calls = spy.calls();
    assert!(
        !calls.contains(&Call::Release),
        "no make-before-break on a shared segment"
    );
    let unbind = calls
        .iter()
        .rposition(|c| *c == Call::Unbind)
        .expect("unbound");
    assert!(unbind < index(&calls, &Call::ElectionShutdown), "{calls:?}");
    assert!(
        unbind < last_index(&calls, &Call::SetEligible(false)),
        "not told to stop contending (which releases) before the VIP is gone: {calls:?}"
    );
    assert!(index(&calls, &Call::Withdraw) < unbind);
    spy.assert_ordering();
}

#[tokio::test(start_paused = true)]
async fn a_second_signal_exits_at_once() {
    let h = start(Mode::Leader, |_| {}).await;
    h.health.send_replace(Some(true));
    h.election.elect_me();
    sleep(Duration::from_millis(10)).await;
    h.signal().await;
    sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    h.signal().await;
    let spy = h.spy.clone();
    assert_eq!(h.exit_code().await, EXIT_FORCED);
    assert!(t0.elapsed() < Duration::from_millis(10));
    assert!(
        !spy.calls().contains(&Call::Withdraw),
        "cut short mid hand-over"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_shutdown_step_exits_one_but_still_unbinds() {
    let h = start(Mode::Anycast, |_| {}).await;
    h.health.send_replace(Some(true));
    sleep(Duration::from_millis(10)).await;
    h.spy.fail_next("cease", 1);
    h.signal().await;
    let spy = h.spy.clone();
    assert_eq!(h.exit_code().await, EXIT_FAILURE);
    assert_eq!(spy.calls().last(), Some(&Call::Unbind));
}

#[tokio::test(start_paused = true)]
async fn lease_transitions_are_counted() {
    let h = start(Mode::Leader, |_| {}).await;
    for holder in ["a", "b", "b", "c"] {
        h.election.holder.send_replace(Some(holder.to_string()));
        sleep(Duration::from_millis(10)).await;
    }
    let status = h.status.borrow().clone();
    assert_eq!(status.holder.as_deref(), Some("c"));
    assert_eq!(status.lease_transitions, 2);
}

#[tokio::test]
async fn sigterm_and_sigint_are_forwarded() {
    // Installing the handlers makes this test process catch both signals from now on, so
    // sending them to ourselves (by PID) is harmless to the other tests.
    let mut rx = forward_signals().expect("install signal handlers");
    let pid = std::process::id().to_string();
    for signal in ["-TERM", "-INT"] {
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("run kill");
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{signal} not forwarded"))
            .expect("forwarder alive");
    }
}
