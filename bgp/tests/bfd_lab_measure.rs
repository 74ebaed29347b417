//! Lab measurement, not a pass/fail timing test: how long a real router takes to declare our
//! BFD session down after our node is cut off (its link set down behind a switch, so the
//! router's own link stays up). Run with
//! `cargo test -p cpvip-bgp --test bfd_lab_measure -- --ignored --nocapture`.

mod bfd_common;

use std::time::{Duration, Instant};

use bfd_common::{
    NODE, ROUTER, attach_to_switch, config, frr_bfd_peers, poll_router, start_frr_bfdd, wait_for,
};
use cpvip_bgp::bfd::Bfd;
use cpvip_lab::netns::{Netns, TempDir, require_root};
use cpvip_lab::router::Bird;

const TRIALS: usize = 10;

struct Switched {
    node: Netns,
    router: Netns,
    _switch: Netns,
    dir: TempDir,
}

fn switched(tag: &str) -> Switched {
    require_root("the BFD lab measurement creates namespaces");
    let dir = TempDir::new(tag).expect("temp dir");
    let switch = Netns::new(&format!("{tag}-sw")).expect("switch");
    switch.add_bridge("br0").expect("bridge");
    let router = Netns::new(&format!("{tag}-r")).expect("router");
    let node = Netns::new(&format!("{tag}-n")).expect("node");
    attach_to_switch(&switch, &[(&router, "p1", ROUTER), (&node, "p2", NODE)]);
    Switched {
        node,
        router,
        _switch: switch,
        dir,
    }
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: n={} min {:.0} ms / median {:.0} ms / max {:.0} ms (detection time 300 ms, \
         polled every 10 ms)",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1]),
    );
}

/// Cuts the node TRIALS times and returns how long `is_down` took to become true each time.
fn measure(
    lab: &Switched,
    is_down: impl Fn() -> bool + Sync,
    is_up: impl Fn() -> bool + Sync,
) -> Vec<Duration> {
    lab.node
        .block_on(|| async {
            let session = Bfd::new().start(config(100, 3)).expect("start session");
            let mut status = session.status();
            let mut samples = Vec::new();
            for trial in 0..TRIALS {
                wait_for(&mut status, Duration::from_secs(15), |s| {
                    s.is_up() && s.detection_time == Duration::from_millis(300)
                })
                .await
                .unwrap_or_else(|s| panic!("trial {trial}: not Up: {s:?}"));
                poll_router(
                    Instant::now(),
                    Duration::from_secs(10),
                    Duration::from_millis(20),
                    || is_up().then_some(()),
                )
                .await
                .unwrap_or_else(|| panic!("trial {trial}: router not Up"));
                // Let a random part of a transmit interval pass, as a real failure would.
                tokio::time::sleep(Duration::from_millis(1000 + 37 * trial as u64)).await;
                let t0 = Instant::now();
                tokio::task::block_in_place(|| {
                    lab.node.exec(&["ip", "link", "set", "eth0", "down"])
                })
                .expect("cut link");
                let (_, after) = poll_router(
                    t0,
                    Duration::from_secs(10),
                    Duration::from_millis(10),
                    || is_down().then_some(()),
                )
                .await
                .unwrap_or_else(|| panic!("trial {trial}: router never declared down"));
                samples.push(after);
                tokio::task::block_in_place(|| lab.node.exec(&["ip", "link", "set", "eth0", "up"]))
                    .expect("restore link");
            }
            session.shutdown().await;
            samples
        })
        .expect("node namespace")
}

#[test]
#[ignore = "lab measurement; run explicitly with --ignored --nocapture"]
fn measure_bird_detection_of_a_cut_node() {
    let lab = switched("bfd-m-bird");
    let bird = Bird::start(
        &lab.router,
        lab.dir.path(),
        r#"router id 10.77.0.1;
protocol device {}
protocol bfd bfd1 {
  interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
  neighbor 10.77.0.2 dev "eth0";
}
"#,
    )
    .expect("bird");
    let state = || {
        bird.birdc("show bfd sessions")
            .ok()
            .and_then(|o| o.lines().find(|l| l.starts_with(NODE)).map(str::to_owned))
            .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
    };
    let samples = measure(
        &lab,
        || state().is_some_and(|s| s != "Up"),
        || state().as_deref() == Some("Up"),
    );
    summary("BIRD 2.0.12 declares a cut node down after", samples);
}

#[test]
#[ignore = "lab measurement; run explicitly with --ignored --nocapture"]
fn measure_frr_detection_of_a_cut_node() {
    let lab = switched("bfd-m-frr");
    let frr = start_frr_bfdd(
        &lab.router,
        lab.dir.path(),
        "rtr",
        "bfd\n peer 10.77.0.2 local-address 10.77.0.1 interface eth0\n  \
         detect-multiplier 3\n  receive-interval 100\n  transmit-interval 100\n \
         exit\nexit\n"
            .into(),
    );
    let status = || {
        frr_bfd_peers(&frr)?
            .into_iter()
            .find(|p| p["peer"] == NODE)
            .and_then(|p| p["status"].as_str().map(str::to_owned))
    };
    let samples = measure(
        &lab,
        || status().is_some_and(|s| s != "up"),
        || status().as_deref() == Some("up"),
    );
    summary("FRR 8.4 bfdd declares a cut node down after", samples);
}
