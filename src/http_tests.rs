//! The endpoints of a live server on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::*;
use crate::status::tests::LiveServer;
use crate::test_support::sample_report;

struct Switchable {
    ready: AtomicBool,
}

impl StatusSource for Switchable {
    fn status(&self) -> StatusReport {
        sample_report()
    }
    fn readiness(&self) -> Result<(), String> {
        if self.ready.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("BGP speaker not running".to_string())
        }
    }
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header(header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn healthz_readyz_metrics_and_status() {
    let source = Arc::new(Switchable {
        ready: AtomicBool::new(false),
    });
    let server = LiveServer::start(source.clone()).await;
    assert_eq!(get(server.addr, "/healthz").await.0, 200);
    let (status, _, body) = get(server.addr, "/readyz").await;
    assert_eq!((status, body.as_str()), (503, "BGP speaker not running\n"));
    source.ready.store(true, Ordering::SeqCst);
    assert_eq!(get(server.addr, "/readyz").await.0, 200);

    let (status, content_type, text) = get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let samples = crate::metrics::tests::parse_openmetrics(&text).expect("OpenMetrics");
    assert!(
        samples
            .iter()
            .any(|(n, _, v)| n == "cpvip_leader" && *v == 1.0)
    );

    let (status, content_type, json) = get(server.addr, "/status").await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let report: StatusReport = serde_json::from_str(&json).expect("StatusReport JSON");
    assert_eq!(report, sample_report());
    assert_eq!(get(server.addr, "/nope").await.0, 404);
    server.stop().await;
}

#[test]
fn assemble_maps_the_daemon_state() {
    use crate::daemon::reconcile::{Applied, ReconcileReport};
    use crate::daemon::{DaemonSettings, Desired};
    let vip: IpAddr = "192.0.2.10".parse().expect("literal");
    let settings = DaemonSettings::new(Mode::Leader, "cp-1", vec![vip]);
    let daemon = DaemonStatus {
        phase: Phase::HandingOver,
        healthy: Some(true),
        leader: false,
        holder: Some("cp-2".to_string()),
        lease_transitions: 5,
        desired: Desired {
            serve: true,
            eligible: false,
        },
        reconcile: ReconcileReport {
            applied: Applied {
                bound: Some(true),
                takeover_sent: true,
                announced: true,
                drain_pending: false,
            },
            last_error: None,
            consecutive_failures: 0,
        },
    };
    let report = StatusReport::assemble(&settings, &daemon, Vec::new(), Vec::new());
    assert_eq!(report.phase, "handing-over");
    assert_eq!(
        report.vips,
        [VipStatus {
            address: vip,
            bound: true
        }]
    );
    assert_eq!(report.announced, [vip]);
    assert_eq!(report.holder.as_deref(), Some("cp-2"));
    assert_eq!(report.lease_transitions, 5);
    let json = serde_json::to_value(&report).expect("serialises");
    assert_eq!(json["mode"], "leader");
}
