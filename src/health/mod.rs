//! Local health checks, the first input of the decision: "can this node serve the VIP?".
//!
//! [`checks`] owns the probes (apiserver, supervisor, http(s), tcp), [`tls`] the verification
//! policy, [`fsm`] the pure rise/fall state machine. [`HealthMonitor`] runs every check on its
//! interval and publishes each check's last result and the aggregate verdict as `watch` values:
//! `None` until the first verdict, then `Some(healthy)`. All checks must be up to serve.

pub mod checks;
pub mod fsm;
pub mod kubeconfig;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

pub use checks::{ApiAuth, ApiCredentials, Check, CheckError, ProbeResult};
pub use fsm::{CheckFsm, CheckState, Event, RiseFall, verdict};

/// Help text for `--health-check` (the CLI shows it; the issue asks that `--help` states the
/// TLS verification policy).
pub const HEALTH_CHECK_HELP: &str = "Health check, repeatable; all must pass to serve. \
`apiserver` = GET https://127.0.0.1:6443/readyz with the kubeconfig's credentials; \
`supervisor` = GET https://127.0.0.1:9345/ping expecting `pong`; `https://URL[,ca=FILE]`, \
`http://URL` (pass on 2xx); `tcp://HOST:PORT` (pass on connect). TLS is verified against \
`ca=FILE` (the kubeconfig's CA for apiserver) when given; without one, certificates are not \
verified for 127.0.0.0/8 and ::1 only, and verified against the system roots otherwise.";

/// `--health-interval`, `--health-timeout`, `--health-rise`, `--health-fall`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthSettings {
    /// Time between the starts of two probes of one check.
    pub interval: Duration,
    /// Bound of one probe.
    pub timeout: Duration,
    /// Consecutive passes to become up / failures to become down.
    pub thresholds: RiseFall,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            thresholds: RiseFall { rise: 2, fall: 3 },
        }
    }
}

/// One check as `/status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSnapshot {
    /// `apiserver`, `supervisor`, or the URL.
    pub name: String,
    /// What it probes.
    pub target: String,
    /// Up, down or unknown.
    pub state: CheckState,
    /// The last probe, if any ran yet.
    pub last: Option<ProbeResult>,
    /// Consecutive passes.
    pub consecutive_ok: u32,
    /// Consecutive failures.
    pub consecutive_fail: u32,
}

/// The running checks. Dropping it stops them.
pub struct HealthMonitor {
    verdict: watch::Receiver<Option<bool>>,
    checks: watch::Receiver<Vec<CheckSnapshot>>,
    tasks: Vec<JoinHandle<()>>,
}

impl HealthMonitor {
    /// Starts every check (first probe at once). No checks (`--no-health-check`) means the
    /// verdict is healthy from the start.
    pub fn spawn(checks: Vec<Check>, settings: HealthSettings) -> Self {
        let snapshots = checks
            .iter()
            .map(|c| CheckSnapshot {
                name: c.name().to_string(),
                target: c.target().to_string(),
                state: CheckState::Unknown,
                last: None,
                consecutive_ok: 0,
                consecutive_fail: 0,
            })
            .collect::<Vec<_>>();
        let initial = verdict(snapshots.iter().map(|s| s.state));
        let verdict_tx = Arc::new(watch::Sender::new(initial));
        let checks_tx = Arc::new(watch::Sender::new(snapshots));
        let verdict_rx = verdict_tx.subscribe();
        let checks_rx = checks_tx.subscribe();
        let tasks = checks
            .into_iter()
            .enumerate()
            .map(|(index, check)| {
                tokio::spawn(run_check(
                    index,
                    check,
                    settings,
                    checks_tx.clone(),
                    verdict_tx.clone(),
                ))
            })
            .collect();
        Self {
            verdict: verdict_rx,
            checks: checks_rx,
            tasks,
        }
    }

    /// The aggregate verdict: `None` until known.
    pub fn verdict(&self) -> watch::Receiver<Option<bool>> {
        self.verdict.clone()
    }

    /// Each check's state and last result.
    pub fn checks(&self) -> watch::Receiver<Vec<CheckSnapshot>> {
        self.checks.clone()
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn run_check(
    index: usize,
    check: Check,
    settings: HealthSettings,
    checks: Arc<watch::Sender<Vec<CheckSnapshot>>>,
    verdict_tx: Arc<watch::Sender<Option<bool>>>,
) {
    let mut fsm = CheckFsm::default();
    let mut ticks = tokio::time::interval(settings.interval);
    // A slow probe must not be followed by a burst of catch-up probes.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let result = check.probe(settings.timeout).await;
        let event = if result.ok {
            Event::Passed
        } else {
            Event::Failed
        };
        if let Some(state) = fsm.step(event, settings.thresholds) {
            tracing::info!(check = check.name(), ?state, detail = %result.detail, "health check changed");
        }
        // The verdict is computed and published while the snapshot is locked, so two checks
        // finishing at once cannot publish their verdicts out of order.
        checks.send_modify(|all| {
            if let Some(snapshot) = all.get_mut(index) {
                snapshot.state = fsm.state;
                snapshot.consecutive_ok = fsm.consecutive_ok;
                snapshot.consecutive_fail = fsm.consecutive_fail;
                snapshot.last = Some(result);
            }
            let now = verdict(all.iter().map(|s| s.state));
            verdict_tx.send_if_modified(|v| {
                let changed = *v != now;
                *v = now;
                changed
            });
        });
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testserver;
