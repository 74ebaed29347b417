//! The HTTP face of the Lease test server: authentication, routing, JSON bodies and `Status`
//! errors as kube-apiserver writes them, and watch streams (newline-delimited JSON events).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::Shared;
use super::discovery::{self, GROUP, GROUP_VERSION};
use super::query::{Filter, is_watch, parse_query, query_get};
use super::store::{Event, EventType, StoreError};

/// Response body: a whole JSON document or a watch stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest request body accepted (the real apiserver allows 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Serves one request. `client_cert_verified` says the TLS peer presented a certificate that
/// chains to our CA (rustls already verified it).
pub async fn handle(
    shared: Arc<Shared>,
    client_cert_verified: bool,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    shared
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared.faults.wait_while_stalled().await;
    if shared.faults.failing() {
        return Ok(status_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "Internal error occurred: cpvip-lab fault injection: failing every request",
            None,
        ));
    }
    if !client_cert_verified && !bearer_ok(&req, &shared.token) {
        return Ok(status_response(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized",
            None,
        ));
    }
    Ok(route(shared, req).await)
}

fn bearer_ok(req: &Request<Incoming>, token: &str) -> bool {
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| !token.is_empty() && t.trim() == token)
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["version"]) => json_response(StatusCode::OK, &discovery::version()),
        (Method::GET, ["healthz" | "livez" | "readyz"]) => text_response(StatusCode::OK, "ok"),
        (Method::GET, ["api"]) => json_response(
            StatusCode::OK,
            &json!({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":shared.advertise}]}),
        ),
        (Method::GET, ["apis"]) => json_response(StatusCode::OK, &discovery::api_group_list()),
        (Method::GET, ["apis", GROUP]) => json_response(StatusCode::OK, &discovery::api_group()),
        (Method::GET, ["apis", GROUP, "v1"]) => {
            json_response(StatusCode::OK, &discovery::api_resources())
        }
        (Method::GET, ["apis", GROUP, "v1", "leases"]) => {
            list_or_watch(&shared, None, None, &query).await
        }
        (_, ["apis", GROUP, "v1", "namespaces", ns, "leases"]) => match method {
            Method::GET => list_or_watch(&shared, Some(ns), None, &query).await,
            Method::POST => match read_lease(req).await {
                Ok(lease) => {
                    write_result(shared.write(|s| s.create(ns, lease)), StatusCode::CREATED)
                }
                Err(resp) => resp,
            },
            _ => method_not_allowed(),
        },
        (_, ["apis", GROUP, "v1", "namespaces", ns, "leases", name]) => match method {
            Method::GET if is_watch(&query) => {
                list_or_watch(&shared, Some(ns), Some(name), &query).await
            }
            Method::GET => match shared.read(|s| s.get(ns, name)) {
                Ok(lease) => json_response(StatusCode::OK, &lease_json(&lease)),
                Err(e) => error_response(&e),
            },
            Method::PUT => match read_lease(req).await {
                Ok(lease) => {
                    let result = shared.write(|s| s.replace(ns, name, lease));
                    let code = match &result {
                        Ok(e) if e.kind == EventType::Added => StatusCode::CREATED,
                        _ => StatusCode::OK,
                    };
                    write_result(result, code)
                }
                Err(resp) => resp,
            },
            Method::DELETE => match shared.write(|s| s.delete(ns, name)) {
                Ok(e) => json_response(
                    StatusCode::OK,
                    &json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",
                        "details":{"name":name,"group":GROUP,"kind":"leases",
                        "uid":e.object.metadata.uid}}),
                ),
                Err(e) => error_response(&e),
            },
            _ => method_not_allowed(),
        },
        _ => status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
            None,
        ),
    }
}

fn write_result(result: Result<Event, StoreError>, ok: StatusCode) -> Response<Body> {
    match result {
        Ok(e) => json_response(ok, &lease_json(&e.object)),
        Err(e) => error_response(&e),
    }
}

async fn read_lease(req: Request<Incoming>) -> Result<Lease, Response<Body>> {
    let bytes = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return Err(bad_request(&format!("unable to read request body: {e}"))),
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        bad_request(&format!(
            "the body of the request was in an unknown format: {e}"
        ))
    })?;
    if let Some(kind) = value.get("kind").and_then(Value::as_str)
        && kind != "Lease"
    {
        return Err(bad_request(&format!("kind {kind} does not match Lease")));
    }
    if let Some(av) = value.get("apiVersion").and_then(Value::as_str)
        && av != GROUP_VERSION
    {
        return Err(bad_request(&format!(
            "apiVersion {av} does not match {GROUP_VERSION}"
        )));
    }
    serde_json::from_value(value).map_err(|e| {
        bad_request(&format!(
            "Lease in version \"v1\" cannot be handled as a Lease: {e}"
        ))
    })
}

async fn list_or_watch(
    shared: &Arc<Shared>,
    ns: Option<&str>,
    name: Option<&str>,
    query: &[(String, String)],
) -> Response<Body> {
    let mut filter = match Filter::parse(
        query_get(query, "fieldSelector").unwrap_or(""),
        query_get(query, "labelSelector").unwrap_or(""),
    ) {
        Ok(f) => f,
        Err(msg) => return bad_request(&msg),
    };
    filter.namespace = ns.map(str::to_string);
    if let Some(n) = name {
        filter.name = Some(n.to_string());
    }
    if !is_watch(query) {
        let (items, rv) = shared.read(|s| (s.list(ns), s.resource_version()));
        let items: Vec<Value> = items
            .iter()
            .filter(|l| filter.matches(l))
            .map(|l| {
                let mut v = lease_json(l);
                // The apiserver omits apiVersion/kind on list items.
                if let Some(o) = v.as_object_mut() {
                    o.remove("apiVersion");
                    o.remove("kind");
                }
                v
            })
            .collect();
        return json_response(
            StatusCode::OK,
            &json!({"kind":"LeaseList","apiVersion":GROUP_VERSION,
                "metadata":{"resourceVersion":rv.to_string()},"items":items}),
        );
    }
    let timeout = query_get(query, "timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let from = query_get(query, "resourceVersion").unwrap_or("");
    let from_rv: Option<u64> = match from {
        "" | "0" => None,
        v => match v.parse() {
            Ok(n) => Some(n),
            Err(_) => return bad_request(&format!("invalid resource version: {v}")),
        },
    };
    // Backlog and subscription under one lock, so no event falls between them.
    let start = shared.read(|s| {
        let rx = shared.events.subscribe();
        let backlog = match from_rv {
            None => Ok(s
                .list(ns)
                .into_iter()
                .map(|l| Event {
                    kind: EventType::Added,
                    rv: s.resource_version(),
                    object: l,
                })
                .collect::<Vec<_>>()),
            Some(rv) => s.events_since(rv),
        };
        (rx, backlog, s.resource_version())
    });
    let (rx, backlog, now_rv) = start;
    let (tx, body_rx) = mpsc::channel::<Bytes>(64);
    let backlog = match backlog {
        Ok(events) => events,
        Err(e) => {
            // The apiserver sends 410 as an ERROR event inside a 200 watch stream.
            let line = watch_line("ERROR", status_json(&e).1);
            let _ = tx.try_send(line);
            drop(tx);
            return stream_response(body_rx);
        }
    };
    let last_rv = from_rv.unwrap_or(now_rv);
    tokio::spawn(pump_watch(
        tx,
        rx,
        backlog,
        filter,
        last_rv,
        Duration::from_secs(timeout),
    ));
    stream_response(body_rx)
}

async fn pump_watch(
    tx: mpsc::Sender<Bytes>,
    mut rx: broadcast::Receiver<Event>,
    backlog: Vec<Event>,
    filter: Filter,
    mut last_rv: u64,
    timeout: Duration,
) {
    for e in backlog.iter().filter(|e| filter.matches(&e.object)) {
        if tx
            .send(watch_line(e.kind.as_str(), lease_json(&e.object)))
            .await
            .is_err()
        {
            return;
        }
    }
    if let Some(e) = backlog.last() {
        last_rv = last_rv.max(e.rv);
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            _ = &mut deadline => return,
            _ = tx.closed() => return,
            ev = rx.recv() => match ev {
                Ok(e) => e,
                // Too slow a reader: end the stream, the client re-watches from its last rv.
                Err(_) => return,
            },
        };
        if event.rv <= last_rv || !filter.matches(&event.object) {
            continue;
        }
        last_rv = event.rv;
        if tx
            .send(watch_line(event.kind.as_str(), lease_json(&event.object)))
            .await
            .is_err()
        {
            return;
        }
    }
}

fn watch_line(kind: &str, object: Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A Lease as the apiserver writes it (k8s-openapi adds apiVersion and kind).
pub fn lease_json(lease: &Lease) -> Value {
    serde_json::to_value(lease).unwrap_or(Value::Null)
}

fn status_json(e: &StoreError) -> (StatusCode, Value) {
    let details = |name: &str| json!({"name": name, "group": GROUP, "kind": "leases"});
    let (code, reason, message, details) = match e {
        StoreError::NotFound { name } => (
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("leases.{GROUP} \"{name}\" not found"),
            Some(details(name)),
        ),
        StoreError::AlreadyExists { name } => (
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("leases.{GROUP} \"{name}\" already exists"),
            Some(details(name)),
        ),
        StoreError::Conflict { name, message } => (
            StatusCode::CONFLICT,
            "Conflict",
            format!("Operation cannot be fulfilled on leases.{GROUP} \"{name}\": {message}"),
            Some(details(name)),
        ),
        StoreError::Invalid { name, causes } => {
            let summary: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            let causes: Vec<Value> = causes
                .iter()
                .map(|(f, m)| json!({"reason":"FieldValueInvalid","message":m,"field":f}))
                .collect();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                format!(
                    "Lease.{GROUP} \"{name}\" is invalid: {}",
                    summary.join(", ")
                ),
                Some(json!({"name": name, "group": GROUP, "kind": "Lease", "causes": causes})),
            )
        }
        StoreError::BadRequest { message } => {
            (StatusCode::BAD_REQUEST, "BadRequest", message.clone(), None)
        }
        StoreError::Expired { requested, oldest } => (
            StatusCode::GONE,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
            None,
        ),
    };
    (code, status_value(code, reason, &message, details))
}

fn status_value(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut v = json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
        "message":message,"reason":reason,"code":code.as_u16()});
    if let (Some(d), Some(o)) = (details, v.as_object_mut()) {
        o.insert("details".to_string(), d);
    }
    v
}

fn error_response(e: &StoreError) -> Response<Body> {
    let (code, body) = status_json(e);
    json_response(code, &body)
}

fn status_response(
    code: StatusCode,
    reason: &str,
    message: &str,
    details: Option<Value>,
) -> Response<Body> {
    json_response(code, &status_value(code, reason, message, details))
}

fn bad_request(message: &str) -> Response<Body> {
    status_response(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

fn method_not_allowed() -> Response<Body> {
    status_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        None,
    )
}

fn json_response(code: StatusCode, body: &Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn text_response(code: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed_unsync());
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
