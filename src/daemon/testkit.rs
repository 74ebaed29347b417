//! Test doubles: spy actuators and a fake election that record every call, in order, with the
//! (tokio, possibly paused) time of the call, and fail on request.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::lifecycle::Election;
use super::reconcile::{ActuatorError, RouteActuator, VipActuator};

/// A recorded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Bind,
    Unbind,
    Takeover,
    Announce(Vec<IpAddr>),
    Withdraw,
    Cease(String),
    SetEligible(bool),
    Release,
    ElectionShutdown,
}

/// One attempt: when, what, and whether it succeeded.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub at: Instant,
    pub call: Call,
    pub ok: bool,
}

#[derive(Default)]
struct Inner {
    log: Vec<Attempt>,
    failures: HashMap<&'static str, u32>,
}

/// Shared by the VIP and route spies and the fake election so that one log has the global order.
#[derive(Clone, Default)]
pub struct Spy {
    inner: Arc<Mutex<Inner>>,
}

impl Spy {
    /// Make the next `n` calls of `kind` ("bind", "unbind", "takeover", "announce", "withdraw",
    /// "cease") fail.
    pub fn fail_next(&self, kind: &'static str, n: u32) {
        self.lock().failures.insert(kind, n);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("spy mutex poisoned by a failed test")
    }

    fn record(&self, kind: &'static str, call: Call) -> Result<(), ActuatorError> {
        let mut inner = self.lock();
        let fail = match inner.failures.get_mut(kind) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        };
        inner.log.push(Attempt {
            at: Instant::now(),
            call,
            ok: !fail,
        });
        if fail {
            Err(ActuatorError(format!("injected {kind} failure")))
        } else {
            Ok(())
        }
    }

    /// Every attempt so far.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.lock().log.clone()
    }

    /// The successful calls, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.attempts()
            .into_iter()
            .filter(|a| a.ok)
            .map(|a| a.call)
            .collect()
    }

    /// The successful actuator calls (no election calls), in order.
    pub fn actuator_calls(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| {
                !matches!(
                    c,
                    Call::SetEligible(_) | Call::Release | Call::ElectionShutdown
                )
            })
            .collect()
    }

    /// Time of the first successful `call`.
    pub fn time_of(&self, call: &Call) -> Option<Instant> {
        self.attempts()
            .into_iter()
            .find(|a| a.ok && &a.call == call)
            .map(|a| a.at)
    }

    /// Replays the successful calls and panics if an ordering rule was broken: announce only
    /// while bound, takeover only while bound, unbind only while not announced.
    pub fn assert_ordering(&self) {
        let mut bound = false;
        let mut announced = false;
        for call in self.calls() {
            match call {
                Call::Bind => bound = true,
                Call::Takeover => assert!(bound, "takeover while unbound: {:?}", self.calls()),
                Call::Announce(_) => {
                    assert!(bound, "announce while unbound: {:?}", self.calls());
                    announced = true;
                }
                Call::Withdraw => announced = false,
                Call::Unbind => {
                    assert!(!announced, "unbind while announced: {:?}", self.calls());
                    bound = false;
                }
                _ => {}
            }
        }
    }
}

impl VipActuator for Spy {
    async fn bind(&self) -> Result<(), ActuatorError> {
        self.record("bind", Call::Bind)
    }
    async fn unbind(&self) -> Result<(), ActuatorError> {
        self.record("unbind", Call::Unbind)
    }
    async fn announce_takeover(&self) -> Result<(), ActuatorError> {
        self.record("takeover", Call::Takeover)
    }
}

impl RouteActuator for Spy {
    async fn announce(&self, vips: &BTreeSet<IpAddr>) -> Result<(), ActuatorError> {
        self.record("announce", Call::Announce(vips.iter().copied().collect()))
    }
    async fn withdraw(&self) -> Result<(), ActuatorError> {
        self.record("withdraw", Call::Withdraw)
    }
    async fn shutdown(&self, reason: &str, _timeout: Duration) -> Result<(), ActuatorError> {
        self.record("cease", Call::Cease(reason.to_string()))
    }
}

/// An election the test drives: it flips `leader`/`holder` itself; `release` drops leadership
/// and waits for the test to show a new holder.
#[derive(Clone)]
pub struct FakeElection {
    pub spy: Spy,
    pub leader: watch::Sender<bool>,
    pub holder: watch::Sender<Option<String>>,
}

impl FakeElection {
    pub fn new(spy: Spy) -> Self {
        Self {
            spy,
            leader: watch::Sender::new(false),
            holder: watch::Sender::new(None),
        }
    }

    /// Makes this node ("me") the leader.
    pub fn elect_me(&self) {
        self.holder.send_replace(Some("me".to_string()));
        self.leader.send_replace(true);
    }
}

impl Election for FakeElection {
    fn leader(&self) -> watch::Receiver<bool> {
        self.leader.subscribe()
    }
    fn holder(&self) -> watch::Receiver<Option<String>> {
        self.holder.subscribe()
    }
    fn set_eligible(&self, eligible: bool) {
        let _ = self.spy.record("eligible", Call::SetEligible(eligible));
    }
    async fn release_and_wait_new_holder(&self, max: Duration) -> Option<String> {
        let _ = self.spy.record("release", Call::Release);
        let mut holder = self.holder.subscribe();
        self.holder.send_replace(None);
        self.leader.send_replace(false);
        let wait = holder.wait_for(|h| h.as_deref().is_some_and(|h| h != "me"));
        match tokio::time::timeout(max, wait).await {
            Ok(Ok(h)) => h.clone(),
            _ => None,
        }
    }
    async fn shutdown(self) -> Result<(), ActuatorError> {
        self.spy
            .record("election-shutdown", Call::ElectionShutdown)
            .map(|_| {
                self.leader.send_replace(false);
            })
    }
}
