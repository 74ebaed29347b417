//! `cpvip status [--http ADDR] [--json]`: reads the daemon's `/status` and prints it as a
//! compact table an operator can read at 3 a.m. (like `birdc show protocols`), or passes the
//! JSON through. Exit 1 with one clear line when the daemon cannot be reached.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::daemon::Mode;
use crate::health::CheckState;
use crate::http::StatusReport;

/// The default of `--http` (and of `cpvip run --http-listen`).
pub const DEFAULT_ADDR: &str = "127.0.0.1:2112";
const TIMEOUT: Duration = Duration::from_secs(3);
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Why the status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Nothing answered.
    #[error(
        "daemon not reachable at {addr}: {reason} (is `cpvip run` running with --http-listen {addr}?)"
    )]
    Unreachable {
        /// Where we looked.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// Something answered, but not with a status report.
    #[error("unexpected answer from {addr}: {reason}")]
    BadAnswer {
        /// Where we looked.
        addr: SocketAddr,
        /// What was wrong.
        reason: String,
    },
}

/// Runs the subcommand: prints the table (or the JSON) to stdout and returns the exit code;
/// on failure prints one line to stderr and returns 1.
pub async fn run_status(addr: SocketAddr, json: bool) -> anyhow::Result<i32> {
    let outcome = fetch_status(addr).await.and_then(|body| {
        if json {
            return Ok(body);
        }
        serde_json::from_str::<StatusReport>(&body)
            .map(|report| render_table(&report))
            .map_err(|e| StatusError::BadAnswer {
                addr,
                reason: format!("not a status report: {e}"),
            })
    });
    match outcome {
        Ok(text) => {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            Ok(0)
        }
        Err(err) => {
            eprintln!("error: cpvip status: {err}");
            Ok(1)
        }
    }
}

/// GET /status; returns the JSON body.
pub async fn fetch_status(addr: SocketAddr) -> Result<String, StatusError> {
    let unreachable = |reason: String| StatusError::Unreachable { addr, reason };
    let bad = |reason: String| StatusError::BadAnswer { addr, reason };
    let exchange = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        // The connection is closed when the request is done: one request per invocation.
        tokio::spawn(conn);
        let request = Request::get("/status")
            .header(header::HOST, addr.to_string())
            .header(header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| bad(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| bad(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(bad(format!("HTTP {status}")));
        }
        String::from_utf8(body.to_vec()).map_err(|e| bad(e.to_string()))
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| unreachable(format!("no answer within {TIMEOUT:?}")))?
}

/// The human view of a report.
pub fn render_table(report: &StatusReport) -> String {
    let mut out = String::new();
    let health = match report.healthy {
        Some(true) => "healthy",
        Some(false) => "UNHEALTHY",
        None => "health unknown (no verdict yet)",
    };
    let role = match report.mode {
        Mode::Anycast => "anycast".to_string(),
        Mode::Leader if report.leader => {
            format!(
                "leader mode: LEADER ({} lease transitions)",
                report.lease_transitions
            )
        }
        Mode::Leader => format!(
            "leader mode: standby, leader is {}",
            report.holder.as_deref().unwrap_or("nobody")
        ),
    };
    let serving = if report.serving {
        "serving"
    } else {
        "not serving"
    };
    let _ = writeln!(
        out,
        "cpvip {} on {}: {}, {role}, {health}, {serving}",
        report.version, report.node, report.phase
    );
    out.push('\n');
    let mut vips = vec![row(["VIP", "Bound", "Announced"])];
    for vip in &report.vips {
        vips.push(row([
            vip.address.to_string(),
            yes_no(vip.bound).to_string(),
            yes_no(report.announced.contains(&vip.address)).to_string(),
        ]));
    }
    out.push_str(&table(&vips));
    if !report.checks.is_empty() {
        out.push('\n');
        let mut checks = vec![row(["Check", "State", "Latency", "Last result"])];
        for check in &report.checks {
            let state = match check.state {
                CheckState::Up => "up",
                CheckState::Down => "DOWN",
                CheckState::Unknown => "unknown",
            };
            let (latency, last) = match &check.last {
                Some(r) => (format!("{}ms", r.latency_ms), r.detail.clone()),
                None => ("-".to_string(), "-".to_string()),
            };
            checks.push(row([check.name.clone(), state.to_string(), latency, last]));
        }
        out.push_str(&table(&checks));
    }
    if !report.peers.is_empty() {
        out.push('\n');
        let mut peers = vec![row([
            "Peer",
            "AS",
            "State",
            "Uptime",
            "Sent",
            "Rcvd",
            "Flaps",
            "BFD",
            "Last error",
        ])];
        for p in &report.peers {
            peers.push(row([
                p.address.clone(),
                p.remote_as.to_string(),
                p.state.clone(),
                p.uptime_secs.map_or_else(|| "-".to_string(), uptime),
                p.prefixes_sent.to_string(),
                p.prefixes_received.to_string(),
                p.flaps.to_string(),
                p.bfd.clone().unwrap_or_else(|| "-".to_string()),
                p.last_error.clone().unwrap_or_else(|| "-".to_string()),
            ]));
        }
        out.push_str(&table(&peers));
    }
    if let Some(err) = &report.last_error {
        let _ = writeln!(out, "\nLast error: {err}");
    }
    out
}

fn row<const N: usize>(cells: [impl Into<String>; N]) -> Vec<String> {
    cells.into_iter().map(Into::into).collect()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Left-aligned columns two spaces apart; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `45s`, `12m05s`, `1h02m03s`, `3d04h05m`.
fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m{s:02}s"),
        _ => format!("{d}d{h:02}h{m:02}m"),
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
pub(crate) mod tests;
