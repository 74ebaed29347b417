//! The daemon's one decision and its wiring: does this node serve the VIP, and carrying that out.
//!
//! - [`decision`] is the pure function `serve = healthy && (mode == anycast || leader)` plus the
//!   shutdown/hand-over phases;
//! - [`reconcile`] moves the host (VIP bound?) and the BGP speaker (routes announced?) towards the
//!   decision one ordered, idempotent step at a time, behind the [`reconcile::VipActuator`] and
//!   [`reconcile::RouteActuator`] traits;
//! - [`lifecycle`] is the run loop: it watches the inputs (health verdict, leadership), applies the
//!   decision, and on SIGTERM/SIGINT runs the bounded shutdown (make-before-break hand-over for a
//!   leader).
//!
//! The daemon does not know the concrete BGP speaker, VIP manager or Lease election: the binary
//! adapts them to these traits, so every ordering rule here is tested with spies.

pub mod adapters;
pub mod decision;
pub mod from_config;
pub mod lifecycle;
pub mod reconcile;
pub mod service;
pub mod start;

use std::net::IpAddr;
use std::time::Duration;

pub use decision::{Desired, Inputs, Mode, Phase, decide};

/// The settings the daemon needs, mapped by the binary from the validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonSettings {
    /// One elected announcer (`Leader`) or every healthy node (`Anycast`).
    pub mode: Mode,
    /// This node's identity (Lease holder identity, logs, `/status`).
    pub node_name: String,
    /// The VIPs served as one unit: announced and bound together.
    pub vips: Vec<IpAddr>,
    /// Send gratuitous ARP / unsolicited NA after binding (takeover).
    pub garp: bool,
    /// On a leader's shutdown, give the VIP up before releasing the Lease instead of
    /// make-before-break: with `--garp` on a shared L2 segment two ARP owners would fight.
    pub unbind_before_handover: bool,
    /// Time between withdrawing the routes and unbinding the VIP, so that packets routed before
    /// the withdrawal reached every router still find the address.
    pub drain: Duration,
    /// How long a leader keeps serving after the Lease shows a new holder (make-before-break).
    pub handover_grace: Duration,
    /// Upper bound of the whole hand-over (release → new holder → grace).
    pub handover_max: Duration,
    /// Upper bound of the shutdown steps after the hand-over (withdraw, Cease, release, unbind).
    pub shutdown_budget: Duration,
    /// First delay before retrying a failed actuator step; doubled up to `retry_max`.
    pub retry_initial: Duration,
    /// Largest retry delay.
    pub retry_max: Duration,
}

impl DaemonSettings {
    /// Settings with the defaults of DESIGN.md for everything but the identity and the VIPs.
    ///
    /// `garp` and `unbind_before_handover` follow `--garp` (default: on when the interface is not
    /// `lo`); the binary sets both from the configuration.
    pub fn new(mode: Mode, node_name: impl Into<String>, vips: Vec<IpAddr>) -> Self {
        Self {
            mode,
            node_name: node_name.into(),
            vips,
            garp: false,
            unbind_before_handover: false,
            drain: Duration::from_millis(200),
            handover_grace: Duration::from_millis(300),
            handover_max: Duration::from_secs(2),
            shutdown_budget: Duration::from_secs(1),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod testkit;
