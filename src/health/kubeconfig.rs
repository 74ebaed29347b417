//! The `apiserver` check's credentials, read from the kubeconfig the election uses: the current
//! context's cluster CA and user (bearer token or client certificate + key, inline `*-data` or
//! files). RKE2's `rke2.yaml` carries a client certificate and a SEC1 EC key inline.

use std::path::Path;

use base64::Engine;
use kube::config::{AuthInfo, Cluster, Kubeconfig};
use secrecy::ExposeSecret;

use super::checks::{ApiAuth, ApiCredentials, CheckError};

/// Reads `path` and returns the current context's credentials.
pub fn api_credentials(path: &Path) -> Result<ApiCredentials, CheckError> {
    let text = std::fs::read_to_string(path).map_err(|source| CheckError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let invalid = |why: String| CheckError::Spec(format!("kubeconfig {}: {why}", path.display()));
    let kubeconfig = Kubeconfig::from_yaml(&text).map_err(|e| invalid(e.to_string()))?;
    let context_name = kubeconfig
        .current_context
        .clone()
        .or_else(|| kubeconfig.contexts.first().map(|c| c.name.clone()))
        .ok_or_else(|| invalid("no context".into()))?;
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| invalid(format!("context {context_name:?} not found")))?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| invalid(format!("cluster {:?} not found", context.cluster)))?;
    let user_name = context.user.clone().unwrap_or_default();
    let user = kubeconfig
        .auth_infos
        .iter()
        .find(|u| u.name == user_name)
        .and_then(|u| u.auth_info.clone())
        .ok_or_else(|| invalid(format!("user {user_name:?} not found")))?;
    Ok(ApiCredentials {
        ca_pem: cluster_ca(&cluster, path)?,
        auth: user_auth(&user, path)?,
    })
}

fn cluster_ca(cluster: &Cluster, path: &Path) -> Result<Option<Vec<u8>>, CheckError> {
    if let Some(data) = &cluster.certificate_authority_data {
        return decode(data, "certificate-authority-data", path).map(Some);
    }
    match &cluster.certificate_authority {
        Some(file) => read(file).map(Some),
        None => Ok(None),
    }
}

fn user_auth(user: &AuthInfo, path: &Path) -> Result<ApiAuth, CheckError> {
    if let Some(token) = &user.token {
        return Ok(ApiAuth::BearerToken(
            token.expose_secret().trim().to_string(),
        ));
    }
    if let Some(file) = &user.token_file {
        let token = String::from_utf8_lossy(&read(file)?).trim().to_string();
        return Ok(ApiAuth::BearerToken(token));
    }
    let cert_pem = match (&user.client_certificate_data, &user.client_certificate) {
        (Some(data), _) => Some(decode(data, "client-certificate-data", path)?),
        (None, Some(file)) => Some(read(file)?),
        (None, None) => None,
    };
    let key_pem = match (&user.client_key_data, &user.client_key) {
        (Some(data), _) => Some(decode(data.expose_secret(), "client-key-data", path)?),
        (None, Some(file)) => Some(read(file)?),
        (None, None) => None,
    };
    match (cert_pem, key_pem) {
        (Some(cert_pem), Some(key_pem)) => Ok(ApiAuth::ClientCert { cert_pem, key_pem }),
        _ => Err(CheckError::Spec(format!(
            "kubeconfig {}: the user has neither a token nor a client certificate and key",
            path.display()
        ))),
    }
}

fn decode(data: &str, field: &str, path: &Path) -> Result<Vec<u8>, CheckError> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| CheckError::Pem(format!("kubeconfig {}: {field}: {e}", path.display())))
}

fn read(file: &str) -> Result<Vec<u8>, CheckError> {
    std::fs::read(file).map_err(|source| CheckError::Io {
        path: file.to_string(),
        source,
    })
}
