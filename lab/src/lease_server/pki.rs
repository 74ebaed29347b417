//! Throw-away PKI for the Lease test server: a self-signed CA, a server certificate for the
//! listen address, and a client certificate with an EC P-256 key written as SEC1
//! "EC PRIVATE KEY" PEM, the exact shape of the key in RKE2's `rke2.yaml`. Also writes the two
//! kubeconfig variants (bearer token, client certificate).

use std::net::IpAddr;
use std::path::Path;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Errors while making certificates or writing files.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused the parameters.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The PKCS#8 document produced for a P-256 key did not have the expected layout.
    #[error("unexpected PKCS#8 layout for a P-256 key")]
    Pkcs8Layout,
    /// Writing a file failed.
    #[error("write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Everything the server and the kubeconfig writers need, in PEM.
#[derive(Clone)]
pub struct Pki {
    /// CA certificate (PEM); clients trust it, the server verifies client certificates with it.
    pub ca_cert_pem: String,
    /// Server certificate (PEM), SANs: the listen IP, 127.0.0.1, ::1, localhost.
    pub server_cert_pem: String,
    /// Server key, PKCS#8 PEM.
    pub server_key_pem: String,
    /// Client certificate (PEM), CN `system:admin`, O `system:masters`, like RKE2's admin.
    pub client_cert_pem: String,
    /// Client key, SEC1 "EC PRIVATE KEY" PEM (RKE2's format).
    pub client_key_sec1_pem: String,
}

impl Pki {
    /// Makes a fresh CA and issues the server and client certificates.
    pub fn generate(server_ips: &[IpAddr]) -> Result<Self, PkiError> {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "cpvip-lab-server-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut server_params = CertificateParams::new(vec!["localhost".to_string()])?;
        let mut ips: Vec<IpAddr> = vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ];
        for ip in server_ips {
            if !ips.contains(ip) && !ip.is_unspecified() {
                ips.push(*ip);
            }
        }
        server_params
            .subject_alt_names
            .extend(ips.into_iter().map(SanType::IpAddress));
        server_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.use_authority_key_identifier_extension = true;
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let client_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, "system:admin");
        client_params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client_params.use_authority_key_identifier_extension = true;
        let client_cert = client_params.signed_by(&client_key, &issuer)?;
        let sec1 = p256_pkcs8_to_sec1(client_key.serialized_der())?;

        Ok(Self {
            ca_cert_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_sec1_pem: pem_encode("EC PRIVATE KEY", &sec1),
        })
    }
}

/// The fixed PKCS#8 prefix ring emits for a P-256 key, up to the 32-byte private scalar:
/// PrivateKeyInfo { v1, AlgorithmIdentifier { ecPublicKey, prime256v1 }, OCTET STRING {
/// ECPrivateKey { version 1, OCTET STRING (32) ...
const RING_P256_PKCS8_PREFIX: [u8; 36] = [
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02,
    0x01, 0x01, 0x04, 0x20,
];
/// After the scalar: `[1] { BIT STRING (unused bits 0) 0x04 X Y }`.
const RING_P256_PKCS8_PUBKEY_TAG: [u8; 5] = [0xa1, 0x44, 0x03, 0x42, 0x00];
/// `[0] { OID prime256v1 }`, the curve parameters Go's x509.MarshalECPrivateKey includes.
const SEC1_P256_PARAMETERS: [u8; 12] = [
    0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
];

/// Re-encodes ring's PKCS#8 P-256 key as the SEC1 ECPrivateKey that Go (and so RKE2) writes:
/// `SEQUENCE { 1, OCTET STRING d, [0] prime256v1, [1] BIT STRING Q }` (121 bytes).
pub fn p256_pkcs8_to_sec1(pkcs8: &[u8]) -> Result<Vec<u8>, PkiError> {
    let scalar_at = RING_P256_PKCS8_PREFIX.len();
    let pubkey_tag_at = scalar_at + 32;
    let point_at = pubkey_tag_at + RING_P256_PKCS8_PUBKEY_TAG.len();
    if pkcs8.len() != point_at + 65
        || pkcs8[..scalar_at] != RING_P256_PKCS8_PREFIX
        || pkcs8[pubkey_tag_at..point_at] != RING_P256_PKCS8_PUBKEY_TAG
    {
        return Err(PkiError::Pkcs8Layout);
    }
    let scalar = &pkcs8[scalar_at..pubkey_tag_at];
    let point = &pkcs8[point_at..];
    let mut out = vec![0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
    out.extend_from_slice(scalar);
    out.extend_from_slice(&SEC1_P256_PARAMETERS);
    out.extend_from_slice(&RING_P256_PKCS8_PUBKEY_TAG);
    out.extend_from_slice(point);
    Ok(out)
}

/// PEM with 64-character lines, as Go's encoding/pem writes it.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// Kubeconfig authenticating with a bearer token.
pub fn kubeconfig_token(server_url: &str, ca_pem: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server_url}\n  name: default\ncontexts:\n- context:\n    cluster: default\n    user: default\n  name: default\ncurrent-context: default\npreferences: {{}}\nusers:\n- name: default\n  user:\n    token: {token}\n",
        ca = b64(ca_pem),
    )
}

/// Kubeconfig authenticating with a client certificate, laid out like RKE2's `rke2.yaml`.
pub fn kubeconfig_client_cert(server_url: &str, pki: &Pki) -> String {
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server_url}\n  name: default\ncontexts:\n- context:\n    cluster: default\n    user: default\n  name: default\ncurrent-context: default\nkind: Config\npreferences: {{}}\nusers:\n- name: default\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
        ca = b64(&pki.ca_cert_pem),
        cert = b64(&pki.client_cert_pem),
        key = b64(&pki.client_key_sec1_pem),
    )
}

/// Writes `contents` to `path` with mode 0600 (it holds credentials).
pub fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |source| PkiError::Write {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(contents.as_bytes()).map_err(err)?;
    drop(f);
    // Rename so a reader waiting for the file never sees half of it.
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_key_is_sec1_p256_that_rustls_loads() {
        let pki = Pki::generate(&[]).expect("generate");
        assert!(
            pki.client_key_sec1_pem
                .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
        );
        let der = pem_body(&pki.client_key_sec1_pem);
        assert_eq!(der.len(), 121, "Go writes 121-byte P-256 SEC1 keys");
        let key = rustls::pki_types::PrivateKeyDer::Sec1(der.into());
        let provider = rustls::crypto::ring::default_provider();
        provider
            .key_provider
            .load_private_key(key)
            .expect("rustls/ring accept the SEC1 key");
    }

    #[test]
    fn rejects_unexpected_pkcs8() {
        assert!(p256_pkcs8_to_sec1(&[0x30, 0x00]).is_err());
    }

    fn pem_body(pem: &str) -> Vec<u8> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64")
    }
}
