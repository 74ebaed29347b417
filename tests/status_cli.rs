//! `cpvip status` as an operator runs it: the real binary against a live `/status` server
//! (the daemon's own HTTP surface), and against nothing.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;

use cpvip::daemon::Mode;
use cpvip::health::{CheckSnapshot, CheckState, ProbeResult};
use cpvip::http::{PeerStatus, StatusReport, StatusSource, VipStatus, router, serve};
use cpvip::metrics::Metrics;

struct Fixed(StatusReport);

impl StatusSource for Fixed {
    fn status(&self) -> StatusReport {
        self.0.clone()
    }
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }
}

fn report() -> StatusReport {
    let vip = "2001:db8::10".parse().expect("literal");
    StatusReport {
        version: "0.1.0".into(),
        mode: Mode::Anycast,
        node: "cp-3".into(),
        phase: "running".into(),
        leader: false,
        holder: None,
        lease_transitions: 0,
        healthy: Some(false),
        serving: false,
        vips: vec![VipStatus {
            address: vip,
            bound: false,
        }],
        announced: Vec::new(),
        checks: vec![CheckSnapshot {
            name: "supervisor".into(),
            target: "https://127.0.0.1:9345/ping".into(),
            state: CheckState::Down,
            last: Some(ProbeResult {
                ok: false,
                detail: "timeout after 1s".into(),
                latency_ms: 1000,
            }),
            consecutive_ok: 0,
            consecutive_fail: 9,
        }],
        peers: vec![PeerStatus {
            address: "fd00::1".into(),
            remote_as: 65000,
            state: "Established".into(),
            uptime_secs: Some(59),
            prefixes_sent: 0,
            ..PeerStatus::default()
        }],
        last_error: None,
    }
}

fn cpvip_status(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cpvip"))
        .arg("status")
        .args(args)
        .output()
        .expect("run cpvip")
}

/// Runs the daemon's HTTP surface on a loopback port in a background runtime.
fn live_server() -> (SocketAddr, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(Arc::new(Fixed(report())), Arc::new(Metrics::new("0.1.0")));
    runtime.spawn(serve(listener, app, std::future::pending()));
    (addr, runtime)
}

#[test]
fn prints_the_table_and_the_json_of_a_running_daemon() {
    let (addr, _runtime) = live_server();
    let addr = addr.to_string();
    let table = cpvip_status(&["--http", &addr]);
    assert_eq!(table.status.code(), Some(0), "{table:?}");
    let stdout = String::from_utf8(table.stdout).expect("utf-8");
    assert!(
        stdout.starts_with("cpvip 0.1.0 on cp-3: running, anycast, UNHEALTHY, not serving\n"),
        "{stdout}"
    );
    assert!(stdout.contains("2001:db8::10  no     no\n"), "{stdout}");
    assert!(
        stdout.contains("supervisor  DOWN   1000ms   timeout after 1s\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fd00::1  65000  Established  59s"),
        "{stdout}"
    );

    let json = cpvip_status(&["--http", &addr, "--json"]);
    assert_eq!(json.status.code(), Some(0));
    let parsed: StatusReport = serde_json::from_slice(&json.stdout).expect("JSON passed through");
    assert_eq!(parsed, report());
}

#[test]
fn an_unreachable_daemon_exits_1_with_one_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let output = cpvip_status(&["--http", &addr]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: cpvip status: daemon not reachable at {addr}: "
        )),
        "{stderr}"
    );
}
