//! The Lease test server: a small HTTPS server that speaks the Kubernetes REST API for
//! `coordination.k8s.io/v1` Leases the way kube-apiserver does (GET, LIST, WATCH, POST, PUT,
//! DELETE; `resourceVersion` optimistic concurrency; `Status` errors; bearer-token and
//! client-certificate authentication), and writes kubeconfig files that a Kubernetes client uses
//! unchanged. Faults can be switched on to imitate an apiserver outage: stall every request,
//! refuse connections, or answer 500.
//!
//! Used in-process (`LeaseServer::start`) by tests, or as a process (`cpvip-lab lease-server`) so
//! that it can run inside any network namespace. The admin endpoint (plain HTTP, loopback) takes
//! `POST /stall?seconds=N`, `POST /refuse?seconds=N`, `POST /fail?seconds=N` (no `seconds`: until
//! cleared), `POST /clear`, and answers `GET /leases` and `GET /writes` (the commit log).

mod admin;
pub mod cli;
mod http;
mod pki;
mod store;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_openapi::api::coordination::v1::Lease;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use pki::{Pki, PkiError, p256_pkcs8_to_sec1};
pub use store::{EventType, WriteRecord};

use store::{Event, Store};

/// How the server is started.
#[derive(Clone, Debug)]
pub struct LeaseServerConfig {
    /// HTTPS listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where the CA, the kubeconfigs and `server.json` are written (created if missing).
    pub dir: PathBuf,
    /// Bearer token accepted; None makes a random one.
    pub token: Option<String>,
    /// Plain-HTTP admin (fault switches) listen address, loopback; None: no admin endpoint.
    pub admin_listen: Option<SocketAddr>,
    /// Extra IPs for the server certificate (the listen IP, 127.0.0.1 and ::1 are always in).
    pub extra_sans: Vec<IpAddr>,
}

impl LeaseServerConfig {
    /// Loopback on a random port, admin endpoint on another random loopback port.
    pub fn loopback(dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            dir: dir.into(),
            token: None,
            admin_listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            extra_sans: Vec::new(),
        }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum LeaseServerError {
    /// Binding a listener failed.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Making certificates or writing files failed.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// TLS configuration was refused.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("client verifier: {0}")]
    Verifier(String),
    /// Creating the directory failed.
    #[error("create {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Fault switches. Each is active until its deadline (far future = until cleared).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultState {
    /// Requests are held (not answered) until then.
    pub stall_until: Option<Instant>,
    /// Requests are answered 500 InternalError until then.
    pub fail_until: Option<Instant>,
    /// The listener is closed (connections refused, open ones dropped) until then.
    pub refuse_until: Option<Instant>,
}

/// The fault switches of one server; cheap to clone.
#[derive(Clone)]
pub struct Faults {
    tx: Arc<watch::Sender<FaultState>>,
}

impl Faults {
    fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(FaultState::default()).0),
        }
    }

    fn until(d: Option<Duration>) -> Option<Instant> {
        // "Until cleared" is a deadline ten years away.
        Some(Instant::now() + d.unwrap_or(Duration::from_secs(10 * 365 * 86_400)))
    }

    /// Holds every request for `d` (None: until [`Faults::clear`]), then serves it.
    pub fn stall(&self, d: Option<Duration>) {
        self.tx.send_modify(|s| s.stall_until = Self::until(d));
    }

    /// Answers every request with 500 for `d` (None: until cleared).
    pub fn fail(&self, d: Option<Duration>) {
        self.tx.send_modify(|s| s.fail_until = Self::until(d));
    }

    /// Closes the listener and every open connection for `d` (None: until cleared).
    pub fn refuse(&self, d: Option<Duration>) {
        self.tx.send_modify(|s| s.refuse_until = Self::until(d));
    }

    /// Clears every fault.
    pub fn clear(&self) {
        self.tx.send_replace(FaultState::default());
    }

    /// Current switches.
    pub fn state(&self) -> FaultState {
        *self.tx.borrow()
    }

    fn active(until: Option<Instant>) -> bool {
        until.is_some_and(|t| t > Instant::now())
    }

    fn failing(&self) -> bool {
        Self::active(self.tx.borrow().fail_until)
    }

    fn refusing(&self) -> bool {
        Self::active(self.tx.borrow().refuse_until)
    }

    async fn wait_while_stalled(&self) {
        let mut rx = self.tx.subscribe();
        loop {
            let until = rx.borrow_and_update().stall_until;
            match until {
                Some(t) if t > Instant::now() => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t.into()) => {}
                        _ = rx.changed() => {}
                    }
                }
                _ => return,
            }
        }
    }
}

/// State shared by every connection.
pub(crate) struct Shared {
    store: Mutex<Store>,
    events: broadcast::Sender<Event>,
    faults: Faults,
    token: String,
    advertise: String,
    started: Instant,
}

impl Shared {
    fn read<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.store.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs a write and publishes its event to the watchers (under the lock, so in order).
    fn write(
        &self,
        f: impl FnOnce(&mut Store) -> Result<Event, store::StoreError>,
    ) -> Result<Event, store::StoreError> {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let before = store.resource_version();
        let result = f(&mut store);
        if let Ok(e) = &result
            && e.rv > before
        {
            // No receivers is fine.
            let _ = self.events.send(e.clone());
        }
        result
    }
}

/// A running Lease test server. Dropping it stops it.
pub struct LeaseServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    kubeconfig_token: PathBuf,
    kubeconfig_client_cert: PathBuf,
    pki: Pki,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl LeaseServer {
    /// Generates the PKI, writes `ca.crt`, `kubeconfig-token.yaml`, `kubeconfig-cert.yaml` and
    /// `server.json` into `cfg.dir`, and starts serving. Must be called inside a tokio runtime.
    pub async fn start(cfg: LeaseServerConfig) -> Result<LeaseServer, LeaseServerError> {
        std::fs::create_dir_all(&cfg.dir).map_err(|source| LeaseServerError::Dir {
            path: cfg.dir.clone(),
            source,
        })?;
        let listener =
            TcpListener::bind(cfg.listen)
                .await
                .map_err(|source| LeaseServerError::Bind {
                    addr: cfg.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| LeaseServerError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let mut sans = cfg.extra_sans.clone();
        sans.push(addr.ip());
        let pki = Pki::generate(&sans)?;
        let tls = Arc::new(tls_config(&pki)?);
        let token = cfg.token.clone().unwrap_or_else(store::random_token);
        let url = server_url(addr);

        let kubeconfig_token = cfg.dir.join("kubeconfig-token.yaml");
        let kubeconfig_client_cert = cfg.dir.join("kubeconfig-cert.yaml");
        pki::write_private(&cfg.dir.join("ca.crt"), &pki.ca_cert_pem)?;
        pki::write_private(
            &kubeconfig_token,
            &pki::kubeconfig_token(&url, &pki.ca_cert_pem, &token),
        )?;
        pki::write_private(
            &kubeconfig_client_cert,
            &pki::kubeconfig_client_cert(&url, &pki),
        )?;

        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            events: broadcast::channel(4096).0,
            faults: Faults::new(),
            token,
            advertise: addr.to_string(),
            started: Instant::now(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(accept_loop(
            listener,
            addr,
            tls,
            shared.clone(),
            stop_rx.clone(),
        ))];
        let mut admin_addr = None;
        if let Some(a) = cfg.admin_listen {
            let l = TcpListener::bind(a)
                .await
                .map_err(|source| LeaseServerError::Bind { addr: a, source })?;
            admin_addr = Some(
                l.local_addr()
                    .map_err(|source| LeaseServerError::Bind { addr: a, source })?,
            );
            tasks.push(tokio::spawn(admin::serve(l, shared.clone(), stop_rx)));
        }
        let server = LeaseServer {
            shared,
            addr,
            admin_addr,
            kubeconfig_token,
            kubeconfig_client_cert,
            pki,
            tasks,
            stop,
        };
        pki::write_private(&cfg.dir.join("server.json"), &server.describe().to_string())?;
        Ok(server)
    }

    /// What a separate process prints and writes to `server.json`.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "url": self.url(),
            "admin": self.admin_addr.map(|a| format!("http://{a}")),
            "token": self.token(),
            "kubeconfig_token": self.kubeconfig_token,
            "kubeconfig_cert": self.kubeconfig_client_cert,
        })
    }

    /// HTTPS address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://IP:PORT`.
    pub fn url(&self) -> String {
        server_url(self.addr)
    }

    /// Admin endpoint address, if any.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The accepted bearer token.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Kubeconfig with the bearer token.
    pub fn kubeconfig_token(&self) -> &Path {
        &self.kubeconfig_token
    }

    /// Kubeconfig with the client certificate and SEC1 EC key (RKE2's `rke2.yaml` shape).
    pub fn kubeconfig_client_cert(&self) -> &Path {
        &self.kubeconfig_client_cert
    }

    /// The generated certificates.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// The fault switches.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The stored Lease, as a GET would return it.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Lease> {
        self.shared.read(|s| s.get(namespace, name).ok())
    }

    /// Every committed write so far, in commit order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.shared.read(|s| s.writes().to_vec())
    }

    /// Stops serving (also done on drop).
    pub fn stop(&self) {
        self.stop.send_replace(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for LeaseServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn server_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, addr.port()))
}

fn tls_config(pki: &Pki) -> Result<rustls::ServerConfig, LeaseServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem_certs(&pki.ca_cert_pem) {
        roots.add(cert)?;
    }
    // Like kube-apiserver: a client certificate is optional (token auth), but if one is
    // presented it must chain to our CA.
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| LeaseServerError::Verifier(e.to_string()))?;
    let key = pem_key(&pki.server_key_pem).ok_or(PkiError::Pkcs8Layout)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(pem_certs(&pki.server_cert_pem), key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

fn pem_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .collect()
}

fn pem_key(pem: &str) -> Option<rustls::pki_types::PrivateKeyDer<'static>> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).ok()
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut faults = shared.faults.tx.subscribe();
    // Bumped to drop every open connection (refuse fault, stop).
    let (epoch_tx, _) = watch::channel(0u64);
    let mut listener = Some(listener);
    loop {
        if *stop.borrow() {
            epoch_tx.send_modify(|e| *e += 1);
            return;
        }
        if shared.faults.refusing() {
            if listener.take().is_some() {
                epoch_tx.send_modify(|e| *e += 1);
                tracing::info!("lease-server: refusing connections");
            }
            let until = faults.borrow_and_update().refuse_until;
            tokio::select! {
                _ = tokio::time::sleep_until(until.unwrap_or_else(Instant::now).into()) => {}
                _ = faults.changed() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let Some(l) = listener.as_ref() else {
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    tracing::info!("lease-server: accepting connections again");
                    listener = Some(l);
                }
                Err(e) => {
                    tracing::warn!("lease-server: rebind {addr}: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => match accepted {
                Ok((tcp, _)) => {
                    tokio::spawn(serve_connection(tcp, acceptor.clone(), shared.clone(), epoch_tx.subscribe()));
                }
                Err(e) => {
                    tracing::warn!("lease-server: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            _ = faults.changed() => {}
            _ = stop.changed() => {}
        }
    }
}

async fn serve_connection(
    tcp: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    mut epoch: watch::Receiver<u64>,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!("lease-server: TLS handshake: {e}");
            return;
        }
        Err(_) => return,
    };
    // With allow_unauthenticated, rustls fails the handshake on a bad certificate, so any
    // certificate still here chains to our CA.
    let client_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .is_some_and(|c| !c.is_empty());
    let svc = hyper::service::service_fn(move |req| http::handle(shared.clone(), client_cert, req));
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc);
    tokio::select! {
        _ = conn => {}
        _ = epoch.changed() => {}
    }
}
