//! BFD interoperability with a real BIRD 2 (`protocol bfd` with a `neighbor`, no BGP needed).

mod bfd_common;

use std::time::{Duration, Instant};

use bfd_common::{
    Link, NODE, bird_bfd_config, config, poll_router, start_until_up, up_with_detection, wait_for,
};
use cpvip_bgp::bfd::{Bfd, BfdConfig, Diag, State};
use cpvip_lab::netns::wait_until;
use cpvip_lab::router::Bird;

/// BIRD with a BFD neighbor at our node, 100 ms intervals, multiplier 3.
fn start_bird(lab: &Link) -> Bird {
    Bird::start(&lab.router, lab.dir.path(), &bird_bfd_config(100, 100, 3)).expect("bird")
}

/// One row of `show bfd sessions`: state, interval (s), timeout (s).
#[derive(Debug, Clone, PartialEq)]
struct BirdSession {
    state: String,
    interval: f64,
    timeout: f64,
}

fn bird_session(bird: &Bird) -> Option<BirdSession> {
    let out = bird.birdc("show bfd sessions").ok()?;
    // IP address  Interface  State  Since  Interval  Timeout
    let line = out.lines().find(|l| l.starts_with(NODE))?;
    let cols: Vec<&str> = line.split_whitespace().collect();
    let n = cols.len();
    Some(BirdSession {
        state: cols.get(2)?.to_string(),
        interval: cols.get(n - 2)?.parse().ok()?,
        timeout: cols.get(n - 1)?.parse().ok()?,
    })
}

#[test]
fn session_comes_up_and_both_sides_negotiate_the_configured_intervals() {
    let lab = Link::new("bfd-bird-up");
    // Asymmetric on purpose, so each negotiated value names which side it came from.
    let bird = start_bird(&lab);
    let ours = BfdConfig {
        desired_min_tx: Duration::from_millis(200),
        required_min_rx: Duration::from_millis(150),
        detect_mult: 4,
        ..config(100, 3)
    };
    lab.node
        .block_on(|| async {
            let (session, _, up) = start_until_up(
                ours,
                Duration::from_secs(10),
                up_with_detection(450),
                || bird.log(),
            )
            .await;
            // Ours: TX max(200, BIRD's rx 100) = 200; BIRD sends at max(100, our rx 150) = 150;
            // detection 3 × 150 = 450.
            assert_eq!(up.tx_interval, Some(Duration::from_millis(200)));
            assert_eq!(up.rx_interval, Duration::from_millis(150));
            assert_eq!(up.remote_detect_mult, 3);
            assert_eq!(up.remote_state, State::Up);
            assert!(up.up_since.is_some());
            // BIRD's: interval max(100, our rx 150) = 0.150; timeout 4 × max(100, 200) = 0.800.
            let want = BirdSession {
                state: "Up".into(),
                interval: 0.150,
                timeout: 0.800,
            };
            let seen = poll_router(
                Instant::now(),
                Duration::from_secs(5),
                Duration::from_millis(50),
                || bird_session(&bird).filter(|s| *s == want),
            )
            .await;
            assert!(
                seen.is_some(),
                "BIRD shows {:?}, want {want:?}",
                bird_session(&bird)
            );
            session.shutdown().await;
        })
        .expect("node namespace");
}

#[test]
fn bird_declares_down_when_we_fall_silent_and_up_again_when_we_resume() {
    let lab = Link::new("bfd-bird-silent");
    let bird = start_bird(&lab);
    lab.node
        .block_on(|| async {
            let bfd = Bfd::new();
            let session = bfd.start(config(100, 3)).expect("start session");
            let mut status = session.status();
            wait_for(&mut status, Duration::from_secs(10), up_with_detection(300))
                .await
                .unwrap_or_else(|s| panic!("not Up: {s:?}"));
            let up = poll_router(
                Instant::now(),
                Duration::from_secs(5),
                Duration::from_millis(20),
                || bird_session(&bird).filter(|s| s.state == "Up" && s.timeout == 0.3),
            )
            .await;
            assert!(up.is_some(), "BIRD: {:?}", bird_session(&bird));

            // Silence: the task stops without AdminDown, like a node that died.
            let t0 = Instant::now();
            drop(session);
            let (_, after) = poll_router(
                t0,
                Duration::from_secs(5),
                Duration::from_millis(10),
                || bird_session(&bird).filter(|s| s.state != "Up"),
            )
            .await
            .unwrap_or_else(|| panic!("BIRD still Up: {:?}", bird_session(&bird)));
            println!("BIRD declared the silent node down after {after:?} (detection time 300 ms)");
            assert!(
                after < Duration::from_millis(300 + 700),
                "BIRD took {after:?}"
            );

            // Resume: a new session comes Up on both sides.
            let session = bfd.start(config(100, 3)).expect("restart session");
            let mut status = session.status();
            wait_for(&mut status, Duration::from_secs(10), |s| s.is_up())
                .await
                .unwrap_or_else(|s| panic!("not Up again: {s:?}"));
            let again = poll_router(
                Instant::now(),
                Duration::from_secs(5),
                Duration::from_millis(50),
                || bird_session(&bird).filter(|s| s.state == "Up"),
            )
            .await;
            assert!(again.is_some(), "BIRD: {:?}", bird_session(&bird));
            session.shutdown().await;
        })
        .expect("node namespace");
}

#[test]
fn we_declare_down_with_diag_1_when_bird_freezes_and_recover_when_it_resumes() {
    let lab = Link::new("bfd-bird-freeze");
    let bird = start_bird(&lab);
    lab.node
        .block_on(|| async {
            let (session, mut status, _) = start_until_up(
                config(100, 3),
                Duration::from_secs(10),
                up_with_detection(300),
                String::new,
            )
            .await;

            let t0 = Instant::now();
            bird.proc().signal(libc::SIGSTOP).expect("SIGSTOP bird");
            let down = wait_for(&mut status, Duration::from_secs(5), |s| !s.is_up()).await;
            let after = t0.elapsed();
            bird.proc().signal(libc::SIGCONT).expect("SIGCONT bird");
            let down = down.unwrap_or_else(|s| panic!("still Up: {s:?}"));
            println!("we declared the frozen router down after {after:?} (detection time 300 ms)");
            assert_eq!(down.state, State::Down);
            assert_eq!(down.diag, Diag::ControlDetectionTimeExpired);
            assert!(!down.peer_admin_down);
            assert_eq!(down.failures, 1, "a failure for the BGP session");
            assert!(after < Duration::from_millis(300 + 700), "took {after:?}");

            let up = wait_for(&mut status, Duration::from_secs(10), |s| s.is_up())
                .await
                .unwrap_or_else(|s| panic!("not Up after SIGCONT: {s:?}"));
            assert_eq!(up.failures, 1);
            session.shutdown().await;
        })
        .expect("node namespace");
}

#[test]
fn we_report_down_when_bird_disables_bfd() {
    let lab = Link::new("bfd-bird-disable");
    let bird = start_bird(&lab);
    lab.node
        .block_on(|| async {
            let (session, mut status, _) = start_until_up(
                config(100, 3),
                Duration::from_secs(10),
                |s| s.is_up(),
                String::new,
            )
            .await;
            let t0 = Instant::now();
            tokio::task::block_in_place(|| bird.birdc("disable bfd1")).expect("birdc disable");
            let down = wait_for(&mut status, Duration::from_secs(5), |s| !s.is_up())
                .await
                .unwrap_or_else(|s| panic!("still Up: {s:?}"));
            println!("BIRD disabled: {down:?} after {:?}", t0.elapsed());
            // BIRD 2.0 frees the session without sending AdminDown: we see silence, which is
            // a failure (diag 1) and must take the BGP session down.
            assert_eq!(down.state, State::Down);
            assert_eq!(down.diag, Diag::ControlDetectionTimeExpired);
            assert!(!down.peer_admin_down);
            assert_eq!(down.failures, 1);
            session.shutdown().await;
        })
        .expect("node namespace");
}

#[test]
fn our_shutdown_sends_admin_down_that_bird_acts_on_before_its_detection_time() {
    let lab = Link::new("bfd-bird-admin");
    let bird = start_bird(&lab);
    lab.node
        .block_on(|| async {
            // Multiplier 50: BIRD would need 5 s to notice silence, so a quick Down can only
            // come from our AdminDown.
            let (session, _, _) = start_until_up(
                config(100, 50),
                Duration::from_secs(10),
                |s| s.is_up(),
                String::new,
            )
            .await;
            let up = poll_router(
                Instant::now(),
                Duration::from_secs(5),
                Duration::from_millis(20),
                || bird_session(&bird).filter(|s| s.state == "Up" && s.timeout == 5.0),
            )
            .await;
            assert!(up.is_some(), "BIRD: {:?}", bird_session(&bird));

            let t0 = Instant::now();
            session.shutdown().await;
            let shutdown_took = t0.elapsed();
            let (_, after) = poll_router(
                t0,
                Duration::from_secs(10),
                Duration::from_millis(20),
                || bird_session(&bird).filter(|s| s.state == "Down"),
            )
            .await
            .unwrap_or_else(|| panic!("BIRD: {:?}", bird_session(&bird)));
            println!("shutdown took {shutdown_took:?}; BIRD Down after {after:?}");
            assert!(shutdown_took < Duration::from_secs(1));
            assert!(
                after < Duration::from_secs(2),
                "BIRD took {after:?}: it timed out instead of acting on AdminDown"
            );
        })
        .expect("node namespace");
}

#[test]
fn timer_change_while_up_runs_a_poll_sequence_bird_follows_without_a_flap() {
    let lab = Link::new("bfd-bird-poll");
    let bird = start_bird(&lab);
    lab.node
        .block_on(|| async {
            let (session, mut status, _) = start_until_up(
                config(100, 3),
                Duration::from_secs(10),
                up_with_detection(300),
                String::new,
            )
            .await;
            session
                .set_timers(cpvip_bgp::bfd::Timers {
                    desired_min_tx: Duration::from_millis(300),
                    required_min_rx: Duration::from_millis(250),
                    detect_mult: 3,
                })
                .await;
            // After the F: we send every 300 ms, BIRD every max(100, 250) = 250 ms.
            let changed = wait_for(&mut status, Duration::from_secs(5), |s| {
                s.tx_interval == Some(Duration::from_millis(300))
                    && s.detection_time == Duration::from_millis(750)
            })
            .await
            .unwrap_or_else(|s| panic!("timers not applied: {s:?}"));
            assert!(changed.is_up());
            let want = BirdSession {
                state: "Up".into(),
                interval: 0.250,
                timeout: 0.900,
            };
            let seen = poll_router(
                Instant::now(),
                Duration::from_secs(5),
                Duration::from_millis(50),
                || bird_session(&bird).filter(|s| *s == want),
            )
            .await;
            assert!(seen.is_some(), "BIRD: {:?}", bird_session(&bird));
            // Stays Up at the new rates.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = status.borrow().clone();
            assert!(now.is_up() && now.failures == 0, "{now:?}");
            assert_eq!(bird_session(&bird).map(|s| s.state), Some("Up".into()));
            session.shutdown().await;
        })
        .expect("node namespace");
}

/// Set in the environment of the helper process of the SIGSTOP test.
const HELPER_ENV: &str = "CPVIP_BFD_TEST_HELPER";

/// Not a test: the SIGSTOP test re-runs this test binary with only this function and
/// `CPVIP_BFD_TEST_HELPER=1`, inside the node namespace, to get our BFD in a process of its own
/// that can be frozen. Without the variable it returns at once.
#[test]
#[ignore = "helper process of bird_declares_down_when_our_process_is_frozen; runs only when spawned"]
fn helper_bfd_process() {
    if std::env::var(HELPER_ENV).is_err() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let _session = Bfd::new().start(config(100, 3)).expect("start session");
        std::future::pending::<()>().await;
    });
}

#[test]
fn bird_declares_down_when_our_process_is_frozen_and_up_when_it_resumes() {
    let lab = Link::new("bfd-bird-sigstop");
    let bird = start_bird(&lab);
    let exe = std::env::current_exe().expect("test binary path");
    let helper = lab
        .node
        .spawn_env(
            &[
                exe.as_os_str(),
                "--ignored".as_ref(),
                "--exact".as_ref(),
                "helper_bfd_process".as_ref(),
                "--nocapture".as_ref(),
            ],
            Some(&lab.dir.path().join("helper.log")),
            &[(HELPER_ENV.to_owned(), "1".to_owned())],
        )
        .expect("spawn helper process");
    let up = |timeout: f64| move |s: &BirdSession| s.state == "Up" && s.timeout == timeout;
    assert!(
        wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
            bird_session(&bird).is_some_and(|s| up(0.3)(&s))
        }),
        "BIRD never saw the helper Up: {:?}",
        bird_session(&bird)
    );

    let t0 = Instant::now();
    helper.signal(libc::SIGSTOP).expect("SIGSTOP helper");
    let down = wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
        bird_session(&bird).is_some_and(|s| s.state != "Up")
    });
    let after = t0.elapsed();
    helper.signal(libc::SIGCONT).expect("SIGCONT helper");
    assert!(down, "BIRD still Up with our process frozen");
    println!("BIRD declared our frozen process down after {after:?} (detection time 300 ms)");
    assert!(
        after < Duration::from_millis(300 + 700),
        "BIRD took {after:?}"
    );

    assert!(
        wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
            bird_session(&bird).is_some_and(|s| s.state == "Up")
        }),
        "not Up again after SIGCONT: {:?}",
        bird_session(&bird)
    );
}
