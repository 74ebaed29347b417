//! Carrying the decision out: binds/unbinds the VIP and announces/withdraws the routes, one
//! ordered, idempotent step at a time.
//!
//! Ordering is part of correctness. Start serving: bind the VIP, then gratuitous ARP/NA (if
//! enabled), then announce, so that no router sends traffic to a node without the address. Stop
//! serving: withdraw, then wait a short drain, then unbind, so that packets already routed here
//! still find the address. [`next_step`] is the pure planner; [`Reconciler`] executes one step,
//! records what is in effect, and computes the back-off after a failure.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::watch;

/// A failed actuator call, as text: the concrete crates have their own error types and the
/// daemon only logs, reports and retries.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ActuatorError(pub String);

impl ActuatorError {
    /// Wraps any displayable error.
    pub fn new(err: impl std::fmt::Display) -> Self {
        Self(err.to_string())
    }
}

/// The host side: the VIP addresses on the configured interface (`cpvip-netlink`).
pub trait VipActuator: Send + Sync {
    /// Adds every VIP to the interface; succeeds if already present.
    fn bind(&self) -> impl Future<Output = Result<(), ActuatorError>> + Send;
    /// Removes every VIP from the interface; succeeds if already absent.
    fn unbind(&self) -> impl Future<Output = Result<(), ActuatorError>> + Send;
    /// Gratuitous ARP / unsolicited NA for every VIP, after a bind.
    fn announce_takeover(&self) -> impl Future<Output = Result<(), ActuatorError>> + Send;
}

/// The routing side: the BGP speaker (`cpvip-bgp`). Sessions stay up whatever is announced.
pub trait RouteActuator: Send + Sync {
    /// Makes `vips` the announced set to every peer (declarative, idempotent).
    fn announce(
        &self,
        vips: &BTreeSet<IpAddr>,
    ) -> impl Future<Output = Result<(), ActuatorError>> + Send;
    /// Announces nothing (withdraws everything previously announced).
    fn withdraw(&self) -> impl Future<Output = Result<(), ActuatorError>> + Send;
    /// Closes every session with a Cease NOTIFICATION carrying `reason` (RFC 9003), waiting at
    /// most `timeout`.
    fn shutdown(
        &self,
        reason: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), ActuatorError>> + Send;
}

/// One action towards the desired state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Add the VIPs to the interface.
    Bind,
    /// Gratuitous ARP / unsolicited NA.
    AnnounceTakeover,
    /// Announce the VIP routes.
    Announce,
    /// Withdraw the VIP routes.
    Withdraw,
    /// Wait for packets routed before the withdrawal.
    Drain,
    /// Remove the VIPs from the interface.
    Unbind,
}

/// What is in effect, as far as this process knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// `None` until the first bind/unbind: a previous run (crash, kill -9) may have left the
    /// VIP bound, so the first "not serving" unbinds unconditionally.
    pub bound: Option<bool>,
    /// Gratuitous ARP/NA sent since the last bind.
    pub takeover_sent: bool,
    /// Routes announced. The speaker starts with nothing announced.
    pub announced: bool,
    /// A withdrawal happened and the drain has not elapsed yet.
    pub drain_pending: bool,
}

impl Applied {
    /// Bound and announced.
    pub fn serving(&self) -> bool {
        self.bound == Some(true) && self.announced
    }
}

/// The next step from `applied` towards `serve`, or `None` when there is nothing to do.
pub fn next_step(applied: &Applied, serve: bool, garp: bool) -> Option<Step> {
    if serve {
        if applied.bound != Some(true) {
            Some(Step::Bind)
        } else if garp && !applied.takeover_sent {
            Some(Step::AnnounceTakeover)
        } else if !applied.announced {
            Some(Step::Announce)
        } else {
            None
        }
    } else if applied.announced {
        Some(Step::Withdraw)
    } else if applied.drain_pending {
        Some(Step::Drain)
    } else if applied.bound != Some(false) {
        Some(Step::Unbind)
    } else {
        None
    }
}

/// What the reconciler reports to `/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// What is in effect.
    pub applied: Applied,
    /// The last failure, cleared by the next successful step.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
}

/// Executes steps against the actuators and keeps [`Applied`] up to date.
pub struct Reconciler<V, R> {
    vip: V,
    routes: R,
    vips: BTreeSet<IpAddr>,
    garp: bool,
    drain: Duration,
    retry_initial: Duration,
    retry_max: Duration,
    report: watch::Sender<ReconcileReport>,
}

impl<V: VipActuator, R: RouteActuator> Reconciler<V, R> {
    /// A reconciler for `vips`; nothing is assumed about the VIP's presence on the host.
    pub fn new(vip: V, routes: R, settings: &super::DaemonSettings) -> Self {
        Self {
            vip,
            routes,
            vips: settings.vips.iter().copied().collect(),
            garp: settings.garp,
            drain: settings.drain,
            retry_initial: settings.retry_initial,
            retry_max: settings.retry_max,
            report: watch::Sender::new(ReconcileReport::default()),
        }
    }

    /// Follows what is in effect and the last error.
    pub fn subscribe(&self) -> watch::Receiver<ReconcileReport> {
        self.report.subscribe()
    }

    /// What is in effect.
    pub fn applied(&self) -> Applied {
        self.report.borrow().applied
    }

    /// The VIP actuator (the shutdown sequence calls it directly).
    pub fn vip(&self) -> &V {
        &self.vip
    }

    /// The route actuator (the shutdown sequence sends Cease through it).
    pub fn routes(&self) -> &R {
        &self.routes
    }

    /// The configured drain.
    pub fn drain(&self) -> Duration {
        self.drain
    }

    /// The next step towards `serve`.
    pub fn next_step(&self, serve: bool) -> Option<Step> {
        next_step(&self.applied(), serve, self.garp)
    }

    /// Executes one step. On failure returns the delay before the next attempt (exponential
    /// back-off). `Drain` only sleeps; it is the one step that may be cancelled (dropped)
    /// without harm, which is how a flapping input interrupts a drain.
    pub async fn execute(&mut self, step: Step) -> Result<(), (ActuatorError, Duration)> {
        let result = match step {
            Step::Bind => self.vip.bind().await,
            // Best effort: a failed ARP/NA must not keep the routes from being announced (the
            // VIP is bound and answers; neighbours learn it on their next ARP request).
            Step::AnnounceTakeover => {
                if let Err(err) = self.vip.announce_takeover().await {
                    tracing::warn!(error = %err, "gratuitous ARP/NA failed; announcing anyway");
                    self.report.send_modify(|r| r.last_error = Some(err.0));
                }
                Ok(())
            }
            Step::Announce => self.routes.announce(&self.vips).await,
            Step::Withdraw => self.routes.withdraw().await,
            Step::Drain => {
                tokio::time::sleep(self.drain).await;
                Ok(())
            }
            Step::Unbind => self.vip.unbind().await,
        };
        match result {
            Ok(()) => {
                self.report.send_modify(|r| {
                    apply(&mut r.applied, step);
                    if step != Step::AnnounceTakeover {
                        r.last_error = None;
                    }
                    r.consecutive_failures = 0;
                });
                Ok(())
            }
            Err(err) => {
                let mut failures = 0;
                self.report.send_modify(|r| {
                    r.consecutive_failures = r.consecutive_failures.saturating_add(1);
                    r.last_error = Some(format!("{step:?}: {err}"));
                    failures = r.consecutive_failures;
                });
                let delay = backoff(self.retry_initial, self.retry_max, failures);
                tracing::warn!(?step, error = %err, retry_in = ?delay, "actuator step failed");
                Err((err, delay))
            }
        }
    }

    /// Executes steps until `serve` is in effect; stops at the first failure. For callers that
    /// do not need to interleave input changes (tests, the shutdown path).
    pub async fn converge(&mut self, serve: bool) -> Result<(), ActuatorError> {
        while let Some(step) = self.next_step(serve) {
            self.execute(step).await.map_err(|(err, _)| err)?;
        }
        Ok(())
    }
}

/// Records the effect of a successful step.
fn apply(applied: &mut Applied, step: Step) {
    match step {
        Step::Bind => {
            applied.bound = Some(true);
            applied.takeover_sent = false;
        }
        Step::AnnounceTakeover => applied.takeover_sent = true,
        Step::Announce => {
            applied.announced = true;
            applied.drain_pending = false;
        }
        Step::Withdraw => {
            applied.announced = false;
            applied.drain_pending = true;
        }
        Step::Drain => applied.drain_pending = false,
        Step::Unbind => {
            applied.bound = Some(false);
            applied.takeover_sent = false;
        }
    }
}

/// `initial × 2^(failures-1)`, capped at `max`.
pub fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    initial.saturating_mul(1 << exponent).min(max)
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
