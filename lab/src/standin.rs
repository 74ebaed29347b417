//! Stand-ins for what an RKE2 server listens on: the Kubernetes API (6443) and the supervisor
//! (9345), over TLS, each answering with its node's name; plus UDP and TCP echo ports for the
//! client probe. A stand-in's health endpoints (`/readyz`, `/ping`) fail while a switch file
//! exists, so the lab can make a node unhealthy without touching cpvip.
//!
//! HTTP handling is deliberately minimal (one request per connection, `Connection: close`): just
//! enough for curl, cpvip's health checks and the probe.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// What one stand-in process serves.
#[derive(Debug, Clone)]
pub struct StandinConfig {
    /// Node name put in every answer.
    pub node: String,
    /// HTTPS listeners: (address, kind).
    pub https: Vec<(SocketAddr, Kind)>,
    /// UDP echo addresses (answers `<node> <payload>`). Each is bound with IP_FREEBIND so a VIP
    /// can be listed before it is bound, and so that replies leave from the address the probe
    /// targeted (a wildcard socket would answer from the node's own address, which a connected
    /// client socket drops).
    pub udp_echo: Vec<SocketAddr>,
    /// TCP port that writes `<node>\n` and closes.
    pub tcp_hello: Option<SocketAddr>,
    /// Directory of switch files `fail-6443` / `fail-9345`.
    pub switch_dir: PathBuf,
    /// Bearer token `/readyz` accepts, like kube-apiserver with anonymous auth off.
    pub token: Option<String>,
    /// CA whose client certificates `/readyz` accepts (kube-apiserver's client CA).
    pub client_ca: Option<PathBuf>,
    /// Serving certificate and key (PEM); default: a fresh self-signed one.
    pub cert: Option<(PathBuf, PathBuf)>,
}

/// Which server a listener imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// kube-apiserver: `/readyz` needs credentials.
    Apiserver,
    /// RKE2 supervisor: `/ping` answers `pong` without credentials.
    Supervisor,
}

impl Kind {
    fn switch_file(self) -> &'static str {
        match self {
            Kind::Apiserver => "fail-6443",
            Kind::Supervisor => "fail-9345",
        }
    }
}

/// Serves until the process is stopped.
pub async fn serve(config: StandinConfig) -> anyhow::Result<()> {
    let tls = Arc::new(tls_config(&config)?);
    let config = Arc::new(config);
    let mut tasks = tokio::task::JoinSet::new();
    for (addr, kind) in config.https.clone() {
        let listener = TcpListener::bind(addr).await?;
        let (tls, config) = (tls.clone(), config.clone());
        tasks.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        // rustls has verified any certificate against the client CA.
                        let client_cert = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .is_some_and(|c| !c.is_empty());
                        let _ = handle_http(stream, kind, &config, client_cert).await;
                    }
                });
            }
        });
    }
    for addr in config.udp_echo.clone() {
        let socket = udp_freebind(addr)?;
        let node = config.node.clone();
        tasks.spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let mut reply = format!("{node} ").into_bytes();
                reply.extend_from_slice(&buf[..n]);
                let _ = socket.send_to(&reply, from).await;
            }
        });
    }
    if let Some(addr) = config.tcp_hello {
        let listener = TcpListener::bind(addr).await?;
        let node = config.node.clone();
        tasks.spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let line = format!("{node}\n");
                tokio::spawn(async move {
                    let _ = stream.write_all(line.as_bytes()).await;
                });
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

fn udp_freebind(addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv4() {
        socket.set_freebind_v4(true)?;
    } else {
        socket.set_only_v6(true)?;
        socket.set_freebind_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(socket.into())?)
}

async fn handle_http<S>(
    mut stream: S,
    kind: Kind,
    config: &StandinConfig,
    client_cert: bool,
) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/");
    let open = config.token.is_none() && config.client_ca.is_none();
    let bearer = config.token.as_ref().is_some_and(|token| {
        text.lines().any(|l| {
            l.to_ascii_lowercase().starts_with("authorization:")
                && l.trim_end().ends_with(&format!("Bearer {token}"))
        })
    });
    let authorized = open || bearer || client_cert;
    let failing = config.switch_dir.join(kind.switch_file()).exists();
    let (status, body) = match (kind, path) {
        (Kind::Apiserver, "/readyz") if !authorized => {
            ("401 Unauthorized", "Unauthorized\n".to_owned())
        }
        (Kind::Apiserver, "/readyz") if failing => (
            "500 Internal Server Error",
            "readyz check failed\n".to_owned(),
        ),
        (Kind::Apiserver, "/readyz") => ("200 OK", "ok".to_owned()),
        (Kind::Supervisor, "/ping") if failing => {
            ("500 Internal Server Error", "not ready\n".to_owned())
        }
        (Kind::Supervisor, "/ping") => ("200 OK", "pong".to_owned()),
        _ => ("200 OK", format!("{}\n", config.node)),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Node: {}\r\nConnection: close\r\n\r\n{body}",
        body.len(),
        config.node
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn tls_config(config: &StandinConfig) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    let (chain, key) = match &config.cert {
        Some((cert, key)) => (
            rustls::pki_types::CertificateDer::pem_file_iter(cert)?
                .collect::<Result<Vec<_>, _>>()?,
            rustls::pki_types::PrivateKeyDer::from_pem_file(key)?,
        ),
        None => {
            let cert = rcgen::generate_simple_self_signed(vec![
                config.node.clone(),
                "localhost".to_owned(),
            ])?;
            let key =
                rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
            (vec![cert.cert.der().clone()], key)
        }
    };
    let client_ca = config.client_ca.as_deref();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in rustls::pki_types::CertificateDer::pem_file_iter(path)? {
                roots.add(ca?)?;
            }
            // Optional: requests without a certificate still reach /readyz's bearer-token check.
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    Ok(builder.with_single_cert(chain, key)?)
}
