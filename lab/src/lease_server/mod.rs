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
mod discovery;
mod faults;
mod http;
mod listener;
mod pki;
mod query;
mod store;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use k8s_openapi::api::coordination::v1::Lease;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use faults::{FaultState, Faults};
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

/// State shared by every connection.
pub(crate) struct Shared {
    store: Mutex<Store>,
    events: broadcast::Sender<Event>,
    faults: Faults,
    token: String,
    advertise: String,
    started: Instant,
    requests: std::sync::atomic::AtomicU64,
    /// Bumped to drop every open connection (refuse fault, stop).
    epoch: watch::Sender<u64>,
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
        let tls = Arc::new(listener::tls_config(&pki)?);
        let token = cfg.token.clone().unwrap_or_else(store::random_token);
        let url = server_url(addr);

        let kubeconfig_token = cfg.dir.join("kubeconfig-token.yaml");
        let kubeconfig_client_cert = cfg.dir.join("kubeconfig-cert.yaml");
        pki::write_private(&cfg.dir.join("ca.crt"), &pki.ca_cert_pem)?;
        // The serving certificate (valid for 127.0.0.1 too): the lab's stand-in apiservers serve
        // with it, as every RKE2 server's apiserver serves a certificate of the cluster's CA.
        pki::write_private(&cfg.dir.join("server.crt"), &pki.server_cert_pem)?;
        pki::write_private(&cfg.dir.join("server.key"), &pki.server_key_pem)?;
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
            requests: Default::default(),
            epoch: watch::channel(0).0,
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(listener::accept_loop(
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

    /// How many API requests arrived so far (every verb, watches included, faults included).
    pub fn requests(&self) -> u64 {
        self.shared
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many watch streams are open now.
    pub fn watchers(&self) -> usize {
        self.shared.events.receiver_count()
    }

    /// Stops serving (also done on drop).
    pub fn stop(&self) {
        self.stop.send_replace(true);
        self.shared.epoch.send_modify(|e| *e += 1);
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
