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
use super::store::{Event, EventType, StoreError};

/// Response body: a whole JSON document or a watch stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

const GROUP: &str = "coordination.k8s.io";
const GROUP_VERSION: &str = "coordination.k8s.io/v1";
/// Largest request body accepted (the real apiserver allows 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Serves one request. `client_cert_verified` says the TLS peer presented a certificate that
/// chains to our CA (rustls already verified it).
pub async fn handle(
    shared: Arc<Shared>,
    client_cert_verified: bool,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
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
        (Method::GET, ["version"]) => json_response(StatusCode::OK, &version()),
        (Method::GET, ["healthz" | "livez" | "readyz"]) => text_response(StatusCode::OK, "ok"),
        (Method::GET, ["api"]) => json_response(
            StatusCode::OK,
            &json!({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":shared.advertise}]}),
        ),
        (Method::GET, ["apis"]) => json_response(StatusCode::OK, &api_group_list()),
        (Method::GET, ["apis", GROUP]) => json_response(StatusCode::OK, &api_group()),
        (Method::GET, ["apis", GROUP, "v1"]) => json_response(StatusCode::OK, &api_resources()),
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

fn is_watch(query: &[(String, String)]) -> bool {
    query_get(query, "watch").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn query_get<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
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

/// `fieldSelector` (metadata.name, metadata.namespace) and `labelSelector` (equality, existence)
/// as far as Leases need them.
#[derive(Default)]
struct Filter {
    namespace: Option<String>,
    name: Option<String>,
    field_terms: Vec<(String, bool, String)>,
    label_terms: Vec<LabelTerm>,
}

enum LabelTerm {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
}

impl Filter {
    fn parse(fields: &str, labels: &str) -> Result<Self, String> {
        let mut f = Filter::default();
        for term in fields.split(',').filter(|t| !t.is_empty()) {
            let (key, eq, value) =
                split_term(term).ok_or_else(|| format!("invalid field selector: {term}"))?;
            match key {
                "metadata.name" | "metadata.namespace" => {
                    f.field_terms.push((key.to_string(), eq, value.to_string()))
                }
                _ => {
                    return Err(format!("field label not supported: {key}"));
                }
            }
        }
        for term in labels.split(',').filter(|t| !t.is_empty()) {
            f.label_terms.push(match split_term(term) {
                Some((k, true, v)) => LabelTerm::Eq(k.to_string(), v.to_string()),
                Some((k, false, v)) => LabelTerm::NotEq(k.to_string(), v.to_string()),
                None => match term.strip_prefix('!') {
                    Some(k) => LabelTerm::NotExists(k.trim().to_string()),
                    None => LabelTerm::Exists(term.trim().to_string()),
                },
            });
        }
        Ok(f)
    }

    fn matches(&self, lease: &Lease) -> bool {
        let name = lease.metadata.name.as_deref().unwrap_or("");
        let ns = lease.metadata.namespace.as_deref().unwrap_or("");
        if self.namespace.as_deref().is_some_and(|n| n != ns)
            || self.name.as_deref().is_some_and(|n| n != name)
        {
            return false;
        }
        let fields_ok = self.field_terms.iter().all(|(k, eq, v)| {
            let actual = if k == "metadata.name" { name } else { ns };
            (actual == v) == *eq
        });
        let empty = Default::default();
        let labels = lease.metadata.labels.as_ref().unwrap_or(&empty);
        let labels_ok = self.label_terms.iter().all(|t| match t {
            LabelTerm::Eq(k, v) => labels.get(k) == Some(v),
            LabelTerm::NotEq(k, v) => labels.get(k) != Some(v),
            LabelTerm::Exists(k) => labels.contains_key(k),
            LabelTerm::NotExists(k) => !labels.contains_key(k),
        });
        fields_ok && labels_ok
    }
}

/// `k=v`, `k==v` → (k, true, v); `k!=v` → (k, false, v).
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    if let Some((k, v)) = term.split_once("!=") {
        return Some((k.trim(), false, v.trim()));
    }
    let (k, v) = term.split_once('=')?;
    Some((k.trim(), true, v.strip_prefix('=').unwrap_or(v).trim()))
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
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

fn version() -> Value {
    json!({"major":"1","minor":"33","gitVersion":"v1.33.0+cpvip-lab","gitCommit":"0000000000000000000000000000000000000000",
        "gitTreeState":"clean","buildDate":"2026-01-01T00:00:00Z","goVersion":"go1.24.0","compiler":"gc","platform":"linux/amd64"})
}

fn api_group() -> Value {
    json!({"kind":"APIGroup","apiVersion":"v1","name":GROUP,
        "versions":[{"groupVersion":GROUP_VERSION,"version":"v1"}],
        "preferredVersion":{"groupVersion":GROUP_VERSION,"version":"v1"}})
}

fn api_group_list() -> Value {
    let mut g = api_group();
    if let Some(o) = g.as_object_mut() {
        o.remove("kind");
        o.remove("apiVersion");
    }
    json!({"kind":"APIGroupList","apiVersion":"v1","groups":[g]})
}

fn api_resources() -> Value {
    json!({"kind":"APIResourceList","apiVersion":"v1","groupVersion":GROUP_VERSION,"resources":[
        {"name":"leases","singularName":"lease","namespaced":true,"kind":"Lease",
         "verbs":["create","delete","get","list","update","watch"]}]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_selectors() {
        let q = parse_query("fieldSelector=metadata.name%3Dcpvip&watch=true&x");
        assert_eq!(query_get(&q, "fieldSelector"), Some("metadata.name=cpvip"));
        assert!(is_watch(&q));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        let f = Filter::parse("metadata.name==a", "app=x,!gone").expect("parse");
        let mut l = Lease::default();
        l.metadata.name = Some("a".into());
        l.metadata.labels = Some([("app".to_string(), "x".to_string())].into());
        assert!(f.matches(&l));
        l.metadata.name = Some("b".into());
        assert!(!f.matches(&l));
        assert!(Filter::parse("spec.holderIdentity=a", "").is_err());
    }
}
