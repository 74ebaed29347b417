//! The whole of `cpvip run` below the command line: health monitor, decision loop and HTTP
//! surface composed around the three adapters (VIP, routes, election) the binary provides.
//!
//! The binary maps its validated configuration to a [`Service`], binds the HTTP listener
//! (so that "address in use" is reported before anything else starts), forwards signals with
//! [`super::lifecycle::forward_signals`] and exits with the code [`run_service`] returns.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::DaemonSettings;
use super::lifecycle::{Daemon, Election};
use super::reconcile::{RouteActuator, VipActuator};
use crate::health::{Check, HealthMonitor, HealthSettings};
use crate::http::{PeerStatus, WatchStatusSource, router, serve};
use crate::metrics::Metrics;

/// How long the HTTP server may take to finish its requests after the daemon is done.
const HTTP_STOP: Duration = Duration::from_millis(200);

/// Everything `cpvip run` needs, already validated and adapted.
pub struct Service<V, R, E> {
    /// The daemon's settings.
    pub settings: DaemonSettings,
    /// The health checks (empty for `--no-health-check`).
    pub checks: Vec<Check>,
    /// Interval, timeout, rise, fall.
    pub health: HealthSettings,
    /// The VIP manager adapter.
    pub vip: V,
    /// The BGP speaker adapter.
    pub routes: R,
    /// The election adapter ([`super::lifecycle::NoElection`] in anycast mode).
    pub election: E,
    /// The bound `--http-listen` socket.
    pub http: TcpListener,
    /// The speaker's peers, for `/status` and `/metrics`.
    pub peers: Box<dyn Fn() -> Vec<PeerStatus> + Send + Sync>,
    /// The speaker is running, for `/readyz`.
    pub speaker_running: Box<dyn Fn() -> bool + Send + Sync>,
}

/// Runs until the shutdown completes; returns the process exit code
/// ([`super::lifecycle::EXIT_OK`], `EXIT_FAILURE` or `EXIT_FORCED`).
pub async fn run_service<V, R, E>(service: Service<V, R, E>, signals: mpsc::Receiver<()>) -> i32
where
    V: VipActuator + 'static,
    R: RouteActuator + 'static,
    E: Election + 'static,
{
    let monitor = HealthMonitor::spawn(service.checks, service.health);
    let daemon = Daemon::new(
        service.settings.clone(),
        service.vip,
        service.routes,
        service.election,
        monitor.verdict(),
    );
    let source = WatchStatusSource {
        settings: service.settings,
        daemon: daemon.status(),
        checks: monitor.checks(),
        peers: service.peers,
        speaker_running: service.speaker_running,
    };
    let app = router(
        Arc::new(source),
        Arc::new(Metrics::new(env!("CARGO_PKG_VERSION"))),
    );
    let (stop_http, http_stopped) = oneshot::channel::<()>();
    let mut http = tokio::spawn(serve(service.http, app, async {
        let _ = http_stopped.await;
    }));
    let code = daemon.run(signals).await;
    drop(monitor);
    let _ = stop_http.send(());
    // A client holding a keep-alive connection must not hold up the exit.
    if tokio::time::timeout(HTTP_STOP, &mut http).await.is_err() {
        http.abort();
    }
    code
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
