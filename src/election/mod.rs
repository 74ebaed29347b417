//! Leader election through a `coordination.k8s.io/v1` Lease, with client-go's semantics plus
//! watch-driven takeover (see `lease` for the rules, `driver` for the I/O, `kubeconfig` for how
//! the client is found).
//!
//! Owns: deciding whether this node is the leader, and publishing it (`leader`), the current
//! holder, a transitions counter and the last error. Does not own what leadership means (the
//! daemon decides to serve the VIP from `leader` and health), nor health itself (it is told
//! through [`ElectionHandle::set_eligible`]).

mod driver;
pub mod kubeconfig;
pub mod lease;
pub mod record;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use lease::Timing;

/// What the election needs; the daemon builds it from its validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionConfig {
    /// Lease name (`--lease-name`, default `cpvip`).
    pub lease_name: String,
    /// Lease namespace (`--lease-namespace`, default `kube-system`).
    pub namespace: String,
    /// This node's identity in `holderIdentity` (`--node-name`).
    pub identity: String,
    /// client-go LeaseDuration (written as leaseDurationSeconds, rounded up to whole seconds).
    pub lease_duration: Duration,
    /// client-go RenewDeadline.
    pub renew_deadline: Duration,
    /// client-go RetryPeriod.
    pub retry_period: Duration,
    /// Kubeconfig file (already resolved, see [`kubeconfig::resolve`]); waited for if missing.
    pub kubeconfig: PathBuf,
    /// Added to the wall clock when writing acquireTime/renewTime. Always 0 in production; tests
    /// set it to show that a skewed clock changes nothing (expiry is judged on monotonic time).
    pub wall_clock_skew_ms: i64,
}

impl ElectionConfig {
    /// The design's defaults: Lease `kube-system/cpvip`, 5 s / 3 s / 1 s.
    pub fn new(identity: impl Into<String>, kubeconfig: impl Into<PathBuf>) -> Self {
        Self {
            lease_name: "cpvip".into(),
            namespace: "kube-system".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(5),
            renew_deadline: Duration::from_secs(3),
            retry_period: Duration::from_secs(1),
            kubeconfig: kubeconfig.into(),
            wall_clock_skew_ms: 0,
        }
    }

    /// The three durations.
    pub fn timing(&self) -> Timing {
        Timing {
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        }
    }
}

/// Errors starting an election.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    /// The durations break client-go's rules.
    #[error("invalid election timing: {0}")]
    InvalidTiming(String),
    /// Identity, name or namespace is empty.
    #[error("invalid election config: {0}")]
    InvalidConfig(&'static str),
}

/// One change of this node's leadership, timestamped when it was published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderChange {
    /// When `leader` was set (monotonic).
    pub at: Instant,
    /// The new value.
    pub leader: bool,
    /// Why.
    pub reason: String,
}

/// Status shared between the driver and the handle.
#[derive(Default)]
struct Status {
    transitions: AtomicU64,
    last_error: Mutex<Option<String>>,
    changes: Mutex<Vec<LeaderChange>>,
}

/// Commands from the handle to the driver.
#[derive(Debug)]
enum Command {
    SetEligible(bool),
    Shutdown,
}

/// Starts elections.
pub struct LeaseElection;

impl LeaseElection {
    /// Validates `cfg` and starts the election task (inside a tokio runtime). It waits for the
    /// kubeconfig, then contends; API errors are retried forever.
    pub fn start(cfg: ElectionConfig) -> Result<ElectionHandle, ElectionError> {
        cfg.timing()
            .validate()
            .map_err(ElectionError::InvalidTiming)?;
        if cfg.identity.is_empty() {
            return Err(ElectionError::InvalidConfig("identity is empty"));
        }
        if cfg.lease_name.is_empty() || cfg.namespace.is_empty() {
            return Err(ElectionError::InvalidConfig(
                "lease name or namespace is empty",
            ));
        }
        let (leader_tx, leader) = watch::channel(false);
        let (holder_tx, holder) = watch::channel(None);
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let status = Arc::new(Status::default());
        let identity = cfg.identity.clone();
        let timing = cfg.timing();
        let task = tokio::spawn(driver::run(
            cfg,
            driver::Outputs {
                leader: leader_tx,
                holder: holder_tx,
                status: status.clone(),
            },
            commands,
        ));
        Ok(ElectionHandle {
            leader,
            holder,
            status,
            commands: commands_tx,
            task: Some(task),
            identity,
            timing,
        })
    }
}

/// A running election. Dropping it stops the task without releasing (like a crash); call
/// [`ElectionHandle::shutdown`] for a clean exit.
pub struct ElectionHandle {
    /// True while this node is the leader. Turns false before any other node can acquire
    /// (renew deadline < lease duration), and before a release is sent.
    pub leader: watch::Receiver<bool>,
    /// Current holder as last observed (None: no Lease, or released).
    pub holder: watch::Receiver<Option<String>>,
    status: Arc<Status>,
    commands: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
    identity: String,
    timing: Timing,
}

impl ElectionHandle {
    /// How many times this node's leadership changed (became leader or stopped being leader).
    pub fn transitions(&self) -> u64 {
        self.status.transitions.load(Ordering::Relaxed)
    }

    /// The last API error seen, if any (kept after recovery, for status pages).
    pub fn last_error(&self) -> Option<String> {
        self.status
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every leadership change so far, in order.
    pub fn leader_changes(&self) -> Vec<LeaderChange> {
        self.status
            .changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Our identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Health gate: false makes a leader release the Lease (leader=false first) and stops
    /// contending; true contends again.
    pub fn set_eligible(&self, eligible: bool) {
        let _ = self.commands.send(Command::SetEligible(eligible));
    }

    /// Make-before-break hand-over: stops contending, releases the Lease if held, and waits until
    /// the Lease shows another holder or `max` passes. Returns that holder. `leader` turns false
    /// before the release is sent; a daemon doing make-before-break keeps serving on its own until
    /// this returns. Call [`ElectionHandle::set_eligible`]`(true)` to contend again.
    pub async fn release_and_wait_new_holder(&self, max: Duration) -> Option<String> {
        self.set_eligible(false);
        let mut holder = self.holder.clone();
        let me = self.identity.clone();
        let wait = holder.wait_for(|h| h.as_ref().is_some_and(|h| *h != me));
        match tokio::time::timeout(max, wait).await {
            Ok(Ok(h)) => h.clone(),
            _ => None,
        }
    }

    /// Releases the Lease if held and stops. Bounded by the lease duration; after that the task is
    /// aborted.
    pub async fn shutdown(mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(task) = self.task.as_mut() {
            let bound = self.timing.lease_duration;
            if tokio::time::timeout(bound, task).await.is_err() {
                tracing::warn!("election: shutdown did not finish in {bound:?}; aborting");
            }
        }
        self.abort_task();
    }

    /// Stops the task at once, without releasing: the in-process equivalent of SIGKILL.
    pub fn abort(mut self) {
        self.abort_task();
    }

    fn abort_task(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for ElectionHandle {
    fn drop(&mut self) {
        self.abort_task();
    }
}
