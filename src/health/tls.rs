//! TLS client configuration for the HTTPS checks.
//!
//! Verification policy: with a CA (`ca=` in the spec, or the kubeconfig's CA for `apiserver`)
//! the server certificate is verified against it; without one, a target on 127.0.0.0/8 or ::1
//! is not verified (the local apiserver and supervisor serve certificates of a cluster CA the
//! host may not trust, and a loopback peer is this host); anything else is verified against the
//! system roots. Host names are never treated as loopback.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::checks::CheckError;

/// How the server certificate is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Against the given CA certificates (PEM).
    Ca(Vec<u8>),
    /// Not at all: only ever chosen for a loopback IP address.
    SkipForLoopback,
    /// Against the system's trusted roots.
    SystemRoots,
}

/// The policy: a CA if given, else skip for a loopback IP, else the system roots.
pub fn verification_for(host: &str, ca_pem: Option<&[u8]>) -> Verification {
    if let Some(ca) = ca_pem {
        return Verification::Ca(ca.to_vec());
    }
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) if ip.is_loopback() => Verification::SkipForLoopback,
        _ => Verification::SystemRoots,
    }
}

/// A client certificate and its key (PEM: PKCS#8, PKCS#1 or SEC1 "EC PRIVATE KEY").
pub struct ClientIdentity<'a> {
    /// Certificate chain, leaf first.
    pub cert_pem: &'a [u8],
    /// Private key.
    pub key_pem: &'a [u8],
}

/// Builds a client configuration (ring provider, HTTP/1.1 only).
pub fn client_config(
    verification: &Verification,
    identity: Option<ClientIdentity<'_>>,
) -> Result<Arc<ClientConfig>, CheckError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CheckError::Tls(e.to_string()))?;
    let builder = match verification {
        Verification::Ca(pem) => builder.with_root_certificates(roots_from_pem(pem)?),
        Verification::SystemRoots => builder.with_root_certificates(system_roots()?),
        Verification::SkipForLoopback => {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(LoopbackNoVerify(
                    provider.signature_verification_algorithms,
                )))
        }
    };
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let certs = CertificateDer::pem_slice_iter(id.cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CheckError::Pem(format!("client certificate: {e}")))?;
            if certs.is_empty() {
                return Err(CheckError::Pem(
                    "client certificate: no CERTIFICATE block".into(),
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(id.key_pem)
                .map_err(|e| CheckError::Pem(format!("client key: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| CheckError::Tls(format!("client certificate: {e}")))?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, CheckError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| CheckError::Pem(format!("CA: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| CheckError::Pem(format!("CA: {e}")))?;
    }
    if roots.is_empty() {
        return Err(CheckError::Pem("CA: no CERTIFICATE block".into()));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, CheckError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        return Err(CheckError::Tls(format!(
            "no usable system root certificates ({} errors)",
            loaded.errors.len()
        )));
    }
    Ok(roots)
}

/// Accepts any server certificate but still checks the handshake signatures (so the session
/// keys belong to whoever holds the certificate's key). Only built for loopback targets.
#[derive(Debug)]
struct LoopbackNoVerify(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for LoopbackNoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_is_skipped_only_for_loopback_ips_without_a_ca() {
        assert_eq!(
            verification_for("127.0.0.1", None),
            Verification::SkipForLoopback
        );
        assert_eq!(
            verification_for("127.3.2.1", None),
            Verification::SkipForLoopback
        );
        assert_eq!(verification_for("::1", None), Verification::SkipForLoopback);
        assert_eq!(
            verification_for("[::1]", None),
            Verification::SkipForLoopback
        );
        assert_eq!(
            verification_for("localhost", None),
            Verification::SystemRoots
        );
        assert_eq!(
            verification_for("10.0.0.1", None),
            Verification::SystemRoots
        );
        assert_eq!(
            verification_for("::ffff:127.0.0.1", None),
            Verification::SystemRoots
        );
        assert_eq!(
            verification_for("127.0.0.1", Some(b"pem")),
            Verification::Ca(b"pem".to_vec())
        );
    }

    #[test]
    fn bad_pem_is_an_error_not_a_panic() {
        let err = client_config(&Verification::Ca(b"garbage".to_vec()), None)
            .expect_err("no certificate in garbage");
        assert!(err.to_string().contains("CA"), "{err}");
        let id = ClientIdentity {
            cert_pem: b"",
            key_pem: b"",
        };
        assert!(client_config(&Verification::SkipForLoopback, Some(id)).is_err());
    }
}
