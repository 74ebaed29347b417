//! Which kubeconfig to use and how it becomes a Kubernetes client: `--kubeconfig`, else
//! `$KUBECONFIG` (first entry), else RKE2's `/etc/rancher/rke2/rke2.yaml`. A missing file is waited
//! for (a systemd unit may start before rke2-server writes it), with a log line every 30 s; an
//! unreadable or invalid one is retried with back-off. Nothing here gives up.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Where RKE2 writes its admin kubeconfig.
pub const RKE2_KUBECONFIG: &str = "/etc/rancher/rke2/rke2.yaml";

/// How often "still waiting" is logged.
pub const WAIT_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Errors turning a kubeconfig file into a client.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// The file could not be read or parsed.
    #[error("kubeconfig {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: kube::config::KubeconfigError,
    },
    /// The client could not be built from it (bad certificate, key, URL...).
    #[error("kubeconfig {path}: {source}")]
    Client {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: kube::Error,
    },
}

/// The kubeconfig path: the flag, else `$KUBECONFIG`'s first entry, else RKE2's.
pub fn resolve(flag: Option<&Path>, env_kubeconfig: Option<&OsStr>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    env_kubeconfig
        .and_then(|v| std::env::split_paths(v).find(|p| !p.as_os_str().is_empty()))
        .unwrap_or_else(|| PathBuf::from(RKE2_KUBECONFIG))
}

/// [`resolve`] with this process's `$KUBECONFIG`.
pub fn resolve_from_env(flag: Option<&Path>) -> PathBuf {
    resolve(flag, std::env::var_os("KUBECONFIG").as_deref())
}

/// A client for the file's current context; `connect_timeout` bounds TCP+TLS connection setup.
pub async fn client_from_file(
    path: &Path,
    connect_timeout: Duration,
) -> Result<kube::Client, KubeconfigError> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|source| KubeconfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|source| KubeconfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
    config.connect_timeout = Some(connect_timeout);
    kube::Client::try_from(config).map_err(|source| KubeconfigError::Client {
        path: path.to_path_buf(),
        source,
    })
}

/// Returns once `path` exists, checking every `poll` and logging every [`WAIT_LOG_INTERVAL`].
pub async fn wait_for_file(path: &Path, poll: Duration) {
    let started = tokio::time::Instant::now();
    let mut next_log = started;
    loop {
        if tokio::fs::try_exists(path).await.unwrap_or(false) {
            if next_log > started {
                tracing::info!(path = %path.display(), "kubeconfig appeared");
            }
            return;
        }
        let now = tokio::time::Instant::now();
        if now >= next_log {
            tracing::info!(
                path = %path.display(),
                waited_s = (now - started).as_secs(),
                "waiting for the kubeconfig to appear (leader election starts when it does; \
                 set --kubeconfig or $KUBECONFIG to use another file)"
            );
            next_log = now + WAIT_LOG_INTERVAL;
        }
        tokio::time::sleep(poll).await;
    }
}

/// Waits for the file, then builds a client, retrying with back-off (capped at 30 s) for as long
/// as it takes.
pub async fn connect(path: &Path, poll: Duration, connect_timeout: Duration) -> kube::Client {
    let mut delay = poll;
    loop {
        wait_for_file(path, poll).await;
        match client_from_file(path, connect_timeout).await {
            Ok(client) => return client,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "cannot use the kubeconfig yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_order() {
        let flag = Path::new("/flag.yaml");
        assert_eq!(
            resolve(Some(flag), Some(OsStr::new("/env.yaml"))),
            PathBuf::from("/flag.yaml")
        );
        assert_eq!(
            resolve(None, Some(OsStr::new("/a.yaml:/b.yaml"))),
            PathBuf::from("/a.yaml")
        );
        assert_eq!(
            resolve(None, Some(OsStr::new(""))),
            PathBuf::from(RKE2_KUBECONFIG)
        );
        assert_eq!(resolve(None, None), PathBuf::from(RKE2_KUBECONFIG));
    }
}
