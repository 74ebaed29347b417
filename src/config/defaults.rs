//! Default values of `cpvip run`'s flags (the help text states the same; a test keeps them equal).

use std::time::Duration;

/// `--interface`.
pub const INTERFACE: &str = "lo";
/// `--kubeconfig` when neither the flag nor `$KUBECONFIG` is set: RKE2's admin kubeconfig.
pub const KUBECONFIG: &str = "/etc/rancher/rke2/rke2.yaml";
/// `--lease-name`.
pub const LEASE_NAME: &str = "cpvip";
/// `--lease-namespace`.
pub const LEASE_NAMESPACE: &str = "kube-system";
/// `--lease-duration`.
pub const LEASE_DURATION: Duration = Duration::from_secs(5);
/// `--renew-deadline`.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(3);
/// `--retry-period`.
pub const RETRY_PERIOD: Duration = Duration::from_secs(1);
/// `--bgp-hold-time`.
/// 3 s, not 9 s: no longer than the Lease duration, so the route of a leader that died without a
/// word is gone from the routers before a successor may hold the Lease (measured: a cut-off
/// leader cost 7.0 s median with 9 s, 4.5 s with 3 s, BIRD router).
pub const BGP_HOLD_TIME: Duration = Duration::from_secs(3);
/// `--bfd-interval`.
pub const BFD_INTERVAL: Duration = Duration::from_millis(100);
/// `--bfd-multiplier`.
pub const BFD_MULTIPLIER: u8 = 3;
/// `--health-interval`.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// `--health-timeout`.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
/// `--health-rise`.
pub const HEALTH_RISE: u32 = 2;
/// `--health-fall`.
pub const HEALTH_FALL: u32 = 3;
/// `--http-listen` (and `cpvip status --http`).
pub const HTTP_LISTEN: &str = "127.0.0.1:2112";
/// `--log-level`.
pub const LOG_LEVEL: &str = "info";
/// client-go's `JitterFactor`: the renew deadline must exceed this times the retry period.
pub const CLIENT_GO_JITTER_FACTOR: f64 = 1.2;
