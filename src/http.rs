//! The HTTP surface (`--http-listen`, default 127.0.0.1:2112): `/metrics`, `/healthz`, `/readyz`
//! and `/status`, and the [`StatusReport`] contract that `/status` serves and `cpvip status`
//! reads.
//!
//! The handlers only read: a [`StatusSource`] assembles the report from the daemon, the health
//! monitor and the BGP speaker at request time, so nothing here can disturb the decision.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::daemon::lifecycle::DaemonStatus;
use crate::daemon::{DaemonSettings, Mode, Phase};
use crate::health::CheckSnapshot;
use crate::metrics::Metrics;

/// Everything `/status` shows. Field names are the JSON contract of `cpvip status --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// cpvip version.
    pub version: String,
    /// `leader` or `anycast`.
    pub mode: Mode,
    /// This node's name.
    pub node: String,
    /// `running`, `handing-over` or `shutting-down`.
    pub phase: String,
    /// This node holds the Lease.
    pub leader: bool,
    /// The Lease's holder as last seen (leader mode).
    pub holder: Option<String>,
    /// Lease holder changes seen by this process.
    pub lease_transitions: u64,
    /// Aggregate health verdict; `null` until the first one.
    pub healthy: Option<bool>,
    /// The decision: this node should serve.
    pub serving: bool,
    /// Each VIP and whether it is bound on this host.
    pub vips: Vec<VipStatus>,
    /// The prefixes announced to the peers.
    pub announced: Vec<IpAddr>,
    /// Each health check.
    pub checks: Vec<CheckSnapshot>,
    /// Each BGP peer.
    pub peers: Vec<PeerStatus>,
    /// The last actuator error (bind, announce, ...), cleared by the next success.
    pub last_error: Option<String>,
}

/// One VIP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipStatus {
    /// The address.
    pub address: IpAddr,
    /// Present on the interface (as far as the daemon knows).
    pub bound: bool,
}

/// One BGP peer, as the speaker reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Peer address.
    pub address: String,
    /// Peer ASN.
    pub remote_as: u32,
    /// FSM state name: Idle, Connect, Active, OpenSent, OpenConfirm, Established.
    pub state: String,
    /// Seconds since the session was established (`None` when it is not).
    pub uptime_secs: Option<u64>,
    /// Times the session left Established.
    pub flaps: u64,
    /// UPDATE messages received.
    pub updates_received: u64,
    /// Prefixes announced to this peer.
    pub prefixes_sent: u64,
    /// Prefixes received (validated, then dropped) from this peer.
    pub prefixes_received: u64,
    /// BFD session state (`up`, `down`, `init`, `admin-down`); `None` without BFD.
    pub bfd: Option<String>,
    /// The last error (NOTIFICATION sent/received, connect failure, ...).
    pub last_error: Option<String>,
}

impl PeerStatus {
    /// The session is Established.
    pub fn established(&self) -> bool {
        self.state == "Established"
    }
}

impl StatusReport {
    /// Builds the report from the daemon's parts; `peers` come from the BGP speaker.
    pub fn assemble(
        settings: &DaemonSettings,
        daemon: &DaemonStatus,
        checks: Vec<CheckSnapshot>,
        peers: Vec<PeerStatus>,
    ) -> Self {
        let applied = daemon.reconcile.applied;
        let bound = applied.bound == Some(true);
        Self {
            version: env!("CARGO_PKG_VERSION").to_string(),
            mode: settings.mode,
            node: settings.node_name.clone(),
            phase: match daemon.phase {
                Phase::Running => "running",
                Phase::HandingOver => "handing-over",
                Phase::ShuttingDown => "shutting-down",
            }
            .to_string(),
            leader: daemon.leader,
            holder: daemon.holder.clone(),
            lease_transitions: daemon.lease_transitions,
            healthy: daemon.healthy,
            serving: daemon.desired.serve,
            vips: settings
                .vips
                .iter()
                .map(|&address| VipStatus { address, bound })
                .collect(),
            announced: if applied.announced {
                settings.vips.clone()
            } else {
                Vec::new()
            },
            checks,
            peers,
            last_error: daemon.reconcile.last_error.clone(),
        }
    }
}

/// Where the handlers get their data.
pub trait StatusSource: Send + Sync + 'static {
    /// The current report.
    fn status(&self) -> StatusReport;
    /// `Ok` when ready to serve traffic (configuration loaded, BGP speaker running); otherwise
    /// why not.
    fn readiness(&self) -> Result<(), String>;
}

/// A [`StatusSource`] over the daemon's and the health monitor's `watch` values and two
/// closures into the BGP speaker.
pub struct WatchStatusSource {
    /// The daemon's settings.
    pub settings: DaemonSettings,
    /// From [`crate::daemon::lifecycle::Daemon::status`].
    pub daemon: watch::Receiver<DaemonStatus>,
    /// From [`crate::health::HealthMonitor::checks`].
    pub checks: watch::Receiver<Vec<CheckSnapshot>>,
    /// The speaker's peers (`handle.peers()` mapped to [`PeerStatus`]).
    pub peers: Box<dyn Fn() -> Vec<PeerStatus> + Send + Sync>,
    /// The speaker's task is alive.
    pub speaker_running: Box<dyn Fn() -> bool + Send + Sync>,
}

impl StatusSource for WatchStatusSource {
    fn status(&self) -> StatusReport {
        let daemon = self.daemon.borrow().clone();
        let checks = self.checks.borrow().clone();
        StatusReport::assemble(&self.settings, &daemon, checks, (self.peers)())
    }

    fn readiness(&self) -> Result<(), String> {
        if (self.speaker_running)() {
            Ok(())
        } else {
            Err("BGP speaker not running".to_string())
        }
    }
}

#[derive(Clone)]
struct AppState {
    source: Arc<dyn StatusSource>,
    metrics: Arc<Metrics>,
}

/// The routes. The source exists only once the configuration is loaded, so `/readyz` covers
/// "configuration loaded" by construction.
pub fn router(source: Arc<dyn StatusSource>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .with_state(AppState { source, metrics })
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    state.metrics.observe(&state.source.status());
    match state.metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response(),
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.source.readiness() {
        Ok(()) => "ok\n".into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn status(State(state): State<AppState>) -> Response {
    match serde_json::to_string_pretty(&state.source.status()) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response(),
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
