//! Pure decision logic of the Lease election: given what we observed of the Lease and our
//! monotonic clock, what to do next. No I/O and no wall clock: the driver (`super`) feeds inputs
//! (timer ticks, observations from watch/GET, results of our writes, commands) and carries out the
//! actions (send one request, cancel it, publish leader/holder).
//!
//! Rules (client-go's leaderelection, plus two improvements):
//! - acquire = create (AlreadyExists → lost) or a PUT carrying the resourceVersion we read, of a
//!   Lease that is released (empty holder), ours, or expired; 409 → re-read, we did not win;
//! - expired = not changed for its leaseDurationSeconds since WE saw it change (monotonic clock);
//!   the holder's renewTime is never compared with our clock;
//! - the leader renews every retry period; without a successful renew for renew deadline (counted
//!   from when that renew was *sent*, which precedes its commit) it stops leading at once;
//! - release = version-checked PUT with an empty holder and leaseDurationSeconds 1, sent only after
//!   leader=false was published;
//! - improvement 1: observations from the watch are acted on at once;
//! - improvement 2: the acquire attempt is scheduled at the instant the observed Lease expires.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;

use super::record::lease_duration;
pub use super::record::{Timing, Write, build_lease, holder_of, is_older};

/// A request for the driver.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// GET the Lease.
    Get,
    /// A write.
    Write(Write),
}

/// Why a request failed, as far as the decision cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 409 Conflict on PUT: someone wrote first.
    Conflict,
    /// 409 AlreadyExists on POST: someone created it first.
    AlreadyExists,
    /// 404 on PUT: it was deleted.
    NotFound,
    /// Anything else (unreachable, 5xx, 401, timeout); the text goes to `last_error`.
    Other(String),
}

/// Something that happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A timer fired (see [`Election::next_wake`]).
    Tick,
    /// The watch saw the Lease (ADDED/MODIFIED).
    Watched(Lease),
    /// The watch saw it deleted (resourceVersion of the deletion).
    WatchedDeleted(Option<String>),
    /// Our GET answered: Some(lease), or None for 404.
    GetDone(Result<Option<Lease>, Failure>),
    /// Our write answered with the stored object.
    WriteDone(Result<Lease, Failure>),
    /// Health allows (true) or forbids (false) leading.
    SetEligible(bool),
    /// Release if held, then finish.
    Shutdown,
}

/// Something the driver must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start this request (none is in flight).
    Send(Request),
    /// Abandon the request in flight (its answer must not be fed back).
    Cancel,
    /// Publish leader yes/no; the text says why (for the log).
    SetLeader(bool, String),
    /// Publish the current holder.
    SetHolder(Option<String>),
    /// Record an error for `last_error`.
    Error(String),
    /// Shutdown is complete.
    Finished,
}

/// Our leadership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not leading; contending when eligible.
    Standby,
    /// Leading; `renewed_at` is when the last successful write was sent, `attempted_at` when the
    /// last renew was sent.
    Leader {
        /// Send time of the last write that succeeded.
        renewed_at: Instant,
        /// Send time of the last renew attempt.
        attempted_at: Instant,
    },
    /// Shutdown finished.
    Finished,
}

/// What we know of the Lease.
#[derive(Clone, Debug, PartialEq)]
pub enum Observed {
    /// Nothing yet, or our knowledge was invalidated by a conflict.
    Unknown,
    /// It does not exist.
    Absent,
    /// It exists; `changed_at` is when we saw its spec change (our clock).
    Present {
        /// The object as last seen (carries the resourceVersion for the next PUT).
        lease: Box<Lease>,
        /// When its spec last changed, on our monotonic clock.
        changed_at: Instant,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InFlight {
    Get,
    Create,
    Acquire,
    Renew,
    Release,
}

/// The election state machine of one contender.
#[derive(Debug)]
pub struct Election {
    identity: String,
    timing: Timing,
    role: Role,
    observed: Observed,
    last_rv: Option<String>,
    eligible: bool,
    shutting_down: bool,
    release_attempts: u32,
    in_flight: Option<(InFlight, Instant)>,
    failures: u32,
    not_before: Instant,
    next_poll: Instant,
    holder: Option<String>,
}

impl Election {
    /// A standby that knows nothing yet.
    pub fn new(identity: impl Into<String>, timing: Timing, now: Instant) -> Self {
        Self {
            identity: identity.into(),
            timing,
            role: Role::Standby,
            observed: Observed::Unknown,
            last_rv: None,
            eligible: true,
            shutting_down: false,
            release_attempts: 0,
            in_flight: None,
            failures: 0,
            not_before: now,
            next_poll: now,
            holder: None,
        }
    }

    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Current knowledge of the Lease.
    pub fn observed(&self) -> &Observed {
        &self.observed
    }

    /// Feeds one input; returns what to do, in order.
    pub fn step(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Tick => {}
            Input::Watched(lease) => self.observe(now, Some(lease), None, &mut out),
            Input::WatchedDeleted(rv) => self.observe(now, None, rv, &mut out),
            Input::GetDone(result) => {
                if self
                    .in_flight
                    .take_if(|(k, _)| *k == InFlight::Get)
                    .is_some()
                {
                    match result {
                        Ok(lease) => self.observe(now, lease, None, &mut out),
                        Err(f) => self.failed(now, f, &mut out),
                    }
                }
            }
            Input::WriteDone(result) => {
                if let Some((kind, sent_at)) = self.in_flight.take() {
                    self.write_done(now, kind, sent_at, result, &mut out);
                }
            }
            Input::SetEligible(e) => {
                if e && !self.eligible {
                    self.release_attempts = 0;
                }
                self.eligible = e;
            }
            Input::Shutdown => {
                self.shutting_down = true;
                // A pending GET only delays the release; a pending write must be waited for
                // (bounded by the request timeout) to know whether the Lease became ours.
                if self
                    .in_flight
                    .take_if(|(k, _)| *k == InFlight::Get)
                    .is_some()
                {
                    out.push(Action::Cancel);
                }
            }
        }
        self.decide(now, &mut out);
        out
    }

    /// When the driver must call `step(Tick)` next at the latest.
    pub fn next_wake(&self, now: Instant) -> Option<Instant> {
        let mut wake: Vec<Instant> = Vec::new();
        if let Role::Leader {
            renewed_at,
            attempted_at,
        } = self.role
        {
            wake.push(renewed_at + self.timing.renew_deadline);
            if self.in_flight.is_none() {
                wake.push(attempted_at + self.timing.retry_period);
            }
        }
        match self.in_flight {
            Some((_, sent_at)) => wake.push(sent_at + self.timing.request_timeout()),
            // A leader's only timers are above; its stale poll time must not wake it.
            None if self.role != Role::Standby => {}
            None => {
                wake.push(self.next_poll.max(self.not_before));
                if let Some(expiry) = self.expiry() {
                    wake.push(expiry.max(self.not_before));
                }
            }
        }
        // Never in the past: a wake that decides nothing must not spin.
        wake.into_iter()
            .min()
            .map(|w| w.max(now + Duration::from_millis(1)))
    }

    /// When the observed Lease, held by someone else, expires on our clock.
    fn expiry(&self) -> Option<Instant> {
        match &self.observed {
            Observed::Present { lease, changed_at } if !self.is_ours_or_free(lease) => {
                Some(*changed_at + lease_duration(lease, self.timing.lease_duration))
            }
            _ => None,
        }
    }

    fn is_ours_or_free(&self, lease: &Lease) -> bool {
        holder_of(lease).is_none_or(|h| h == self.identity)
    }

    fn observe(
        &mut self,
        now: Instant,
        lease: Option<Lease>,
        deleted_rv: Option<String>,
        out: &mut Vec<Action>,
    ) {
        let rv = lease
            .as_ref()
            .and_then(|l| l.metadata.resource_version.clone())
            .or(deleted_rv);
        // An older view never overrides a newer one; the same view again is news only when our
        // knowledge was invalidated (after a conflict), else a re-read would be ignored forever.
        if let (Some(new), Some(old)) = (&rv, &self.last_rv)
            && (is_older(new, old) || (new == old && self.observed != Observed::Unknown))
        {
            return;
        }
        // Any answer proves the API reachable: stop backing off.
        self.failures = 0;
        self.not_before = now;
        if rv.is_some() {
            self.last_rv = rv;
        }
        self.observed = match lease {
            None => Observed::Absent,
            Some(lease) => {
                let changed_at = match &self.observed {
                    Observed::Present {
                        lease: old,
                        changed_at,
                    } if old.spec == lease.spec => *changed_at,
                    _ => now,
                };
                Observed::Present {
                    lease: Box::new(lease),
                    changed_at,
                }
            }
        };
        let holder = match &self.observed {
            Observed::Present { lease, .. } => holder_of(lease).map(str::to_string),
            _ => None,
        };
        if holder != self.holder {
            self.holder = holder.clone();
            out.push(Action::SetHolder(holder.clone()));
        }
        if matches!(self.role, Role::Leader { .. }) && holder.as_deref() != Some(&self.identity) {
            let why = match &holder {
                Some(h) => format!("the Lease is now held by {h}"),
                None if self.observed == Observed::Absent => "the Lease was deleted".to_string(),
                None => "the Lease was released".to_string(),
            };
            self.stop_leading(why, out);
        }
    }

    fn stop_leading(&mut self, why: String, out: &mut Vec<Action>) {
        self.role = Role::Standby;
        out.push(Action::SetLeader(false, why));
        if let Some((InFlight::Renew, _)) = self.in_flight {
            self.in_flight = None;
            out.push(Action::Cancel);
        }
    }

    fn failed(&mut self, now: Instant, failure: Failure, out: &mut Vec<Action>) {
        match failure {
            Failure::Conflict | Failure::AlreadyExists | Failure::NotFound => {
                // Our knowledge is stale: re-read at once.
                self.observed = Observed::Unknown;
                self.next_poll = now;
            }
            Failure::Other(e) => {
                self.failures += 1;
                self.not_before = now + self.timing.backoff(self.failures);
                out.push(Action::Error(e));
            }
        }
    }

    fn write_done(
        &mut self,
        now: Instant,
        kind: InFlight,
        sent_at: Instant,
        result: Result<Lease, Failure>,
        out: &mut Vec<Action>,
    ) {
        let lease = match result {
            Ok(lease) => lease,
            Err(f) => return self.failed(now, f, out),
        };
        self.observe(now, Some(lease.clone()), None, out);
        let ours = holder_of(&lease) == Some(self.identity.as_str());
        if kind == InFlight::Release || !ours {
            return;
        }
        // Leading is safe until sent_at + renew deadline (the commit came after sent_at, others
        // wait a full lease duration from when they see it). An answer later than that is too late.
        if now >= sent_at + self.timing.renew_deadline || self.shutting_down || !self.eligible {
            return;
        }
        match self.role {
            Role::Leader { attempted_at, .. } => {
                self.role = Role::Leader {
                    renewed_at: sent_at,
                    attempted_at,
                }
            }
            _ => {
                self.role = Role::Leader {
                    renewed_at: sent_at,
                    attempted_at: sent_at,
                };
                self.release_attempts = 0;
                let how = if kind == InFlight::Create {
                    "created the Lease"
                } else {
                    "acquired the Lease"
                };
                out.push(Action::SetLeader(true, how.to_string()));
            }
        }
    }

    fn send(&mut self, now: Instant, kind: InFlight, req: Request, out: &mut Vec<Action>) {
        self.in_flight = Some((kind, now));
        if let Role::Leader { renewed_at, .. } = self.role
            && kind == InFlight::Renew
        {
            self.role = Role::Leader {
                renewed_at,
                attempted_at: now,
            };
        }
        if kind == InFlight::Get {
            self.next_poll = now + self.timing.retry_period;
        }
        out.push(Action::Send(req));
    }

    fn decide(&mut self, now: Instant, out: &mut Vec<Action>) {
        // Fencing first: nothing else may delay it.
        if let Role::Leader { renewed_at, .. } = self.role
            && now >= renewed_at + self.timing.renew_deadline
        {
            self.stop_leading(
                format!(
                    "no successful renew for the renew deadline ({:?})",
                    self.timing.renew_deadline
                ),
                out,
            );
        }
        // Health failure and shutdown stop leadership at once too, cancelling a pending renew.
        if (self.shutting_down || !self.eligible) && matches!(self.role, Role::Leader { .. }) {
            let why = if self.shutting_down {
                "shutting down: releasing the Lease"
            } else {
                "not eligible (health): releasing the Lease"
            };
            self.stop_leading(why.to_string(), out);
        }
        if let Some((_, sent_at)) = self.in_flight {
            if now < sent_at + self.timing.request_timeout() {
                return;
            }
            self.in_flight = None;
            out.push(Action::Cancel);
            self.failed(now, Failure::Other("request timed out".into()), out);
        }
        if self.role == Role::Finished {
            return;
        }
        if self.shutting_down || !self.eligible {
            return self.decide_not_contending(now, out);
        }
        if let Role::Leader { attempted_at, .. } = self.role {
            if now < attempted_at + self.timing.retry_period {
                return;
            }
            return match &self.observed {
                Observed::Present { lease, .. } => {
                    let w = Write::Renew(lease.clone());
                    self.send(now, InFlight::Renew, Request::Write(w), out)
                }
                _ => self.send(now, InFlight::Get, Request::Get, out),
            };
        }
        if now < self.not_before {
            return;
        }
        match &self.observed {
            Observed::Unknown => self.send(now, InFlight::Get, Request::Get, out),
            Observed::Absent => {
                self.send(now, InFlight::Create, Request::Write(Write::Create), out)
            }
            Observed::Present { lease, changed_at } => {
                let expired =
                    now >= *changed_at + lease_duration(lease, self.timing.lease_duration);
                if self.is_ours_or_free(lease) || expired {
                    let w = Write::Acquire(lease.clone());
                    self.send(now, InFlight::Acquire, Request::Write(w), out);
                } else if now >= self.next_poll {
                    self.send(now, InFlight::Get, Request::Get, out);
                }
            }
        }
    }

    fn decide_not_contending(&mut self, now: Instant, out: &mut Vec<Action>) {
        let held = match &self.observed {
            Observed::Present { lease, .. } => {
                (holder_of(lease) == Some(self.identity.as_str())).then(|| lease.clone())
            }
            _ => None,
        };
        let may_release = self.release_attempts < 3 && now >= self.not_before;
        match (held, &self.observed) {
            (Some(lease), _) if may_release => {
                self.release_attempts += 1;
                self.send(
                    now,
                    InFlight::Release,
                    Request::Write(Write::Release(lease)),
                    out,
                );
            }
            // Still ours but backing off after a failed release: try again shortly.
            (Some(_), _) if self.shutting_down && self.release_attempts < 3 => {}
            (None, Observed::Unknown)
                if self.shutting_down && self.release_attempts > 0 && may_release =>
            {
                // A conflict on release: re-read, and release again if still ours.
                self.release_attempts += 1;
                self.send(now, InFlight::Get, Request::Get, out);
            }
            _ if self.shutting_down => {
                self.role = Role::Finished;
                out.push(Action::Finished);
            }
            _ if now >= self.next_poll && now >= self.not_before => {
                self.send(now, InFlight::Get, Request::Get, out)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
