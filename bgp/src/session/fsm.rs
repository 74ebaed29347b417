//! The RFC 4271 §8 session state machine for one peer: explicit states, events and actions and
//! one pure [`Session::handle`]. Timers are events; no I/O, no clock, no randomness here (the
//! driver adds jitter to the durations it is asked to arm).
//!
//! ```text
//!            ManualStart (active)                 ManualStart (passive)
//!   Idle ─────────────────────────► Connect      Idle ─────────────────► Active
//!   Connect ──TcpConnectionFails──► Active ──ConnectRetryTimerExpires──► Connect
//!   Connect/Active ──TcpConnectionConfirmed / send OPEN──► OpenSent
//!   OpenSent ──BgpOpen ok / send KEEPALIVE──► OpenConfirm ──KeepAliveMsg──► Established
//!   any error: send NOTIFICATION (if connected), close, back to Active (retry after back-off)
//! ```

use std::time::Duration;

use super::negotiate::{Negotiated, negotiate};
use crate::wire::{Family, Notification, Open, RouteRefresh, UpdateSummary};

/// RFC 4271 §8.2.2 states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started or stopped.
    Idle,
    /// Waiting for our outgoing TCP connection.
    Connect,
    /// Waiting for the retry timer or an incoming connection.
    Active,
    /// OPEN sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for the peer's KEEPALIVE.
    OpenConfirm,
    /// Routes can be exchanged.
    Established,
}

/// The timers the FSM arms and the driver runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Outgoing connection attempt / retry back-off.
    ConnectRetry,
    /// Peer silence limit.
    Hold,
    /// Our keepalive interval.
    Keepalive,
}

/// Why a session left OpenSent/OpenConfirm/Established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// The peer was silent for the hold time; we sent NOTIFICATION 4.
    HoldTimerExpired,
    /// The peer sent a NOTIFICATION.
    NotificationReceived(Notification),
    /// We sent a NOTIFICATION (bad OPEN, malformed message, FSM error).
    NotificationSent(Notification),
    /// The TCP connection closed or failed.
    ConnectionClosed,
    /// An external event (BFD) forced the session down.
    ForcedDown(String),
    /// We lost a connection collision (RFC 4271 §6.8).
    CollisionLost,
    /// Stopped by the user.
    Stopped,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HoldTimerExpired => write!(f, "hold timer expired"),
            Self::NotificationReceived(n) => write!(f, "received NOTIFICATION {n}"),
            Self::NotificationSent(n) => write!(f, "sent NOTIFICATION {n}"),
            Self::ConnectionClosed => write!(f, "connection closed"),
            Self::ForcedDown(r) => write!(f, "forced down: {r}"),
            Self::CollisionLost => write!(f, "connection collision"),
            Self::Stopped => write!(f, "stopped"),
        }
    }
}

/// RFC 4271 §8.1 events (the subset a speaker that only originates routes needs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Start connecting (active) or waiting for the peer (passive).
    ManualStart,
    /// Stop; `notification` is sent first if connected (e.g. Cease with an RFC 9003 message).
    ManualStop(Option<Notification>),
    /// [`Timer::ConnectRetry`] fired.
    ConnectRetryTimerExpires,
    /// [`Timer::Hold`] fired.
    HoldTimerExpires,
    /// [`Timer::Keepalive`] fired.
    KeepaliveTimerExpires,
    /// A TCP connection to the peer is up (ours or accepted).
    TcpConnectionConfirmed,
    /// Our connection attempt failed, or the connection closed.
    TcpConnectionFails,
    /// The peer's OPEN.
    BgpOpen(Open),
    /// A KEEPALIVE.
    KeepAliveMsg,
    /// An UPDATE that RFC 7606 lets the session survive.
    UpdateMsg(UpdateSummary),
    /// The peer's NOTIFICATION.
    NotifMsg(Notification),
    /// A ROUTE-REFRESH request.
    RouteRefreshMsg(RouteRefresh),
    /// A received message was malformed: send this NOTIFICATION and reset.
    MessageError(Notification),
    /// The set of routes to announce changed.
    RoutesChanged,
    /// An external detector (BFD) says the peer is gone: tear down now, reconnect later.
    ForceDown(String),
    /// The driver resolved a collision against the current connection (RFC 4271 §6.8).
    CollisionLost,
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open an outgoing TCP connection (abandoning any attempt still in flight).
    Connect,
    /// Send this OPEN.
    SendOpen(Open),
    /// Send a KEEPALIVE.
    SendKeepalive,
    /// Send this NOTIFICATION.
    SendNotification(Notification),
    /// Send every route of the desired set, then End-of-RIB (session just came up).
    SendFullTable,
    /// Send the difference between the desired set and what this peer has.
    SendRouteChanges,
    /// Re-send every route this peer has (answer to ROUTE-REFRESH), no End-of-RIB.
    ResendRoutes(Family),
    /// Withdraw every route this peer has (before an administrative stop).
    WithdrawAll,
    /// Arm (or re-arm) a timer.
    StartTimer(Timer, Duration),
    /// Disarm a timer.
    StopTimer(Timer),
    /// Close the TCP connection.
    CloseConnection,
    /// The session is Established with these parameters.
    SessionEstablished(Negotiated),
    /// A connected session ended; `was_established` tells a flap from a failed handshake.
    SessionDown {
        /// Why.
        reason: DownReason,
        /// The session had reached Established.
        was_established: bool,
    },
}

/// Static per-session settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our OPEN (ASN, hold time, router id, capabilities).
    pub open: Open,
    /// The ASN the peer must present.
    pub peer_asn: u32,
    /// Wait for the peer to connect instead of connecting.
    pub passive: bool,
}

/// RFC 4271 §8: hold timer value while waiting for the peer's OPEN (the suggested 4 minutes).
pub const LARGE_HOLD_TIME: Duration = Duration::from_secs(240);
/// Upper bound of the connect retry back-off.
pub const MAX_CONNECT_RETRY: Duration = Duration::from_secs(30);

/// Connect retry delay after `failures` consecutive failures: 1, 2, 4, ... seconds, at most 30.
pub fn connect_backoff(failures: u32) -> Duration {
    let secs = 1u64.checked_shl(failures.min(16)).unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(MAX_CONNECT_RETRY)
}

/// One peer's session state machine.
#[derive(Clone, Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    failures: u32,
    negotiated: Option<Negotiated>,
}

impl Session {
    /// A session in Idle.
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            failures: 0,
            negotiated: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// What was negotiated with the peer (from OpenConfirm on).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Feeds one event; returns the actions to perform, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        use Event as E;
        use State as S;
        match (self.state, event) {
            (_, E::ManualStop(n)) => self.stop(n),
            (S::Idle, E::ManualStart) => self.start(),
            (S::Idle, _) => vec![],

            (S::Connect | S::Active, E::TcpConnectionConfirmed) => {
                self.state = S::OpenSent;
                vec![
                    Action::StopTimer(Timer::ConnectRetry),
                    Action::SendOpen(self.config.open.clone()),
                    Action::StartTimer(Timer::Hold, LARGE_HOLD_TIME),
                ]
            }
            (S::Connect, E::TcpConnectionFails) => {
                self.failures = self.failures.saturating_add(1);
                self.state = S::Active;
                vec![Action::StartTimer(
                    Timer::ConnectRetry,
                    connect_backoff(self.failures),
                )]
            }
            (S::Connect | S::Active, E::ConnectRetryTimerExpires) if !self.config.passive => {
                if self.state == S::Connect {
                    // The attempt is still hanging (SYN unanswered): count it as a failure.
                    self.failures = self.failures.saturating_add(1);
                }
                self.state = S::Connect;
                vec![
                    Action::Connect,
                    Action::StartTimer(Timer::ConnectRetry, connect_backoff(self.failures)),
                ]
            }
            (S::Connect | S::Active, _) => vec![],

            (S::OpenSent, E::BgpOpen(peer)) => {
                match negotiate(&self.config.open, &peer, self.config.peer_asn) {
                    Err(n) => self.reset(DownReason::NotificationSent(n.clone()), Some(n)),
                    Ok(neg) => {
                        self.state = S::OpenConfirm;
                        let mut a = vec![Action::SendKeepalive];
                        a.extend(self.arm_session_timers(&neg));
                        self.negotiated = Some(neg);
                        a
                    }
                }
            }
            (S::OpenConfirm, E::KeepAliveMsg) => {
                self.state = S::Established;
                self.failures = 0;
                let neg = self.negotiated.clone();
                let mut a = self.restart_hold();
                if let Some(neg) = neg {
                    a.push(Action::SessionEstablished(neg));
                }
                a.push(Action::SendFullTable);
                a
            }
            (S::Established, E::KeepAliveMsg | E::UpdateMsg(_)) => self.restart_hold(),
            (S::Established, E::RouteRefreshMsg(rr)) => {
                let mut a = self.restart_hold();
                let fam = rr.family();
                if let (Some(f), Some(neg)) = (fam, &self.negotiated)
                    && neg.has_family(f)
                {
                    a.push(Action::ResendRoutes(f));
                }
                a
            }
            (S::Established, E::RoutesChanged) => vec![Action::SendRouteChanges],
            (S::OpenConfirm | S::Established, E::KeepaliveTimerExpires) => {
                let mut a = vec![Action::SendKeepalive];
                if let Some(neg) = &self.negotiated
                    && neg.keepalive > 0
                {
                    a.push(Action::StartTimer(
                        Timer::Keepalive,
                        Duration::from_secs(u64::from(neg.keepalive)),
                    ));
                }
                a
            }
            (S::OpenSent | S::OpenConfirm | S::Established, E::HoldTimerExpires) => {
                let n = Notification::new(Notification::HOLD_TIMER_EXPIRED, 0);
                self.reset(DownReason::HoldTimerExpired, Some(n))
            }
            (S::OpenSent | S::OpenConfirm | S::Established, E::TcpConnectionFails) => {
                self.reset(DownReason::ConnectionClosed, None)
            }
            (S::OpenSent | S::OpenConfirm | S::Established, E::NotifMsg(n)) => {
                self.reset(DownReason::NotificationReceived(n), None)
            }
            (S::OpenSent | S::OpenConfirm | S::Established, E::MessageError(n)) => {
                self.reset(DownReason::NotificationSent(n.clone()), Some(n))
            }
            (S::OpenSent | S::OpenConfirm | S::Established, E::ForceDown(why)) => {
                let n = Notification::new(Notification::CEASE, Notification::CEASE_BFD_DOWN);
                self.reset(DownReason::ForcedDown(why), Some(n))
            }
            (S::OpenSent | S::OpenConfirm, E::CollisionLost) => {
                let n = Notification::new(Notification::CEASE, Notification::CEASE_COLLISION);
                self.reset(DownReason::CollisionLost, Some(n))
            }
            // Events that need no reaction in these states.
            (
                S::OpenSent | S::OpenConfirm | S::Established,
                E::ManualStart
                | E::ConnectRetryTimerExpires
                | E::TcpConnectionConfirmed
                | E::RoutesChanged
                | E::CollisionLost,
            )
            | (S::OpenSent, E::KeepaliveTimerExpires) => vec![],
            // Anything else is a message the state does not allow: RFC 6608 FSM error subcodes
            // 1 (OpenSent), 2 (OpenConfirm), 3 (Established).
            (s, _) => {
                let sub = match s {
                    S::OpenSent => 1,
                    S::OpenConfirm => 2,
                    _ => 3,
                };
                let n = Notification::new(Notification::FSM, sub);
                self.reset(DownReason::NotificationSent(n.clone()), Some(n))
            }
        }
    }

    fn start(&mut self) -> Vec<Action> {
        self.failures = 0;
        if self.config.passive {
            self.state = State::Active;
            vec![]
        } else {
            // First attempt at once; the retry timer doubles as the attempt's timeout.
            self.state = State::Connect;
            vec![
                Action::Connect,
                Action::StartTimer(Timer::ConnectRetry, connect_backoff(0)),
            ]
        }
    }

    fn stop(&mut self, notification: Option<Notification>) -> Vec<Action> {
        let was = self.state;
        self.state = State::Idle;
        self.negotiated = None;
        let mut a = Vec::new();
        if was == State::Established {
            a.push(Action::WithdrawAll);
        }
        if matches!(
            was,
            State::OpenSent | State::OpenConfirm | State::Established
        ) && let Some(n) = notification
        {
            a.push(Action::SendNotification(n));
        }
        a.extend([
            Action::CloseConnection,
            Action::StopTimer(Timer::ConnectRetry),
            Action::StopTimer(Timer::Hold),
            Action::StopTimer(Timer::Keepalive),
        ]);
        if matches!(
            was,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            a.push(Action::SessionDown {
                reason: DownReason::Stopped,
                was_established: was == State::Established,
            });
        }
        a
    }

    /// Leaves a connected state: notify, close, report, and wait for the retry timer.
    fn reset(&mut self, reason: DownReason, notification: Option<Notification>) -> Vec<Action> {
        let was_established = self.state == State::Established;
        self.negotiated = None;
        if !was_established {
            self.failures = self.failures.saturating_add(1);
        }
        let mut a = Vec::new();
        if let Some(n) = notification {
            a.push(Action::SendNotification(n));
        }
        a.extend([
            Action::CloseConnection,
            Action::StopTimer(Timer::Hold),
            Action::StopTimer(Timer::Keepalive),
            Action::SessionDown {
                reason,
                was_established,
            },
        ]);
        self.state = State::Active;
        if !self.config.passive {
            a.push(Action::StartTimer(
                Timer::ConnectRetry,
                connect_backoff(self.failures),
            ));
        }
        a
    }

    fn arm_session_timers(&self, neg: &Negotiated) -> Vec<Action> {
        if neg.hold_time == 0 {
            return vec![
                Action::StopTimer(Timer::Hold),
                Action::StopTimer(Timer::Keepalive),
            ];
        }
        vec![
            Action::StartTimer(Timer::Hold, Duration::from_secs(u64::from(neg.hold_time))),
            Action::StartTimer(
                Timer::Keepalive,
                Duration::from_secs(u64::from(neg.keepalive)),
            ),
        ]
    }

    fn restart_hold(&self) -> Vec<Action> {
        match &self.negotiated {
            Some(neg) if neg.hold_time > 0 => vec![Action::StartTimer(
                Timer::Hold,
                Duration::from_secs(u64::from(neg.hold_time)),
            )],
            _ => vec![],
        }
    }
}
