//! Fault switches of the Lease test server: stall (hold requests), fail (answer 500), refuse
//! (close the listener and drop open connections), each until a deadline or until cleared.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Fault switches. Each is active until its deadline (far future = until cleared).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultState {
    /// Requests are held (not answered) until then.
    pub stall_until: Option<Instant>,
    /// Requests are answered 500 InternalError until then.
    pub fail_until: Option<Instant>,
    /// The listener is closed (connections refused, open ones dropped) until then.
    pub refuse_until: Option<Instant>,
}

/// The fault switches of one server; cheap to clone.
#[derive(Clone)]
pub struct Faults {
    pub(super) tx: Arc<watch::Sender<FaultState>>,
}

impl Faults {
    pub(super) fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(FaultState::default()).0),
        }
    }

    fn until(d: Option<Duration>) -> Option<Instant> {
        // "Until cleared" is a deadline ten years away.
        Some(Instant::now() + d.unwrap_or(Duration::from_secs(10 * 365 * 86_400)))
    }

    /// Holds every request for `d` (None: until [`Faults::clear`]), then serves it.
    pub fn stall(&self, d: Option<Duration>) {
        self.tx.send_modify(|s| s.stall_until = Self::until(d));
    }

    /// Answers every request with 500 for `d` (None: until cleared).
    pub fn fail(&self, d: Option<Duration>) {
        self.tx.send_modify(|s| s.fail_until = Self::until(d));
    }

    /// Closes the listener and every open connection for `d` (None: until cleared).
    pub fn refuse(&self, d: Option<Duration>) {
        self.tx.send_modify(|s| s.refuse_until = Self::until(d));
    }

    /// Clears every fault.
    pub fn clear(&self) {
        self.tx.send_replace(FaultState::default());
    }

    /// Current switches.
    pub fn state(&self) -> FaultState {
        *self.tx.borrow()
    }

    fn active(until: Option<Instant>) -> bool {
        until.is_some_and(|t| t > Instant::now())
    }

    pub(super) fn failing(&self) -> bool {
        Self::active(self.tx.borrow().fail_until)
    }

    pub(super) fn refusing(&self) -> bool {
        Self::active(self.tx.borrow().refuse_until)
    }

    pub(super) async fn wait_while_stalled(&self) {
        let mut rx = self.tx.subscribe();
        loop {
            let until = rx.borrow_and_update().stall_until;
            match until {
                Some(t) if t > Instant::now() => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t.into()) => {}
                        _ = rx.changed() => {}
                    }
                }
                _ => return,
            }
        }
    }
}
