//! Decision latency: how long from a health verdict to the first actuator call.
//!
//! `decide` alone is a pure function (nanoseconds); what matters to an operator is the time from
//! "the health monitor published a verdict" to "the BGP speaker was told to announce" through the
//! running lifecycle loop (watch wake-up, decision, planner, bind, announce). The actuators here
//! only signal a channel, so the figure is the daemon's own overhead.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::sync::{mpsc, watch};

use cpvip::daemon::lifecycle::{Daemon, NoElection};
use cpvip::daemon::reconcile::{ActuatorError, RouteActuator, VipActuator};
use cpvip::daemon::{DaemonSettings, Inputs, Mode, Phase, decide};

/// Reports every call on a channel.
#[derive(Clone)]
struct Signal(mpsc::UnboundedSender<&'static str>);

impl VipActuator for Signal {
    async fn bind(&self) -> Result<(), ActuatorError> {
        let _ = self.0.send("bind");
        Ok(())
    }
    async fn unbind(&self) -> Result<(), ActuatorError> {
        let _ = self.0.send("unbind");
        Ok(())
    }
    async fn announce_takeover(&self) -> Result<(), ActuatorError> {
        Ok(())
    }
}

impl RouteActuator for Signal {
    async fn announce(&self, _vips: &BTreeSet<IpAddr>) -> Result<(), ActuatorError> {
        let _ = self.0.send("announce");
        Ok(())
    }
    async fn withdraw(&self) -> Result<(), ActuatorError> {
        let _ = self.0.send("withdraw");
        Ok(())
    }
    async fn shutdown(&self, _reason: &str, _timeout: Duration) -> Result<(), ActuatorError> {
        Ok(())
    }
}

async fn wait_for(calls: &mut mpsc::UnboundedReceiver<&'static str>, call: &str) {
    while let Some(seen) = calls.recv().await {
        if seen == call {
            return;
        }
    }
    panic!("daemon stopped before {call}");
}

fn bench(c: &mut Criterion) {
    c.bench_function("decide", |b| {
        let inputs = Inputs {
            mode: Mode::Leader,
            healthy: Some(true),
            leader: true,
            phase: Phase::Running,
        };
        b.iter(|| decide(black_box(&inputs)));
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let vip: IpAddr = "192.0.2.10".parse().expect("literal");
    let mut settings = DaemonSettings::new(Mode::Anycast, "bench", vec![vip]);
    settings.drain = Duration::ZERO;
    let (tx, mut calls) = mpsc::unbounded_channel();
    let health = watch::Sender::new(Some(false));
    let (_signals, signal_rx) = mpsc::channel(1);
    let daemon = Daemon::new(
        settings,
        Signal(tx.clone()),
        Signal(tx),
        NoElection::default(),
        health.subscribe(),
    );
    runtime.spawn(daemon.run(signal_rx));
    runtime.block_on(wait_for(&mut calls, "unbind"));

    c.bench_function("verdict_to_announce", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let start = Instant::now();
                health.send_replace(Some(true));
                runtime.block_on(wait_for(&mut calls, "announce"));
                total += start.elapsed();
                health.send_replace(Some(false));
                runtime.block_on(wait_for(&mut calls, "unbind"));
            }
            total
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
