//! Unit tests of the pure election logic: inputs in, actions out, on a fake monotonic clock.

use super::*;
use k8s_openapi::jiff::Timestamp;

const ME: &str = "me";

fn timing() -> Timing {
    Timing {
        lease_duration: Duration::from_secs(5),
        renew_deadline: Duration::from_secs(3),
        retry_period: Duration::from_secs(1),
    }
}

fn lease(holder: &str, rv: u64, renew_offset_s: i64) -> Lease {
    let wall = Timestamp::from_second(1_800_000_000 + renew_offset_s).expect("ts");
    let mut l = build_lease(
        &Write::Create,
        holder,
        "cpvip",
        "kube-system",
        &timing(),
        wall,
    );
    l.metadata.resource_version = Some(rv.to_string());
    l
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn sends(actions: &[Action]) -> Vec<&Request> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn leader_flags(actions: &[Action]) -> Vec<bool> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetLeader(b, _) => Some(*b),
            _ => None,
        })
        .collect()
}

/// Drives a fresh contender to leadership at t0 through create; returns it and t0.
fn leader_at(t0: Instant) -> Election {
    let mut e = Election::new(ME, timing(), t0);
    assert_eq!(sends(&e.step(t0, Input::Tick)), vec![&Request::Get]);
    let a = e.step(t0, Input::GetDone(Ok(None)));
    assert_eq!(sends(&a), vec![&Request::Write(Write::Create)]);
    let a = e.step(t0 + ms(5), Input::WriteDone(Ok(lease(ME, 1, 0))));
    assert_eq!(leader_flags(&a), vec![true]);
    e
}

#[test]
fn timing_validation_follows_client_go() {
    assert!(timing().validate().is_ok());
    let mut t = timing();
    t.renew_deadline = t.lease_duration;
    assert!(t.validate().is_err());
    let mut t = timing();
    t.retry_period = ms(2600);
    assert!(t.validate().is_err(), "deadline must exceed 1.2 x retry");
    let mut t = timing();
    t.lease_duration = ms(5500);
    assert!(t.validate().is_ok());
    assert_eq!(
        t.lease_duration_seconds(),
        6,
        "rounded up: others wait at least as long"
    );
}

#[test]
fn lost_create_race_waits_for_expiry_on_our_clock_then_acquires_at_that_instant() {
    let t0 = Instant::now();
    let mut e = Election::new(ME, timing(), t0);
    e.step(t0, Input::Tick);
    e.step(t0, Input::GetDone(Ok(None)));
    let a = e.step(t0 + ms(3), Input::WriteDone(Err(Failure::AlreadyExists)));
    assert_eq!(sends(&a), vec![&Request::Get], "re-read after losing");
    // The winner's renewTime is an hour in the past by our wall clock: irrelevant.
    let t1 = t0 + ms(10);
    let a = e.step(t1, Input::GetDone(Ok(Some(lease("other", 1, -3600)))));
    assert!(
        sends(&a).is_empty(),
        "a freshly seen foreign Lease is valid"
    );
    assert!(a.contains(&Action::SetHolder(Some("other".into()))));
    // Safety-net polls until expiry (unchanged answers do not reset the observation time),
    // and the acquire goes out exactly at the expiry instant (improvement 2).
    let (at, write) = run_until_write(&mut e, t1, &lease("other", 1, -3600));
    assert_eq!(at, t1 + timing().lease_duration);
    assert!(matches!(write, Write::Acquire(_)));
}

/// Ticks at every wake, answering GETs with `current`, until the machine sends a write.
fn run_until_write(e: &mut Election, from: Instant, current: &Lease) -> (Instant, Write) {
    let mut t = from;
    for _ in 0..100 {
        t = e.next_wake(t).expect("wake");
        let mut a = e.step(t, Input::Tick);
        if sends(&a) == vec![&Request::Get] {
            a = e.step(t, Input::GetDone(Ok(Some(current.clone()))));
        }
        if let [Request::Write(w)] = sends(&a)[..] {
            return (t, w.clone());
        }
    }
    panic!("no write within 100 wakes")
}

#[test]
fn a_change_seen_resets_expiry_whatever_the_holders_clock_says() {
    let t0 = Instant::now();
    let mut e = Election::new(ME, timing(), t0);
    e.step(t0, Input::Tick);
    e.step(t0, Input::GetDone(Ok(Some(lease("other", 7, 3600)))));
    let t1 = t0 + ms(4000);
    let renewed = lease("other", 8, 3601);
    let a = e.step(t1, Input::Watched(renewed.clone()));
    assert!(sends(&a).iter().all(|r| **r == Request::Get), "{a:?}");
    if !sends(&a).is_empty() {
        e.step(t1, Input::GetDone(Ok(Some(renewed.clone()))));
    }
    let (at, _) = run_until_write(&mut e, t1, &renewed);
    assert_eq!(
        at,
        t1 + timing().lease_duration,
        "expiry counts from the change we saw"
    );
}

#[test]
fn watched_release_is_acquired_at_once_and_transitions_increment() {
    let t0 = Instant::now();
    let mut e = Election::new(ME, timing(), t0);
    e.step(t0, Input::Tick);
    e.step(t0, Input::GetDone(Ok(Some(lease("other", 7, 0)))));
    let released = build_lease(
        &Write::Release(Box::new(lease("other", 7, 0))),
        "other",
        "cpvip",
        "kube-system",
        &timing(),
        Timestamp::UNIX_EPOCH,
    );
    let mut released = released;
    released.metadata.resource_version = Some("8".into());
    let a = e.step(t0 + ms(100), Input::Watched(released));
    let [Request::Write(w)] = sends(&a)[..] else {
        panic!("expected one write, got {a:?}")
    };
    let built = build_lease(
        w,
        ME,
        "cpvip",
        "kube-system",
        &timing(),
        Timestamp::UNIX_EPOCH,
    );
    let spec = built.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(ME));
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(spec.lease_duration_seconds, Some(5));
    assert_eq!(
        built.metadata.resource_version.as_deref(),
        Some("8"),
        "PUT carries the rv read"
    );
}

#[test]
fn leader_renews_each_retry_period_and_fences_at_the_renew_deadline() {
    let t0 = Instant::now();
    let mut e = leader_at(t0);
    assert_eq!(e.next_wake(t0 + ms(5)), Some(t0 + timing().retry_period));
    let t1 = t0 + timing().retry_period;
    let a = e.step(t1, Input::Tick);
    assert!(matches!(sends(&a)[..], [Request::Write(Write::Renew(_))]));
    // The renew hangs: the request times out, the next one is sent, and at t0 + deadline
    // (t0 = send time of the last successful write) leadership stops, renew in flight or not.
    let mut t = t1;
    let mut stopped_at = None;
    while stopped_at.is_none() {
        t = e.next_wake(t).expect("wake");
        let a = e.step(t, Input::Tick);
        if leader_flags(&a) == vec![false] {
            stopped_at = Some(t);
        }
    }
    assert_eq!(stopped_at, Some(t0 + timing().renew_deadline));
    assert_eq!(e.role(), Role::Standby);
}

#[test]
fn an_idle_leader_sleeps_until_its_next_renew() {
    let t0 = Instant::now();
    let mut e = leader_at(t0);
    for n in 1..5u32 {
        let t = t0 + timing().retry_period * n;
        assert_eq!(e.next_wake(t - ms(400)), Some(t), "cycle {n}");
        let a = e.step(t, Input::Tick);
        assert!(matches!(sends(&a)[..], [Request::Write(Write::Renew(_))]));
        e.step(
            t + ms(5),
            Input::WriteDone(Ok(lease(ME, u64::from(n) + 1, 0))),
        );
    }
}

#[test]
fn a_late_renew_answer_does_not_extend_leadership_past_the_deadline() {
    let t0 = Instant::now();
    let mut e = leader_at(t0);
    let t1 = t0 + timing().retry_period;
    e.step(t1, Input::Tick);
    let late = t1 + timing().renew_deadline + ms(1);
    let a = e.step(late, Input::WriteDone(Ok(lease(ME, 2, 1))));
    assert!(!leader_flags(&a).contains(&true));
    assert_ne!(
        e.role(),
        Role::Leader {
            renewed_at: t1,
            attempted_at: t1
        }
    );
}

#[test]
fn leader_seeing_another_holder_steps_down_immediately() {
    let t0 = Instant::now();
    let mut e = leader_at(t0);
    let a = e.step(t0 + ms(200), Input::Watched(lease("intruder", 9, 0)));
    assert_eq!(leader_flags(&a), vec![false]);
}

#[test]
fn stale_watch_event_after_our_write_is_ignored() {
    let t0 = Instant::now();
    let mut e = leader_at(t0);
    // rv 1 is ours; an older event (rv 0) from a lagging watch names someone else.
    let a = e.step(t0 + ms(10), Input::Watched(lease("old-holder", 0, 0)));
    assert!(a.is_empty(), "{a:?}");
}

#[test]
fn ineligible_leader_publishes_false_before_sending_release() {
    let t0 = Instant::now();
    let mut e = leader_at(t0);
    let a = e.step(t0 + ms(100), Input::SetEligible(false));
    let leader_pos = a
        .iter()
        .position(|x| matches!(x, Action::SetLeader(false, _)))
        .expect("stops leading");
    let release_pos = a
        .iter()
        .position(|x| matches!(x, Action::Send(Request::Write(Write::Release(_)))))
        .expect("releases");
    assert!(leader_pos < release_pos);
    let Action::Send(Request::Write(w)) = &a[release_pos] else {
        unreachable!()
    };
    let spec = build_lease(
        w,
        ME,
        "cpvip",
        "kube-system",
        &timing(),
        Timestamp::UNIX_EPOCH,
    )
    .spec
    .expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(""));
    assert_eq!(spec.lease_duration_seconds, Some(1));
    let mut released = lease("", 2, 0);
    released.spec.as_mut().expect("spec").holder_identity = Some(String::new());
    let a = e.step(t0 + ms(110), Input::WriteDone(Ok(released.clone())));
    assert!(
        sends(&a).iter().all(|r| **r == Request::Get),
        "no contending: {a:?}"
    );
    // A free Lease is not taken while ineligible, but is once eligible again.
    let a = e.step(t0 + ms(3000), Input::Tick);
    assert!(sends(&a).iter().all(|r| **r == Request::Get));
    assert!(sends(&e.step(t0 + ms(3001), Input::SetEligible(true))).is_empty());
    let a = e.step(t0 + ms(3002), Input::GetDone(Ok(Some(released))));
    assert!(
        matches!(sends(&a)[..], [Request::Write(Write::Acquire(_))]),
        "{a:?}"
    );
}

#[test]
fn health_failure_during_a_pending_renew_stops_leading_at_once() {
    let t0 = Instant::now();
    let mut e = leader_at(t0);
    let t1 = t0 + timing().retry_period;
    assert!(matches!(
        sends(&e.step(t1, Input::Tick))[..],
        [Request::Write(Write::Renew(_))]
    ));
    let a = e.step(t1 + ms(10), Input::SetEligible(false));
    assert_eq!(leader_flags(&a), vec![false]);
    let cancel = a
        .iter()
        .position(|x| *x == Action::Cancel)
        .expect("renew cancelled");
    let release = a
        .iter()
        .position(|x| matches!(x, Action::Send(Request::Write(Write::Release(_)))))
        .expect("release sent at once");
    assert!(cancel < release);
}

#[test]
fn shutdown_releases_then_finishes() {
    let t0 = Instant::now();
    let mut e = leader_at(t0);
    let a = e.step(t0 + ms(50), Input::Shutdown);
    assert_eq!(leader_flags(&a), vec![false]);
    assert!(matches!(sends(&a)[..], [Request::Write(Write::Release(_))]));
    let mut released = lease("", 2, 0);
    released.spec.as_mut().expect("spec").holder_identity = Some(String::new());
    let a = e.step(t0 + ms(60), Input::WriteDone(Ok(released)));
    assert!(a.contains(&Action::Finished), "{a:?}");
    assert_eq!(e.next_wake(t0 + ms(60)), None);
}

#[test]
fn shutdown_of_a_standby_finishes_without_writing() {
    let t0 = Instant::now();
    let mut e = Election::new(ME, timing(), t0);
    e.step(t0, Input::Tick);
    let a = e.step(t0, Input::Shutdown);
    assert_eq!(a, vec![Action::Cancel, Action::Finished]);
}

#[test]
fn api_errors_back_off_and_never_finish() {
    let t0 = Instant::now();
    let mut e = Election::new(ME, timing(), t0);
    let mut t = t0;
    e.step(t, Input::Tick);
    let mut gaps = Vec::new();
    for _ in 0..6 {
        let a = e.step(
            t,
            Input::GetDone(Err(Failure::Other("connection refused".into()))),
        );
        assert!(a.iter().any(|x| matches!(x, Action::Error(_))));
        let next = e.next_wake(t).expect("keeps trying");
        gaps.push(next - t);
        t = next;
        assert_eq!(sends(&e.step(t, Input::Tick)), vec![&Request::Get]);
    }
    assert_eq!(gaps[0], timing().retry_period);
    assert!(gaps.windows(2).all(|w| w[1] >= w[0]));
    assert_eq!(*gaps.last().expect("gap"), timing().retry_period * 8);
}

#[test]
fn resource_version_order() {
    assert!(is_older("9", "10"));
    assert!(!is_older("10", "9"));
    assert!(!is_older("10", "10"));
    assert!(
        !is_older("a", "b"),
        "opaque versions are never judged older"
    );
}

#[test]
fn re_read_after_losing_accepts_what_the_watch_already_showed() {
    let t0 = Instant::now();
    let mut e = Election::new(ME, timing(), t0);
    e.step(t0, Input::Tick);
    e.step(t0, Input::GetDone(Ok(None)));
    // The winner's create reaches us through the watch before our POST is answered.
    let winner = lease("other", 1, 0);
    assert!(sends(&e.step(t0 + ms(1), Input::Watched(winner.clone()))).is_empty());
    let a = e.step(t0 + ms(2), Input::WriteDone(Err(Failure::AlreadyExists)));
    assert_eq!(sends(&a), vec![&Request::Get]);
    let a = e.step(t0 + ms(3), Input::GetDone(Ok(Some(winner))));
    assert!(sends(&a).is_empty(), "no GET storm: {a:?}");
    assert!(matches!(e.observed(), Observed::Present { .. }));
}
