//! Test-only: a certificate authority (rcgen) and tiny HTTP/HTTPS servers on 127.0.0.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A CA with a server certificate for 127.0.0.1 and ::1 and a client certificate.
pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    pub client_key_pkcs8_der: Vec<u8>,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("self-signed CA");
        let server_key = KeyPair::generate().expect("server key");
        let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "::1".to_string()])
            .expect("server params")
            .signed_by(&server_key, &ca)
            .expect("server certificate");
        let client_key = KeyPair::generate().expect("client key");
        let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        client_params
            .distinguished_name
            .push(DnType::CommonName, "system:admin");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params
            .signed_by(&client_key, &ca)
            .expect("client certificate");
        Self {
            ca_pem: ca.pem(),
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
            client_key_pkcs8_der: client_key.serialize_der(),
        }
    }

    /// The client key as RKE2's rke2.yaml carries it: SEC1 "EC PRIVATE KEY" with the curve
    /// parameters, converted from the PKCS#8 ring generated.
    pub fn client_key_sec1_pem(&self) -> String {
        sec1_pem_from_pkcs8_p256(&self.client_key_pkcs8_der)
    }
}

/// What the handler sees: the request and whether the client presented a certificate.
pub type Handler = Arc<dyn Fn(&Request<Incoming>, bool) -> (u16, String) + Send + Sync>;

/// A server task, stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Plain HTTP on 127.0.0.1, an ephemeral port.
pub async fn http_server(handler: Handler) -> TestServer {
    serve(None, handler).await
}

/// HTTPS on 127.0.0.1 with the PKI's server certificate; with `client_ca` it asks for (but does
/// not require) a client certificate signed by the PKI's CA, as kube-apiserver does.
pub async fn https_server(pki: &Pki, client_ca: bool, handler: Handler) -> TestServer {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let builder = if client_ca {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA cert");
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .expect("client verifier");
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let certs = CertificateDer::pem_slice_iter(pki.server_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("server cert PEM");
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).expect("key PEM");
    let config = builder.with_single_cert(certs, key).expect("server config");
    serve(Some(TlsAcceptor::from(Arc::new(config))), handler).await
}

async fn serve(tls: Option<TlsAcceptor>, handler: Handler) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tls = tls.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let client_cert = stream.get_ref().1.peer_certificates().is_some();
                        serve_http(TokioIo::new(stream), handler, client_cert).await;
                    }
                    None => serve_http(TokioIo::new(tcp), handler, false).await,
                }
            });
        }
    });
    TestServer { addr, task }
}

async fn serve_http<IO>(io: IO, handler: Handler, client_cert: bool)
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let (status, body) = handler(&req, client_cert);
        async move {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() =
                hyper::StatusCode::from_u16(status).expect("valid status in test");
            Ok::<_, Infallible>(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

/// PKCS#8 (ring's layout: ECPrivateKey without parameters) → SEC1 with the P-256 OID in [0],
/// as OpenSSL writes it.
fn sec1_pem_from_pkcs8_p256(pkcs8: &[u8]) -> String {
    let (_, outer, _) = tlv(pkcs8);
    let (_, _version, rest) = tlv(outer);
    let (_, _algorithm, rest) = tlv(rest);
    let (tag, ec_private_key, _) = tlv(rest);
    assert_eq!(tag, 0x04, "PKCS#8 privateKey OCTET STRING");
    let (_, fields, _) = tlv(ec_private_key);
    let (_, version, rest) = tlv(fields);
    let (_, secret, rest) = tlv(rest);
    let mut body = Vec::new();
    body.extend(der(0x02, version));
    body.extend(der(0x04, secret));
    // [0] namedCurve prime256v1 (1.2.840.10045.3.1.7)
    body.extend(der(
        0xa0,
        &der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
    ));
    body.extend(rest.iter().copied()); // [1] publicKey, unchanged
    let sec1 = der(0x30, &body);
    let mut pem = String::from("-----BEGIN EC PRIVATE KEY-----\n");
    let encoded = base64(&sec1);
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("ascii"));
        pem.push('\n');
    }
    pem.push_str("-----END EC PRIVATE KEY-----\n");
    pem
}

/// Splits one DER element: (tag, contents, rest).
fn tlv(data: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = data[0];
    let (len, header) = match data[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => (usize::from(data[2]), 3),
        0x82 => (usize::from(data[2]) << 8 | usize::from(data[3]), 4),
        other => panic!("unexpected DER length byte {other:#x}"),
    };
    (tag, &data[header..header + len], &data[header + len..])
}

fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match contents.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(contents);
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
