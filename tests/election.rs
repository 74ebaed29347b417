//! Leader election against the Lease test server (real HTTPS, real kube client, loopback only).
//! Durations: lease 2 s, renew deadline 1.5 s, retry 500 ms unless a test says otherwise.
//! Figures measured here are printed (run with `--nocapture` to see them).

#[path = "election/common.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use cpvip::election::ElectionHandle;

/// Not a test: the body of a contender run as a child process by the SIGKILL/SIGTERM tests.
#[tokio::test]
#[ignore = "helper run as a child process by other tests"]
async fn contender_process() {
    let identity = std::env::var("CPVIP_TEST_CONTENDER").expect("CPVIP_TEST_CONTENDER");
    let kubeconfig = std::env::var("CPVIP_TEST_KUBECONFIG").expect("CPVIP_TEST_KUBECONFIG");
    let timing: Vec<u64> = std::env::var("CPVIP_TEST_TIMING_MS")
        .expect("CPVIP_TEST_TIMING_MS")
        .split(',')
        .map(|v| v.parse().expect("ms"))
        .collect();
    let mut cfg = config(&identity, std::path::Path::new(&kubeconfig));
    cfg.lease_duration = Duration::from_millis(timing[0]);
    cfg.renew_deadline = Duration::from_millis(timing[1]);
    cfg.retry_period = Duration::from_millis(timing[2]);
    let handle = start(cfg);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    term.recv().await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_contenders_race_from_empty_exactly_one_leads_with_ec_client_cert() {
    let (server, _dir) = server("race").await;
    // The RKE2 path: client certificate with a SEC1 EC P-256 key.
    let kc = server.kubeconfig_client_cert().to_path_buf();
    let handles: Vec<ElectionHandle> = (0..5)
        .map(|i| start(config(&format!("node-{i}"), &kc)))
        .collect();
    let refs: Vec<&ElectionHandle> = handles.iter().collect();
    let winner = wait_for("a leader", Duration::from_secs(10), || holder(&server)).await;
    // Several retry periods and more than one lease duration: nothing may change, and the API
    // load stays at about one request per contender per retry period.
    let requests_before = server.requests();
    let window = LEASE + RETRY * 2;
    tokio::time::sleep(window).await;
    let per_period =
        (server.requests() - requests_before) as f64 / (window.as_secs_f64() / RETRY.as_secs_f64());
    println!("race: {per_period:.1} API requests per retry period for 5 contenders");
    assert!(
        per_period < 10.0,
        "request storm: {per_period:.1} per retry period"
    );
    assert_eq!(leaders(&refs), vec![winner.clone()]);
    for h in &handles {
        assert_eq!(
            *h.holder.borrow(),
            Some(winner.clone()),
            "{} sees the holder",
            h.identity()
        );
    }
    let w = writes(&server);
    assert_eq!(
        w[0].holder.as_deref(),
        Some(winner.as_str()),
        "the create won"
    );
    assert!(
        w.iter()
            .all(|w| w.holder.as_deref() == Some(winner.as_str())),
        "only the winner ever wrote: {w:?}"
    );
    assert!(
        w.len() >= 4,
        "the leader renews every retry period: {} writes",
        w.len()
    );
    let lease = server.lease(NS, NAME).expect("lease");
    assert_eq!(
        lease.spec.as_ref().and_then(|s| s.lease_transitions),
        Some(0)
    );
    assert_eq!(
        lease.spec.as_ref().and_then(|s| s.lease_duration_seconds),
        Some(2)
    );
    assert_never_two_leaders(&refs);
    let winner_handle = handles
        .iter()
        .find(|h| h.identity() == winner)
        .expect("winner");
    assert_eq!(winner_handle.transitions(), 1);
    drop(refs);
    for h in handles {
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_works_and_a_wrong_token_never_leads() {
    let (server, dir) = server("token").await;
    let good = start(config("good", server.kubeconfig_token()));
    wait_for("good leads", Duration::from_secs(10), || {
        (*good.leader.borrow()).then_some(())
    })
    .await;
    let text = std::fs::read_to_string(server.kubeconfig_token()).expect("read kubeconfig");
    let wrong = dir.0.join("wrong.yaml");
    std::fs::write(&wrong, text.replace(server.token(), "not-the-token")).expect("write");
    let bad = start(config("bad", &wrong));
    let err = wait_for("401 reported", Duration::from_secs(10), || bad.last_error()).await;
    assert!(err.contains("401") || err.contains("Unauthorized"), "{err}");
    good.abort();
    tokio::time::sleep(LEASE * 2).await;
    assert!(!*bad.leader.borrow());
    assert_eq!(
        holder(&server).as_deref(),
        Some("good"),
        "nobody took over with a bad token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_that_appears_later_is_waited_for() {
    let (server, dir) = server("late").await;
    let later = dir.0.join("later").join("rke2.yaml");
    let h = start(config("patient", &later));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!*h.leader.borrow());
    std::fs::create_dir_all(later.parent().expect("parent")).expect("mkdir");
    std::fs::copy(server.kubeconfig_client_cert(), &later).expect("copy");
    wait_for(
        "leader after the file appeared",
        Duration::from_secs(10),
        || (*h.leader.borrow()).then_some(()),
    )
    .await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_process_is_replaced_after_lease_duration() {
    let (server, _dir) = server("kill").await;
    let kc = server.kubeconfig_token().to_path_buf();
    let mut children: Vec<ChildContender> = ["p0", "p1", "p2"]
        .iter()
        .map(|id| ChildContender::spawn(id, &kc, [2000, 1500, 500]))
        .collect();
    let old = wait_for("a leader", Duration::from_secs(20), || holder(&server)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let idx = children
        .iter()
        .position(|c| c.identity == old)
        .expect("leader child");
    let mut victim = children.remove(idx);
    victim.child.kill().expect("SIGKILL");
    let killed_at = Instant::now();
    let _ = victim.child.wait();
    let new = wait_for("a new leader", Duration::from_secs(10), || {
        holder(&server).filter(|h| *h != old)
    })
    .await;
    let w = writes(&server);
    let last_renew = w
        .iter()
        .rev()
        .find(|w| w.holder.as_deref() == Some(old.as_str()))
        .expect("old leader's last write");
    let takeover = w
        .iter()
        .find(|w| w.holder.as_deref() == Some(new.as_str()))
        .expect("new leader's first write");
    let latency = takeover.at - last_renew.at;
    println!(
        "SIGKILL takeover: {latency:?} after the last renew (lease {LEASE:?}); {:?} after the kill",
        takeover.at - killed_at
    );
    assert!(
        latency >= LEASE,
        "took over before the Lease expired: {latency:?}"
    );
    assert!(
        latency < LEASE + Duration::from_secs(1),
        "slow takeover: {latency:?}"
    );
    assert_eq!(takeover.transitions, Some(1));
    drop(children);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leader_releases_and_a_watching_standby_takes_over_at_once() {
    let (server, _dir) = server("term").await;
    let kc = server.kubeconfig_client_cert().to_path_buf();
    // A long retry period: a poll-driven standby would need up to 2 s; the watch is immediate.
    let timing = [4000, 3000, 2000];
    let mut children: Vec<ChildContender> = ["t0", "t1", "t2"]
        .iter()
        .map(|id| ChildContender::spawn(id, &kc, timing))
        .collect();
    let old = wait_for("a leader", Duration::from_secs(20), || holder(&server)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idx = children
        .iter()
        .position(|c| c.identity == old)
        .expect("leader child");
    let mut leaving = children.remove(idx);
    leaving.terminate();
    let new = wait_for("a new leader", Duration::from_secs(10), || {
        holder(&server).filter(|h| *h != old)
    })
    .await;
    let status = leaving.child.wait().expect("wait");
    assert!(status.success(), "clean exit after SIGTERM: {status}");
    let w = writes(&server);
    let release = w
        .iter()
        .rev()
        .find(|w| w.holder.is_none())
        .expect("the Lease shows the release (empty holder)");
    let takeover = w
        .iter()
        .find(|w| w.holder.as_deref() == Some(new.as_str()))
        .expect("new leader's write");
    assert!(takeover.at > release.at);
    let latency = takeover.at - release.at;
    println!("SIGTERM hand-over: new leader {latency:?} after the release");
    assert!(
        latency < Duration::from_millis(1000),
        "standby did not act on the watched release: {latency:?}"
    );
    drop(children);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_and_wait_new_holder_hands_over_make_before_break() {
    let (server, _dir) = server("handover").await;
    let kc = server.kubeconfig_token().to_path_buf();
    let a = start(config("a", &kc));
    wait_for("a leads", Duration::from_secs(10), || {
        (*a.leader.borrow()).then_some(())
    })
    .await;
    let b = start(config("b", &kc));
    wait_for("b sees a", Duration::from_secs(10), || {
        (b.holder.borrow().as_deref() == Some("a")).then_some(())
    })
    .await;
    let t = Instant::now();
    let new = a.release_and_wait_new_holder(Duration::from_secs(2)).await;
    println!(
        "hand-over: new holder seen by the old leader after {:?}",
        t.elapsed()
    );
    assert_eq!(new.as_deref(), Some("b"));
    assert!(!*a.leader.borrow());
    wait_for("b leads", Duration::from_secs(2), || {
        (*b.leader.borrow()).then_some(())
    })
    .await;
    // Not eligible: a does not take the Lease back even when it is free.
    b.set_eligible(false);
    tokio::time::sleep(LEASE).await;
    assert!(!*a.leader.borrow() && !*b.leader.borrow());
    assert_eq!(holder(&server), None, "released and nobody eligible");
    a.set_eligible(true);
    wait_for("a leads again", Duration::from_secs(5), || {
        (*a.leader.borrow()).then_some(())
    })
    .await;
    assert_never_two_leaders(&[&a, &b]);
    a.shutdown().await;
    b.shutdown().await;
    assert_eq!(holder(&server), None, "shutdown released the Lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_server_leader_stops_before_renew_deadline_and_before_anyone_acquires() {
    let (server, _dir) = server("stall").await;
    let kc = server.kubeconfig_token().to_path_buf();
    let handles: Vec<ElectionHandle> = ["s0", "s1", "s2"]
        .iter()
        .map(|id| start(config(id, &kc)))
        .collect();
    let refs: Vec<&ElectionHandle> = handles.iter().collect();
    let old = wait_for("a leader", Duration::from_secs(10), || holder(&server)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stall = LEASE * 2;
    server.faults().stall(Some(stall));
    let stalled_at = Instant::now();
    let old_handle = handles
        .iter()
        .find(|h| h.identity() == old)
        .expect("leader");
    wait_for("leader steps down", Duration::from_secs(5), || {
        (!*old_handle.leader.borrow()).then_some(())
    })
    .await;
    let stopped = old_handle
        .leader_changes()
        .into_iter()
        .rev()
        .find(|c| !c.leader)
        .expect("stop recorded");
    let last_commit = writes(&server)
        .into_iter()
        .rev()
        .find(|w| w.at <= stalled_at && w.holder.as_deref() == Some(old.as_str()))
        .expect("last renew before the stall");
    let after_last_renew = stopped.at - last_commit.at;
    println!(
        "stall: leader stopped {after_last_renew:?} after its last committed renew ({})",
        stopped.reason
    );
    assert!(
        after_last_renew <= RENEW + Duration::from_millis(100),
        "fencing late: {after_last_renew:?}"
    );
    let new = wait_for(
        "one leader after the stall",
        Duration::from_secs(15),
        || {
            let l = leaders(&refs);
            (l.len() == 1).then(|| l[0].clone())
        },
    )
    .await;
    println!("stall: leader after recovery: {new} (old {old})");
    for w in writes(&server) {
        if let Some(h) = &w.holder
            && *h != old
        {
            assert!(
                w.at > stopped.at,
                "{h} acquired before {old} stopped leading"
            );
        }
    }
    assert_never_two_leaders(&refs);
    drop(refs);
    for h in handles {
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_refused_connections_then_recovery_one_leader() {
    let (server, _dir) = server("faults").await;
    let kc = server.kubeconfig_token().to_path_buf();
    let handles: Vec<ElectionHandle> = ["f0", "f1", "f2"]
        .iter()
        .map(|id| start(config(id, &kc)))
        .collect();
    let refs: Vec<&ElectionHandle> = handles.iter().collect();
    wait_for("a leader", Duration::from_secs(10), || holder(&server)).await;
    // 500s for 4 s, overlapping with 4 s of refused connections: 7 s without a usable API.
    server.faults().fail(Some(Duration::from_secs(4)));
    tokio::time::sleep(RENEW + RETRY).await;
    assert!(
        leaders(&refs).is_empty(),
        "leader kept leading without renewing"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.faults().refuse(Some(Duration::from_secs(4)));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(leaders(&refs).is_empty());
    assert!(handles.iter().all(|h| h.last_error().is_some()));
    wait_for("the API back", Duration::from_secs(2), || {
        (server
            .faults()
            .state()
            .refuse_until
            .is_none_or(|t| t <= Instant::now()))
        .then_some(())
    })
    .await;
    let recovered = Instant::now();
    let l = wait_for("one leader after recovery", Duration::from_secs(20), || {
        let l = leaders(&refs);
        (l.len() == 1).then(|| l[0].clone())
    })
    .await;
    println!(
        "faults: {l} leads {:?} after the API recovered",
        recovered.elapsed()
    );
    tokio::time::sleep(LEASE).await;
    assert_eq!(leaders(&refs), vec![l]);
    assert_never_two_leaders(&refs);
    drop(refs);
    for h in handles {
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_of_clock_skew_changes_nothing() {
    let (server, _dir) = server("skew").await;
    let kc = server.kubeconfig_token().to_path_buf();
    let hour_ms = 3_600_000;
    let mut behind = config("behind", &kc);
    behind.wall_clock_skew_ms = -hour_ms;
    let behind = start(behind);
    wait_for("behind leads", Duration::from_secs(10), || {
        (*behind.leader.borrow()).then_some(())
    })
    .await;
    // Its renewTime is an hour old by everyone else's clock...
    let renew = server
        .lease(NS, NAME)
        .and_then(|l| l.spec)
        .and_then(|s| s.renew_time)
        .expect("renewTime");
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        - renew.0.as_second();
    assert!(
        (3590..3610).contains(&age),
        "renewTime skewed by an hour: {age}s"
    );
    // ...and a standby an hour ahead still waits while it renews.
    let mut ahead = config("ahead", &kc);
    ahead.wall_clock_skew_ms = hour_ms;
    let ahead = start(ahead);
    tokio::time::sleep(LEASE * 2).await;
    assert!(*behind.leader.borrow() && !*ahead.leader.borrow());
    behind.abort();
    let t = wait_for("ahead takes over", Duration::from_secs(10), || {
        (*ahead.leader.borrow()).then(Instant::now)
    })
    .await;
    let last = writes(&server)
        .into_iter()
        .rev()
        .find(|w| w.holder.as_deref() == Some("behind"))
        .expect("behind wrote");
    println!(
        "skew: takeover {:?} after the last renew of a leader 1 h behind",
        t - last.at
    );
    // A standby on time takes over from a leader an hour ahead after one lease duration too.
    let on_time = start(config("on-time", &kc));
    tokio::time::sleep(LEASE + RETRY).await;
    assert!(*ahead.leader.borrow() && !*on_time.leader.borrow());
    ahead.abort();
    wait_for("on-time takes over", LEASE * 3, || {
        (*on_time.leader.borrow()).then_some(())
    })
    .await;
    let w = writes(&server);
    let last_ahead = w
        .iter()
        .rev()
        .find(|w| w.holder.as_deref() == Some("ahead"))
        .expect("a");
    let first_on_time = w
        .iter()
        .find(|w| w.holder.as_deref() == Some("on-time"))
        .expect("o");
    let latency = first_on_time.at - last_ahead.at;
    println!("skew: takeover {latency:?} after the last renew of a leader 1 h ahead");
    assert!(
        latency >= LEASE && latency < LEASE + Duration::from_secs(1),
        "{latency:?}"
    );
    on_time.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_come_back_after_connections_are_dropped() {
    let (server, _dir) = server("rewatch").await;
    let kc = server.kubeconfig_token().to_path_buf();
    let a = start(config("a", &kc));
    wait_for("a leads", Duration::from_secs(10), || {
        (*a.leader.borrow()).then_some(())
    })
    .await;
    let b = start(config("b", &kc));
    wait_for("two watches", Duration::from_secs(10), || {
        (server.watchers() == 2).then_some(())
    })
    .await;
    server.faults().refuse(Some(Duration::from_millis(300)));
    wait_for("watches dropped", Duration::from_secs(2), || {
        (server.watchers() == 0).then_some(())
    })
    .await;
    let t = Instant::now();
    wait_for("watches re-established", Duration::from_secs(10), || {
        (server.watchers() == 2).then_some(())
    })
    .await;
    println!(
        "rewatch: both watches back {:?} after the drop",
        t.elapsed()
    );
    // The standby acts on the release through its new watch.
    let new = a.release_and_wait_new_holder(Duration::from_secs(2)).await;
    assert_eq!(new.as_deref(), Some("b"));
    assert_never_two_leaders(&[&a, &b]);
    a.shutdown().await;
    b.shutdown().await;
}
