//! The admin endpoint of the Lease test server: plain HTTP on loopback, for fault switches and
//! for reading the store and the commit log from another process.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Shared;

/// Serves the admin endpoint until `stop` turns true.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let tcp = tokio::select! {
            a = listener.accept() => match a {
                Ok((tcp, _)) => tcp,
                Err(_) => { tokio::time::sleep(Duration::from_millis(20)).await; continue; }
            },
            _ = stop.changed() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let seconds = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("seconds="))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(Duration::from_secs_f64)
    });
    let faults = &shared.faults;
    let (code, body) = match (req.method(), req.uri().path()) {
        (&Method::POST, "/stall") => {
            faults.stall(seconds);
            (StatusCode::OK, "stalling\n".to_string())
        }
        (&Method::POST, "/fail") => {
            faults.fail(seconds);
            (StatusCode::OK, "failing\n".to_string())
        }
        (&Method::POST, "/refuse") => {
            faults.refuse(seconds);
            (StatusCode::OK, "refusing\n".to_string())
        }
        (&Method::POST, "/clear") => {
            faults.clear();
            (StatusCode::OK, "cleared\n".to_string())
        }
        (&Method::GET, "/leases") => {
            let items: Vec<_> =
                shared.read(|s| s.list(None).iter().map(super::http::lease_json).collect());
            (StatusCode::OK, json!({ "items": items }).to_string())
        }
        (&Method::GET, "/writes") => {
            let started = shared.started;
            let items: Vec<_> = shared.read(|s| {
                s.writes()
                    .iter()
                    .map(|w| {
                        json!({
                            "at_ms": w.at.saturating_duration_since(started).as_secs_f64() * 1000.0,
                            "type": w.kind.as_str(),
                            "namespace": w.namespace,
                            "name": w.name,
                            "holder": w.holder,
                            "transitions": w.transitions,
                            "resourceVersion": w.rv.to_string(),
                        })
                    })
                    .collect()
            });
            (StatusCode::OK, json!({ "items": items }).to_string())
        }
        _ => (StatusCode::NOT_FOUND, "not found\n".to_string()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code;
    Ok(resp)
}
