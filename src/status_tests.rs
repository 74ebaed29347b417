//! The table on a sample report, and the client against a live `/status` server.

use std::sync::Arc;

use tokio::net::TcpListener;

use super::*;
use crate::http::{StatusSource, router, serve};
use crate::metrics::Metrics;
use crate::test_support::sample_report;

const EXPECTED: &str = "\
cpvip 0.1.0 on cp-1: running, leader mode: LEADER (3 lease transitions), healthy, serving

VIP         Bound  Announced
192.0.2.10  yes    yes

Check       State  Latency  Last result
apiserver   up     3ms      200 OK
supervisor  DOWN   0ms      connect: Connection refused (os error 111)

Peer      AS          State        Uptime    Sent  Rcvd  Flaps  BFD  Last error
10.0.0.1  65000       Established  1h02m03s  1     0     1      up   -
10.0.0.2  4200000001  Active       -         0     0     0      -    connect: Connection refused
";

#[test]
fn table_of_a_sample_report() {
    let table = render_table(&sample_report());
    assert_eq!(table, EXPECTED, "got:\n{table}");
}

#[test]
fn table_of_a_standby_without_verdict_with_an_error() {
    let mut report = sample_report();
    report.leader = false;
    report.holder = Some("cp-2".to_string());
    report.healthy = None;
    report.serving = false;
    report.vips[0].bound = false;
    report.announced.clear();
    report.last_error = Some("Bind: permission denied".to_string());
    let table = render_table(&report);
    assert!(
        table.starts_with(
            "cpvip 0.1.0 on cp-1: running, leader mode: standby, leader is cp-2, \
             health unknown (no verdict yet), not serving\n"
        ),
        "{table}"
    );
    assert!(table.contains("192.0.2.10  no     no\n"), "{table}");
    assert!(
        table.ends_with("\nLast error: Bind: permission denied\n"),
        "{table}"
    );
}

#[test]
fn uptime_is_compact() {
    assert_eq!(uptime(45), "45s");
    assert_eq!(uptime(725), "12m05s");
    assert_eq!(uptime(3723), "1h02m03s");
    assert_eq!(uptime(3 * 86_400 + 4 * 3600 + 5 * 60), "3d04h05m");
}

struct Fixed(StatusReport);

impl StatusSource for Fixed {
    fn status(&self) -> StatusReport {
        self.0.clone()
    }
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A live `http.rs` server on an ephemeral loopback port, stopped on drop.
pub(crate) struct LiveServer {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LiveServer {
    pub async fn start(source: Arc<dyn StatusSource>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let app = router(source, Arc::new(Metrics::new("0.1.0")));
        let task = tokio::spawn(serve(listener, app, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Stops gracefully and checks that the server ended without error.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = std::mem::replace(&mut self.task, tokio::spawn(async { Ok(()) }));
        task.await
            .expect("server task")
            .expect("server ended cleanly");
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn client_reads_a_live_daemon_and_renders_the_same_table() {
    let server = LiveServer::start(Arc::new(Fixed(sample_report()))).await;
    let body = fetch_status(server.addr).await.expect("reachable");
    let report: StatusReport = serde_json::from_str(&body).expect("a status report");
    assert_eq!(report, sample_report(), "JSON round trip");
    assert_eq!(render_table(&report), EXPECTED);
    assert_eq!(run_status(server.addr, false).await.expect("runs"), 0);
    assert_eq!(run_status(server.addr, true).await.expect("runs"), 0);
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_daemon_is_exit_1_with_one_clear_line() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = fetch_status(addr).await.expect_err("nothing listens");
    let line = err.to_string();
    assert!(
        line.starts_with(&format!("daemon not reachable at {addr}: ")),
        "{line}"
    );
    assert!(line.contains("--http-listen"), "{line}");
    assert!(!line.contains('\n'));
    assert_eq!(run_status(addr, false).await.expect("runs"), 1);
}
