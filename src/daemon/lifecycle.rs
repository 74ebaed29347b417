//! The run loop and the shutdown sequence.
//!
//! Running: recompute the decision whenever the health verdict or the leadership changes, tell
//! the election whether to contend, and let the reconciler take one step at a time towards it.
//! Actuator calls are never cancelled halfway; only the drain and the retry back-off are
//! interruptible, which is how a flapping input keeps an announced VIP bound.
//!
//! Shutdown (first SIGTERM/SIGINT), bounded by `handover_max + shutdown_budget` (3 s):
//! 1. a serving leader hands over make-before-break: release the Lease, keep serving until the
//!    Lease shows a new holder plus a grace (at most `handover_max`); with
//!    `unbind_before_handover` (`--garp` on a shared L2 segment) it stops serving first instead;
//! 2. stop contending, withdraw, Cease "cpvip shutting down" to every peer, stop the election
//!    (releases the Lease if still held), wait out the drain, unbind the VIP.
//!
//! Exit codes: [`EXIT_OK`] (0) when every step succeeded, [`EXIT_FAILURE`] (1) when a step
//! failed or ran out of time, and also ([`EXIT_FORCED`]) when a second signal cut the shutdown
//! short; DESIGN's contract has no other codes.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};

use super::DaemonSettings;
use super::decision::{Desired, Inputs, Mode, Phase, decide};
use super::reconcile::{
    ActuatorError, ReconcileReport, Reconciler, RouteActuator, Step, VipActuator,
};

/// Clean exit.
pub const EXIT_OK: i32 = 0;
/// A shutdown step failed or timed out.
pub const EXIT_FAILURE: i32 = 1;
/// A second signal arrived during shutdown: exit at once. The CLI contract has three exit codes,
/// and an interrupted shutdown is a runtime failure.
pub const EXIT_FORCED: i32 = EXIT_FAILURE;
/// The RFC 9003 shutdown communication sent with the Cease NOTIFICATION.
pub const CEASE_REASON: &str = "cpvip shutting down";

/// The Lease election, as the daemon sees it.
pub trait Election: Send + Sync {
    /// True while this node holds the Lease (and can still renew it in time).
    fn leader(&self) -> watch::Receiver<bool>;
    /// The Lease's current holder, if any.
    fn holder(&self) -> watch::Receiver<Option<String>>;
    /// Contend (true) or not; turning false while leader releases the Lease at once.
    fn set_eligible(&self, eligible: bool);
    /// Releases the Lease and waits until another node holds it, at most `max`; returns the
    /// new holder, or `None` on timeout.
    fn release_and_wait_new_holder(
        &self,
        max: Duration,
    ) -> impl Future<Output = Option<String>> + Send;
    /// Stops the election, releasing the Lease if still held. Consumes the election, as the
    /// real handle's `shutdown(self)` does.
    fn shutdown(self) -> impl Future<Output = Result<(), ActuatorError>> + Send;
}

/// The election of anycast mode: nobody leads, nothing to release.
pub struct NoElection {
    leader: watch::Sender<bool>,
    holder: watch::Sender<Option<String>>,
}

impl Default for NoElection {
    fn default() -> Self {
        Self {
            leader: watch::Sender::new(false),
            holder: watch::Sender::new(None),
        }
    }
}

impl Election for NoElection {
    fn leader(&self) -> watch::Receiver<bool> {
        self.leader.subscribe()
    }
    fn holder(&self) -> watch::Receiver<Option<String>> {
        self.holder.subscribe()
    }
    fn set_eligible(&self, _eligible: bool) {}
    async fn release_and_wait_new_holder(&self, _max: Duration) -> Option<String> {
        None
    }
    async fn shutdown(self) -> Result<(), ActuatorError> {
        Ok(())
    }
}

/// What the daemon is doing, for `/status` and the metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonStatus {
    /// Running, handing over or shutting down.
    pub phase: Phase,
    /// The aggregate health verdict the decision used.
    pub healthy: Option<bool>,
    /// This node holds the Lease.
    pub leader: bool,
    /// The Lease's holder as last seen.
    pub holder: Option<String>,
    /// Holder changes seen by this process.
    pub lease_transitions: u64,
    /// The decision.
    pub desired: Desired,
    /// What is in effect, and the last actuator error.
    pub reconcile: ReconcileReport,
}

/// The daemon: decision, reconciler and election wired together.
pub struct Daemon<V, R, E> {
    settings: DaemonSettings,
    reconciler: Reconciler<V, R>,
    election: E,
    health: watch::Receiver<Option<bool>>,
    status: watch::Sender<DaemonStatus>,
    last_holder: Option<String>,
}

impl<V: VipActuator, R: RouteActuator, E: Election> Daemon<V, R, E> {
    /// Wires the parts; nothing happens until [`Daemon::run`].
    pub fn new(
        settings: DaemonSettings,
        vip: V,
        routes: R,
        election: E,
        health: watch::Receiver<Option<bool>>,
    ) -> Self {
        let reconciler = Reconciler::new(vip, routes, &settings);
        let status = watch::Sender::new(DaemonStatus {
            phase: Phase::Running,
            healthy: None,
            leader: false,
            holder: None,
            lease_transitions: 0,
            desired: Desired {
                serve: false,
                eligible: false,
            },
            reconcile: ReconcileReport::default(),
        });
        Self {
            settings,
            reconciler,
            election,
            health,
            status,
            last_holder: None,
        }
    }

    /// Follows the daemon's state.
    pub fn status(&self) -> watch::Receiver<DaemonStatus> {
        self.status.subscribe()
    }

    /// Serves until the first signal, then shuts down; returns the process exit code.
    pub async fn run(mut self, mut signals: mpsc::Receiver<()>) -> i32 {
        self.serve_until_signal(&mut signals).await;
        tracing::info!("signal received: shutting down");
        tokio::select! {
            biased;
            () = next_signal(&mut signals) => {
                tracing::warn!("second signal: exiting at once");
                EXIT_FORCED
            }
            code = self.shutdown() => code,
        }
    }

    async fn serve_until_signal(&mut self, signals: &mut mpsc::Receiver<()>) {
        let mut leader = self.election.leader();
        let mut holder = self.election.holder();
        let mut eligible = None;
        loop {
            let inputs = Inputs {
                mode: self.settings.mode,
                healthy: *self.health.borrow_and_update(),
                leader: *leader.borrow_and_update(),
                phase: Phase::Running,
            };
            let desired = decide(&inputs);
            if eligible != Some(desired.eligible) {
                self.election.set_eligible(desired.eligible);
                eligible = Some(desired.eligible);
            }
            let seen_holder = holder.borrow_and_update().clone();
            self.publish(&inputs, desired, seen_holder);
            if signals.try_recv().is_ok() {
                return;
            }
            match self.reconciler.next_step(desired.serve) {
                None => tokio::select! {
                    biased;
                    () = next_signal(signals) => return,
                    () = changed(&mut self.health) => {}
                    () = changed(&mut leader) => {}
                    () = changed(&mut holder) => {}
                },
                // The drain is the one interruptible step: if serving resumes meanwhile, the
                // VIP is still bound and only the announcement is repeated.
                Some(Step::Drain) => tokio::select! {
                    biased;
                    () = next_signal(signals) => return,
                    _ = self.reconciler.execute(Step::Drain) => {}
                    () = changed(&mut self.health) => {}
                    () = changed(&mut leader) => {}
                },
                Some(step) => {
                    if let Err((_, delay)) = self.reconciler.execute(step).await {
                        tokio::select! {
                            biased;
                            () = next_signal(signals) => return,
                            () = sleep(delay) => {}
                        }
                    }
                }
            }
        }
    }

    fn publish(&mut self, inputs: &Inputs, desired: Desired, holder: Option<String>) {
        let transition =
            holder.is_some() && self.last_holder.is_some() && holder != self.last_holder;
        if holder.is_some() {
            self.last_holder.clone_from(&holder);
        }
        let reconcile = self.reconciler.subscribe().borrow().clone();
        self.status.send_modify(|s| {
            s.phase = inputs.phase;
            s.healthy = inputs.healthy;
            s.leader = inputs.leader;
            s.holder = holder;
            s.lease_transitions += u64::from(transition);
            s.desired = desired;
            s.reconcile = reconcile;
        });
    }

    fn publish_phase(&mut self, phase: Phase) {
        let reconcile = self.reconciler.subscribe().borrow().clone();
        self.status.send_modify(|s| {
            s.phase = phase;
            s.desired.eligible = false;
            s.desired.serve = phase == Phase::HandingOver && s.desired.serve;
            s.reconcile = reconcile;
        });
    }

    async fn shutdown(mut self) -> i32 {
        let mut ok = true;
        // Read before anything touches the election, and stay eligible until the hand-over
        // is done: the election releases the Lease as soon as it is told not to contend,
        // which would let another node take over while this one still serves (a gap with
        // BGP, two ARP owners with `--garp`).
        let is_leader = *self.election.leader().borrow();
        if self.settings.mode == Mode::Leader && is_leader {
            if self.settings.unbind_before_handover {
                // Two ARP owners on one segment would fight: give the address up first.
                self.publish_phase(Phase::ShuttingDown);
                let stop = timeout(
                    self.settings.shutdown_budget,
                    self.reconciler.converge(false),
                );
                ok &= step_ok("stop serving before hand-over", stop.await);
            } else if self.reconciler.applied().serving() {
                self.publish_phase(Phase::HandingOver);
                self.hand_over().await;
            }
        }
        self.election.set_eligible(false);
        self.publish_phase(Phase::ShuttingDown);
        let deadline = Instant::now() + self.settings.shutdown_budget;
        if self.reconciler.applied().announced {
            let withdraw = timeout_at(deadline, self.reconciler.execute(Step::Withdraw));
            ok &= step_ok("withdraw", withdraw.await.map(|r| r.map_err(|(e, _)| e)));
        }
        let withdrawn_at = Instant::now();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let cease = self.reconciler.routes().shutdown(CEASE_REASON, remaining);
        ok &= step_ok("BGP Cease", timeout_at(deadline, cease).await);
        let election = self.election;
        let release = timeout_at(deadline, election.shutdown());
        ok &= step_ok("release the Lease", release.await);
        if self.reconciler.applied().bound != Some(false) {
            sleep_until((withdrawn_at + self.reconciler.drain()).min(deadline)).await;
            let unbind = timeout_at(deadline, self.reconciler.execute(Step::Unbind));
            ok &= step_ok("unbind", unbind.await.map(|r| r.map_err(|(e, _)| e)));
        }
        let reconcile = self.reconciler.subscribe().borrow().clone();
        self.status.send_modify(|s| s.reconcile = reconcile);
        if ok { EXIT_OK } else { EXIT_FAILURE }
    }

    /// Make-before-break: keep serving until another node holds the Lease, plus a grace for
    /// its announcement to reach the routers; bounded by `handover_max` in all.
    async fn hand_over(&self) {
        let max = self.settings.handover_max;
        let grace = self.settings.handover_grace;
        let wait = async {
            match self.election.release_and_wait_new_holder(max).await {
                Some(holder) => {
                    tracing::info!(%holder, "Lease taken over; serving a grace period more");
                    sleep(grace).await;
                }
                None => tracing::warn!(?max, "no new Lease holder in time; withdrawing anyway"),
            }
        };
        if timeout(max, wait).await.is_err() {
            tracing::warn!(?max, "hand-over grace cut short by its bound");
        }
    }
}

/// Logs a failed or timed-out shutdown step; true when it succeeded.
fn step_ok<T>(
    what: &str,
    result: Result<Result<T, ActuatorError>, tokio::time::error::Elapsed>,
) -> bool {
    match result {
        Ok(Ok(_)) => true,
        Ok(Err(err)) => {
            tracing::error!(error = %err, "shutdown: {what} failed");
            false
        }
        Err(_) => {
            tracing::error!("shutdown: {what} ran out of time");
            false
        }
    }
}

/// Waits for a change; a closed channel never changes again (its last value stays in force).
async fn changed<T>(rx: &mut watch::Receiver<T>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Waits for the next signal; a closed channel means no more signals.
async fn next_signal(signals: &mut mpsc::Receiver<()>) {
    if signals.recv().await.is_none() {
        std::future::pending::<()>().await;
    }
}

/// Forwards SIGTERM and SIGINT into a channel for [`Daemon::run`]. Call inside the runtime.
pub fn forward_signals() -> std::io::Result<mpsc::Receiver<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = term.recv() => {}
                Some(()) = int.recv() => {}
                else => return,
            }
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
