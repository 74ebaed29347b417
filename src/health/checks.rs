//! The probes: `apiserver`, `supervisor`, generic `https://` / `http://` (2xx) and `tcp://`.
//!
//! Every probe opens a fresh connection (the check is about "can a client reach this now", not
//! about a pooled connection that happens to be alive) and is bounded by the caller's timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, Uri, header};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::tls::{ClientIdentity, client_config, verification_for};

/// The local kube-apiserver's readiness endpoint (RKE2 and k3s listen on 6443).
pub const APISERVER_URL: &str = "https://127.0.0.1:6443/readyz";
/// The RKE2/k3s supervisor's unauthenticated ping (answers `pong`).
pub const SUPERVISOR_URL: &str = "https://127.0.0.1:9345/ping";
/// Larger bodies are an error: health endpoints answer a few bytes.
const MAX_BODY: usize = 64 * 1024;

/// A check that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The spec is not one of the accepted forms.
    #[error("invalid health check {0}")]
    Spec(String),
    /// A PEM block could not be read.
    #[error("{0}")]
    Pem(String),
    /// The TLS configuration was refused.
    #[error("TLS: {0}")]
    Tls(String),
    /// A file named in the spec could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// How the apiserver check authenticates: what the kubeconfig's user carries. RKE2 runs the
/// apiserver with anonymous auth off, so an unauthenticated probe would only ever see 401.
#[derive(Clone)]
pub enum ApiAuth {
    /// `Authorization: Bearer <token>`.
    BearerToken(String),
    /// A client certificate (chain) and its private key, PEM.
    ClientCert {
        /// Certificate chain, leaf first.
        cert_pem: Vec<u8>,
        /// Private key: PKCS#8, PKCS#1 or SEC1 ("EC PRIVATE KEY", as in RKE2's rke2.yaml).
        key_pem: Vec<u8>,
    },
}

impl std::fmt::Debug for ApiAuth {
    // Never print secrets into logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiAuth::BearerToken(_) => f.write_str("BearerToken(<redacted>)"),
            ApiAuth::ClientCert { .. } => f.write_str("ClientCert(<redacted>)"),
        }
    }
}

/// The kubeconfig's credentials, pre-parsed by the caller.
#[derive(Clone, Debug)]
pub struct ApiCredentials {
    /// The cluster CA (PEM); when given, the server certificate is verified against it.
    pub ca_pem: Option<Vec<u8>>,
    /// The user's credentials.
    pub auth: ApiAuth,
}

/// One probe's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Passed.
    pub ok: bool,
    /// What happened, for `/status` ("200 OK", "connect: Connection refused", ...).
    pub detail: String,
    /// Time from the start of the probe to its outcome, in milliseconds.
    pub latency_ms: u64,
}

/// A configured check.
#[derive(Clone)]
pub struct Check {
    name: String,
    target: String,
    probe: Probe,
}

#[derive(Clone)]
enum Probe {
    Http(Box<HttpProbe>),
    Tcp {
        host: String,
        port: u16,
    },
    /// `apiserver` whose kubeconfig did not exist at start-up: loaded on first success.
    Deferred(Arc<DeferredApiserver>),
}

/// The apiserver check waiting for its kubeconfig. RKE2 writes `rke2.yaml` only once its
/// apiserver runs, after the kubelet has started static pods (cpvip among them): waiting for the
/// file before serving HTTP would fail the liveness probe and push the pod into back-off.
struct DeferredApiserver {
    kubeconfig: std::path::PathBuf,
    url: String,
    check: std::sync::OnceLock<Check>,
}

#[derive(Clone)]
struct HttpProbe {
    uri: Uri,
    host: String,
    port: u16,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    bearer: Option<String>,
    expect_body: Option<&'static str>,
}

impl Check {
    /// `apiserver`: GET https://127.0.0.1:6443/readyz with the kubeconfig's credentials.
    pub fn apiserver(credentials: &ApiCredentials) -> Result<Self, CheckError> {
        Self::apiserver_at(APISERVER_URL, credentials)
    }

    /// The apiserver check against another URL (tests, non-default ports).
    pub fn apiserver_at(url: &str, credentials: &ApiCredentials) -> Result<Self, CheckError> {
        let (bearer, identity) = match &credentials.auth {
            ApiAuth::BearerToken(token) => (Some(token.clone()), None),
            ApiAuth::ClientCert { cert_pem, key_pem } => {
                (None, Some(ClientIdentity { cert_pem, key_pem }))
            }
        };
        let mut probe = HttpProbe::new(url, credentials.ca_pem.as_deref(), identity)?;
        if probe.tls.is_none() {
            return Err(CheckError::Spec(format!("{url}: apiserver needs https")));
        }
        probe.bearer = bearer;
        Ok(Self::http("apiserver", url, probe))
    }

    /// `apiserver` for a kubeconfig that may not exist yet: fails with "waiting for the
    /// kubeconfig" until the file appears, then loads its credentials once and probes as
    /// [`Check::apiserver`] does.
    pub fn apiserver_deferred(kubeconfig: std::path::PathBuf) -> Self {
        Self::apiserver_deferred_at(APISERVER_URL, kubeconfig)
    }

    /// The deferred apiserver check against another URL (tests, non-default ports).
    pub fn apiserver_deferred_at(url: &str, kubeconfig: std::path::PathBuf) -> Self {
        Self {
            name: "apiserver".into(),
            target: url.into(),
            probe: Probe::Deferred(Arc::new(DeferredApiserver {
                kubeconfig,
                url: url.into(),
                check: std::sync::OnceLock::new(),
            })),
        }
    }

    /// `supervisor`: GET https://127.0.0.1:9345/ping expecting `pong` (unauthenticated).
    pub fn supervisor() -> Result<Self, CheckError> {
        Self::supervisor_at(SUPERVISOR_URL)
    }

    /// The supervisor check against another URL (tests, non-default ports).
    pub fn supervisor_at(url: &str) -> Result<Self, CheckError> {
        let mut probe = HttpProbe::new(url, None, None)?;
        probe.expect_body = Some("pong");
        Ok(Self::http("supervisor", url, probe))
    }

    /// A generic `http://` or `https://` check passing on any 2xx status.
    pub fn url(url: &str, ca_pem: Option<&[u8]>) -> Result<Self, CheckError> {
        let probe = HttpProbe::new(url, ca_pem, None)?;
        Ok(Self::http(url, url, probe))
    }

    /// A `tcp://HOST:PORT` check passing when a connection is established.
    pub fn tcp(host: &str, port: u16) -> Self {
        let target = format!("tcp://{}:{port}", bracket_v6(host));
        Self {
            name: target.clone(),
            target,
            probe: Probe::Tcp {
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port,
            },
        }
    }

    /// Parses a `--health-check` spec: `apiserver`, `supervisor`, `https://…[,ca=PATH]`,
    /// `http://…` or `tcp://HOST:PORT`. `apiserver` needs the kubeconfig's credentials.
    pub fn from_spec(spec: &str, api: Option<&ApiCredentials>) -> Result<Self, CheckError> {
        match spec {
            "apiserver" => match api {
                Some(credentials) => Self::apiserver(credentials),
                None => Err(CheckError::Spec(
                    "apiserver: no kubeconfig credentials to authenticate with".into(),
                )),
            },
            "supervisor" => Self::supervisor(),
            _ if spec.starts_with("tcp://") => {
                let rest = &spec["tcp://".len()..];
                let (host, port) = rest
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                    .filter(|(h, p)| !h.is_empty() && *p != 0)
                    .ok_or_else(|| CheckError::Spec(format!("{spec}: expected tcp://HOST:PORT")))?;
                Ok(Self::tcp(host, port))
            }
            _ if spec.starts_with("https://") => match spec.rsplit_once(",ca=") {
                Some((url, path)) => {
                    let ca = std::fs::read(path).map_err(|source| CheckError::Io {
                        path: path.to_string(),
                        source,
                    })?;
                    Self::url(url, Some(&ca))
                }
                None => Self::url(spec, None),
            },
            _ if spec.starts_with("http://") => Self::url(spec, None),
            _ => Err(CheckError::Spec(format!(
                "{spec}: expected apiserver, supervisor, https://…[,ca=PATH], http://… or tcp://HOST:PORT"
            ))),
        }
    }

    fn http(name: &str, target: &str, probe: HttpProbe) -> Self {
        Self {
            name: name.to_string(),
            target: target.to_string(),
            probe: Probe::Http(Box::new(probe)),
        }
    }

    /// The check's name (`apiserver`, `supervisor`, or its URL).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it probes.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs the probe once, bounded by `timeout`.
    pub async fn probe(&self, timeout: Duration) -> ProbeResult {
        let start = Instant::now();
        let outcome = match tokio::time::timeout(timeout, self.run()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("timeout after {timeout:?}")),
        };
        let latency_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(detail) => ProbeResult {
                ok: true,
                detail,
                latency_ms,
            },
            Err(detail) => ProbeResult {
                ok: false,
                detail,
                latency_ms,
            },
        }
    }

    async fn run(&self) -> Result<String, String> {
        match &self.probe {
            Probe::Tcp { host, port } => {
                TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                Ok("connected".to_string())
            }
            Probe::Http(http) => http.run().await,
            Probe::Deferred(deferred) => {
                if deferred.check.get().is_none() {
                    let credentials = super::kubeconfig::api_credentials(&deferred.kubeconfig)
                        .map_err(|e| format!("waiting for the kubeconfig: {e}"))?;
                    let check = Check::apiserver_at(&deferred.url, &credentials).map_err(|e| {
                        format!("kubeconfig {}: {e}", deferred.kubeconfig.display())
                    })?;
                    let _ = deferred.check.set(check);
                }
                match deferred.check.get() {
                    Some(check) => Box::pin(check.run()).await,
                    None => Err("kubeconfig not loaded".into()),
                }
            }
        }
    }
}

impl HttpProbe {
    fn new(
        url: &str,
        ca_pem: Option<&[u8]>,
        identity: Option<ClientIdentity<'_>>,
    ) -> Result<Self, CheckError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| CheckError::Spec(format!("{url}: {e}")))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(CheckError::Spec(format!(
                    "{url}: expected http:// or https://"
                )));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| CheckError::Spec(format!("{url}: no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let config = client_config(&verification_for(&host, ca_pem), identity)?;
            let name = ServerName::try_from(host.clone())
                .map_err(|e| CheckError::Spec(format!("{url}: {e}")))?;
            Some((config, name))
        } else {
            None
        };
        Ok(Self {
            uri,
            host,
            port,
            tls,
            bearer: None,
            expect_body: None,
        })
    }

    async fn run(&self) -> Result<String, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (status, body) = match &self.tls {
            Some((config, name)) => {
                let tls = TlsConnector::from(config.clone())
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                self.exchange(tls).await?
            }
            None => self.exchange(tcp).await?,
        };
        let summary = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string();
        if !status.is_success() {
            return Err(summary);
        }
        if let Some(expected) = self.expect_body {
            let text = String::from_utf8_lossy(&body);
            if text.trim() != expected {
                return Err(format!(
                    "{summary} but body {:?}, expected {expected:?}",
                    short(&text)
                ));
            }
        }
        Ok(summary)
    }

    /// One request on a fresh HTTP/1.1 connection; the connection is driven in place (not
    /// spawned) so that the caller's timeout bounds all of it.
    async fn exchange<IO>(&self, io: IO) -> Result<(hyper::StatusCode, Bytes), String>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let path = self
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let authority = self
            .uri
            .authority()
            .map_or_else(|| self.host.clone(), |a| a.to_string());
        let mut request = Request::get(path).header(header::HOST, authority).header(
            header::USER_AGENT,
            concat!("cpvip/", env!("CARGO_PKG_VERSION")),
        );
        if let Some(token) = &self.bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::pin!(exchange);
        tokio::select! {
            result = &mut exchange => result,
            closed = conn => match closed {
                Err(e) => Err(format!("HTTP: {e}")),
                Ok(()) => exchange.await,
            },
        }
    }
}

fn bracket_v6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn short(text: &str) -> String {
    text.trim().chars().take(40).collect()
}
