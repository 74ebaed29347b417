//! TLS termination and connection handling of the Lease test server: rustls with an optional,
//! CA-verified client certificate (like kube-apiserver), HTTP/1.1, and the refuse fault (listener
//! closed, open connections dropped, the same address bound again afterwards).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{LeaseServerError, Pki, PkiError, Shared, http};

pub(super) fn tls_config(pki: &Pki) -> Result<rustls::ServerConfig, LeaseServerError> {
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

pub(super) async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut faults = shared.faults.tx.subscribe();
    // Bumped to drop every open connection (refuse fault, stop).
    let epoch_tx = &shared.epoch;
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
                    tokio::spawn(serve_connection(tcp, acceptor.clone(), shared.clone(), shared.epoch.subscribe()));
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
