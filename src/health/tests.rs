//! Checks against real listeners on 127.0.0.1: HTTPS with token and client-certificate auth,
//! the supervisor's pong, plain HTTP, TCP, timeouts; and the monitor's verdict over time.

use std::sync::Arc;
use std::time::Duration;

use hyper::header::AUTHORIZATION;
use tokio::net::TcpListener;

use super::testserver::{Handler, Pki, http_server, https_server};
use super::*;

const TIMEOUT: Duration = Duration::from_secs(2);

fn readyz_with_token(token: &'static str) -> Handler {
    Arc::new(move |req, _| {
        let expected = format!("Bearer {token}");
        match req.headers().get(AUTHORIZATION) {
            Some(v) if v.as_bytes() == expected.as_bytes() && req.uri().path() == "/readyz" => {
                (200, "ok".into())
            }
            _ => (401, r#"{"kind":"Status","code":401}"#.into()),
        }
    })
}

fn readyz_with_client_cert() -> Handler {
    Arc::new(|_, client_cert| {
        if client_cert {
            (200, "ok".into())
        } else {
            (401, "Unauthorized".into())
        }
    })
}

fn token(token: &str, ca: Option<&str>) -> ApiCredentials {
    ApiCredentials {
        ca_pem: ca.map(|c| c.as_bytes().to_vec()),
        auth: ApiAuth::BearerToken(token.to_string()),
    }
}

fn readyz(server: &testserver::TestServer) -> String {
    format!("https://{}/readyz", server.addr)
}

use super::testserver;

#[tokio::test]
async fn apiserver_passes_with_the_token_and_fails_401_without_it() {
    let pki = Pki::new("token");
    let server = https_server(&pki, false, readyz_with_token("s3cret")).await;
    let good = Check::apiserver_at(&readyz(&server), &token("s3cret", None)).expect("check");
    let result = good.probe(TIMEOUT).await;
    assert!(result.ok, "{result:?}");
    assert_eq!(result.detail, "200 OK");
    let bad = Check::apiserver_at(&readyz(&server), &token("wrong", None)).expect("check");
    let result = bad.probe(TIMEOUT).await;
    assert!(!result.ok);
    assert_eq!(result.detail, "401 Unauthorized");
    assert_eq!(good.name(), "apiserver");
}

#[tokio::test]
async fn apiserver_authenticates_with_a_client_certificate_pkcs8_and_sec1() {
    let pki = Pki::new("cert");
    let server = https_server(&pki, true, readyz_with_client_cert()).await;
    for (what, key) in [
        ("PKCS#8", pki.client_key_pem.clone()),
        ("SEC1 EC PRIVATE KEY", pki.client_key_sec1_pem()),
    ] {
        assert!(what != "SEC1 EC PRIVATE KEY" || key.starts_with("-----BEGIN EC PRIVATE KEY"));
        let credentials = ApiCredentials {
            ca_pem: Some(pki.ca_pem.as_bytes().to_vec()),
            auth: ApiAuth::ClientCert {
                cert_pem: pki.client_cert_pem.as_bytes().to_vec(),
                key_pem: key.into_bytes(),
            },
        };
        let check = Check::apiserver_at(&readyz(&server), &credentials).expect(what);
        let result = check.probe(TIMEOUT).await;
        assert!(result.ok, "{what}: {result:?}");
    }
    let anonymous = Check::apiserver_at(&readyz(&server), &token("", None)).expect("check");
    assert_eq!(anonymous.probe(TIMEOUT).await.detail, "401 Unauthorized");
}

#[tokio::test]
async fn a_given_ca_is_enforced_even_on_loopback() {
    let pki = Pki::new("right");
    let other = Pki::new("other");
    let server = https_server(&pki, false, readyz_with_token("t")).await;
    let right = Check::apiserver_at(&readyz(&server), &token("t", Some(&pki.ca_pem)));
    assert!(right.expect("check").probe(TIMEOUT).await.ok);
    let wrong = Check::apiserver_at(&readyz(&server), &token("t", Some(&other.ca_pem)));
    let result = wrong.expect("check").probe(TIMEOUT).await;
    assert!(!result.ok);
    assert!(result.detail.starts_with("TLS"), "{result:?}");
    // Through the spec syntax, `https://…,ca=FILE`.
    let dir = std::env::temp_dir().join(format!("cpvip-health-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca_file = dir.join("other-ca.pem");
    std::fs::write(&ca_file, &other.ca_pem).expect("write CA");
    let spec = format!("https://{}/readyz,ca={}", server.addr, ca_file.display());
    let result = Check::from_spec(&spec, None)
        .expect("spec")
        .probe(TIMEOUT)
        .await;
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert!(!result.ok && result.detail.starts_with("TLS"), "{result:?}");
}

#[tokio::test]
async fn loopback_https_without_a_ca_skips_verification() {
    let pki = Pki::new("selfsigned");
    let server = https_server(&pki, false, Arc::new(|_, _| (204, String::new()))).await;
    let check = Check::from_spec(&format!("https://{}/healthz", server.addr), None).expect("spec");
    let result = check.probe(TIMEOUT).await;
    assert!(result.ok, "{result:?}");
    assert_eq!(result.detail, "204 No Content");
}

#[tokio::test]
async fn supervisor_expects_pong() {
    let pki = Pki::new("supervisor");
    let pong = https_server(
        &pki,
        false,
        Arc::new(|req, _| match req.uri().path() {
            "/ping" => (200, "pong\n".into()),
            _ => (404, String::new()),
        }),
    )
    .await;
    let check = Check::supervisor_at(&format!("https://{}/ping", pong.addr)).expect("check");
    assert!(check.probe(TIMEOUT).await.ok);
    let wrong = https_server(&pki, false, Arc::new(|_, _| (200, "ping?".into()))).await;
    let check = Check::supervisor_at(&format!("https://{}/ping", wrong.addr)).expect("check");
    let result = check.probe(TIMEOUT).await;
    assert!(!result.ok);
    assert!(result.detail.contains("expected \"pong\""), "{result:?}");
}

#[tokio::test]
async fn plain_http_needs_a_2xx() {
    let ok = http_server(Arc::new(|_, _| (200, "fine".into()))).await;
    let failing = http_server(Arc::new(|_, _| (503, "nope".into()))).await;
    let check = Check::from_spec(&format!("http://{}/health", ok.addr), None).expect("spec");
    assert!(check.probe(TIMEOUT).await.ok);
    let check = Check::from_spec(&format!("http://{}/health", failing.addr), None).expect("spec");
    let result = check.probe(TIMEOUT).await;
    assert!(!result.ok);
    assert_eq!(result.detail, "503 Service Unavailable");
}

#[tokio::test]
async fn tcp_passes_on_connect_and_fails_on_a_closed_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let open = listener.local_addr().expect("addr");
    let check = Check::from_spec(&format!("tcp://{open}"), None).expect("spec");
    assert!(check.probe(TIMEOUT).await.ok);
    drop(listener);
    let result = check.probe(TIMEOUT).await;
    assert!(!result.ok);
    assert!(result.detail.starts_with("connect:"), "{result:?}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let check = Check::from_spec(&format!("https://{addr}/readyz"), None).expect("spec");
    let result = check.probe(Duration::from_millis(300)).await;
    held.abort();
    assert!(!result.ok);
    assert_eq!(result.detail, "timeout after 300ms");
    assert!(result.latency_ms >= 300, "{result:?}");
}

#[test]
fn invalid_specs_are_refused() {
    for spec in [
        "ftp://x",
        "tcp://host",
        "tcp://:80",
        "tcp://h:0",
        "apiserver",
        "http://",
    ] {
        assert!(Check::from_spec(spec, None).is_err(), "{spec} accepted");
    }
    let err = Check::apiserver_at("http://127.0.0.1:6443/readyz", &token("t", None))
        .err()
        .expect("plain http refused for the apiserver");
    assert!(err.to_string().contains("https"), "{err}");
    assert_eq!(
        Check::from_spec("tcp://[::1]:9345", None)
            .expect("v6")
            .target(),
        "tcp://[::1]:9345"
    );
}

#[test]
fn credentials_are_never_printed() {
    let debug = format!("{:?}", token("s3cret", None));
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[tokio::test]
async fn monitor_reports_none_then_follows_rise_and_fall() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let settings = HealthSettings {
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
        thresholds: RiseFall { rise: 2, fall: 2 },
    };
    let monitor = HealthMonitor::spawn(vec![Check::tcp("127.0.0.1", addr.port())], settings);
    let mut verdict = monitor.verdict();
    assert_eq!(
        *verdict.borrow(),
        None,
        "no verdict before the first probes"
    );
    let bound = Duration::from_secs(5);
    let wait = |v: bool, rx: &mut tokio::sync::watch::Receiver<Option<bool>>| {
        let mut rx = rx.clone();
        async move {
            tokio::time::timeout(bound, rx.wait_for(|x| *x == Some(v)))
                .await
                .expect("verdict in time")
                .expect("monitor alive");
        }
    };
    wait(true, &mut verdict).await;
    let snapshot = monitor.checks().borrow().clone();
    assert_eq!(snapshot[0].state, CheckState::Up);
    assert!(snapshot[0].consecutive_ok >= 2);
    drop(listener);
    wait(false, &mut verdict).await;
    let snapshot = monitor.checks().borrow().clone();
    assert_eq!(snapshot[0].state, CheckState::Down);
    assert!(snapshot[0].consecutive_fail >= 2);
    let last = snapshot[0].last.clone().expect("a result");
    assert!(!last.ok && last.detail.starts_with("connect:"), "{last:?}");
    let _again = TcpListener::bind(addr).await.expect("rebind the same port");
    wait(true, &mut verdict).await;
}

#[tokio::test]
async fn no_checks_means_healthy_and_one_failing_check_means_unhealthy() {
    let none = HealthMonitor::spawn(Vec::new(), HealthSettings::default());
    assert_eq!(*none.verdict().borrow(), Some(true));
    let pki = Pki::new("unauth");
    let server = https_server(&pki, false, readyz_with_token("right")).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let checks = vec![
        Check::tcp("127.0.0.1", listener.local_addr().expect("addr").port()),
        Check::apiserver_at(&readyz(&server), &token("wrong", None)).expect("check"),
    ];
    let settings = HealthSettings {
        interval: Duration::from_millis(50),
        ..HealthSettings::default()
    };
    let monitor = HealthMonitor::spawn(checks, settings);
    let mut verdict = monitor.verdict();
    tokio::time::timeout(Duration::from_secs(5), verdict.wait_for(|v| v.is_some()))
        .await
        .expect("verdict in time")
        .expect("monitor alive");
    assert_eq!(*verdict.borrow(), Some(false), "the 401 apiserver vetoes");
}

/// A kubeconfig shaped like RKE2's rke2.yaml: inline CA, client certificate and SEC1 key.
fn rke2_yaml(pki: &Pki, server: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
        ca = b64(&pki.ca_pem),
        cert = b64(&pki.client_cert_pem),
        key = b64(&pki.client_key_sec1_pem()),
    )
}

struct TempFiles(std::path::PathBuf);

impl TempFiles {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cpvip-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
    fn write(&self, name: &str, text: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }
}

impl Drop for TempFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn apiserver_check_waits_for_a_kubeconfig_written_later() {
    let pki = Pki::new("rke2-later");
    let server = https_server(&pki, true, readyz_with_client_cert()).await;
    let files = TempFiles::new("later-kubeconfig");
    let path = files.0.join("rke2.yaml");
    let check = Check::apiserver_deferred_at(&readyz(&server), path.clone());
    let before = check.probe(TIMEOUT).await;
    assert!(
        !before.ok && before.detail.contains("waiting for the kubeconfig"),
        "{before:?}"
    );
    files.write("rke2.yaml", &rke2_yaml(&pki, "https://127.0.0.1:6443"));
    let after = check.probe(TIMEOUT).await;
    assert!(after.ok, "{after:?}");
}

#[tokio::test]
async fn apiserver_check_authenticates_with_an_rke2_style_kubeconfig() {
    let pki = Pki::new("rke2");
    let server = https_server(&pki, true, readyz_with_client_cert()).await;
    let files = TempFiles::new("rke2-kubeconfig");
    let path = files.write("rke2.yaml", &rke2_yaml(&pki, "https://127.0.0.1:6443"));
    let credentials = kubeconfig::api_credentials(&path).expect("credentials");
    assert!(matches!(credentials.auth, ApiAuth::ClientCert { .. }));
    assert_eq!(credentials.ca_pem.as_deref(), Some(pki.ca_pem.as_bytes()));
    let check = Check::apiserver_at(&readyz(&server), &credentials).expect("check");
    let result = check.probe(TIMEOUT).await;
    assert!(result.ok, "{result:?}");
}

#[tokio::test]
async fn apiserver_check_uses_a_kubeconfig_token_file() {
    let pki = Pki::new("tokenfile");
    let server = https_server(&pki, false, readyz_with_token("from-file")).await;
    let files = TempFiles::new("token-kubeconfig");
    let token = files.write("token", "from-file\n");
    let ca = files.write("ca.pem", &pki.ca_pem);
    let yaml = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: {ca}
users:
- name: u
  user:
    tokenFile: {token}
contexts:
- name: x
  context:
    cluster: c
    user: u
current-context: x
",
        ca = ca.display(),
        token = token.display()
    );
    let path = files.write("kubeconfig", &yaml);
    let credentials = kubeconfig::api_credentials(&path).expect("credentials");
    let check = Check::apiserver_at(&readyz(&server), &credentials).expect("check");
    let result = check.probe(TIMEOUT).await;
    assert!(result.ok, "{result:?}");
}

#[test]
fn a_kubeconfig_without_credentials_is_refused_clearly() {
    let files = TempFiles::new("nocreds-kubeconfig");
    let yaml = "apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
";
    let path = files.write("kubeconfig", yaml);
    let err = kubeconfig::api_credentials(&path).expect_err("no credentials");
    assert!(
        err.to_string()
            .contains("neither a token nor a client certificate"),
        "{err}"
    );
    let missing = kubeconfig::api_credentials(&files.0.join("absent.yaml"));
    assert!(missing.is_err());
}
