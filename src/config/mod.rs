//! The validated, typed configuration of `cpvip run`.
//!
//! [`Config::from_args`] turns the text of [`crate::cli::RunArgs`] into a [`Config`] in one
//! place, so every bad value is reported the same way: one [`ConfigError`] naming the flag,
//! echoing the value and saying what is expected. Checks that span several flags (client-go's
//! lease timing rules, `--bgp-peer` needs `--bgp-as`, duplicates) run here too, before anything
//! starts. Doubtful but workable settings become warnings for `main` to log.

mod asn;
mod community;
pub mod defaults;
mod duration;
mod error;
mod from_args;
mod health;
mod names;
mod peer;
mod rules;
mod secret;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use asn::{AS_TRANS, ASN_EXPECTED, Asn};
pub use community::{Community, LargeCommunity, WELL_KNOWN_COMMUNITIES};
pub use duration::{DURATION_EXPECTED, format_duration, parse_duration};
pub use error::ConfigError;
pub use health::HealthCheckSpec;
pub use names::{HostFacts, check_dns_label, check_dns_subdomain};
pub use peer::{BGP_PORT, MAX_PASSWORD_LEN, PeerSpec, redact_peer_spec};
pub use secret::{REDACTED, Secret};

use duration::serialize_duration;

/// Everything `cpvip run` needs to know, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// The VIPs (`--vip`), in the order given, no duplicates.
    pub vips: Vec<IpAddr>,
    /// Interface the VIPs are bound to (`--interface`).
    pub interface: String,
    /// Who announces (`--mode`).
    pub mode: Mode,
    /// This node's identity in the Lease and in logs (`--node-name`, default the hostname).
    pub node_name: String,
    /// Where the kubeconfig is expected (leader mode); the file may not exist yet.
    pub kubeconfig: Kubeconfig,
    /// Lease election settings (leader mode).
    pub lease: LeaseConfig,
    /// The BGP speaker's settings.
    pub bgp: BgpConfig,
    /// BFD timers for peers with `bfd`.
    pub bfd: BfdConfig,
    /// Local health checks.
    pub health: HealthConfig,
    /// Send gratuitous ARP / unsolicited NA on takeover (`--garp`/`--no-garp`, resolved).
    pub garp: bool,
    /// Listen address of `/metrics`, `/healthz`, `/readyz`, `/status` (`--http-listen`).
    pub http_listen: SocketAddr,
    /// Logging settings.
    pub log: LogConfig,
}

/// A validated configuration and the warnings found on the way (for `main` to log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The configuration.
    pub config: Config,
    /// Doubtful settings that do not stop the daemon, one line each.
    pub warnings: Vec<String>,
}

/// Who announces the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One node, elected by a Lease, serves the VIP.
    Leader,
    /// Every healthy node serves the VIP (ECMP at the routers).
    Anycast,
}

impl Mode {
    /// The flag value naming this mode (`leader`, `anycast`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Leader => "leader",
            Mode::Anycast => "anycast",
        }
    }
}

/// The kubeconfig's path and where that path came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kubeconfig {
    /// The file (it may not exist yet; the election waits for it).
    pub path: PathBuf,
    /// Which rule chose the path.
    pub source: KubeconfigSource,
}

/// Resolution order of the kubeconfig path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KubeconfigSource {
    /// `--kubeconfig` or `CPVIP_KUBECONFIG`.
    Flag,
    /// The first entry of `$KUBECONFIG`.
    Env,
    /// RKE2's `/etc/rancher/rke2/rke2.yaml`.
    Default,
}

/// Lease election timing, with client-go's meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseConfig {
    /// Name of the Lease object (`--lease-name`).
    pub name: String,
    /// Namespace of the Lease (`--lease-namespace`).
    pub namespace: String,
    /// How long a Lease is valid without renewal (`--lease-duration`).
    #[serde(serialize_with = "serialize_duration")]
    pub duration: Duration,
    /// A leader that has not renewed within this stops serving (`--renew-deadline`).
    #[serde(serialize_with = "serialize_duration")]
    pub renew_deadline: Duration,
    /// Interval between acquire / renew attempts (`--retry-period`).
    #[serde(serialize_with = "serialize_duration")]
    pub retry_period: Duration,
}

/// The BGP speaker's settings. Without peers, nothing is announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BgpConfig {
    /// Local AS (`--bgp-as`); always `Some` when `peers` is not empty.
    pub local_as: Option<Asn>,
    /// Router id (`--bgp-router-id`); `None` = derive from the interface towards the first peer.
    pub router_id: Option<Ipv4Addr>,
    /// The neighbours (`--bgp-peer`), no two with the same address.
    pub peers: Vec<PeerSpec>,
    /// Hold time proposed in OPEN, whole seconds, 0 or 3-65535 (`--bgp-hold-time`).
    #[serde(serialize_with = "serialize_duration")]
    pub hold_time: Duration,
    /// Communities on every announcement (`--bgp-community`), no duplicates.
    pub communities: Vec<Community>,
    /// Large communities on every announcement (`--bgp-large-community`), no duplicates.
    pub large_communities: Vec<LargeCommunity>,
    /// MULTI_EXIT_DISC (`--bgp-med`).
    pub med: Option<u32>,
    /// LOCAL_PREF, sent to iBGP peers only (`--bgp-local-pref`).
    pub local_pref: Option<u32>,
    /// Next hop of the announcements (`--bgp-next-hop`); `None` = the session's local address.
    pub next_hop: Option<IpAddr>,
}

/// BFD timers (RFC 5880) for peers with `bfd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BfdConfig {
    /// Desired transmit and required receive interval (`--bfd-interval`), 10ms-60s.
    #[serde(serialize_with = "serialize_duration")]
    pub interval: Duration,
    /// Detection multiplier (`--bfd-multiplier`), 1-255.
    pub multiplier: u8,
}

/// Local health checks. The node serves only while every check is up; no checks = always up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthConfig {
    /// The checks (`--health-check`; empty with `--no-health-check`), no duplicates.
    pub checks: Vec<HealthCheckSpec>,
    /// Interval between two runs of a check (`--health-interval`).
    #[serde(serialize_with = "serialize_duration")]
    pub interval: Duration,
    /// Timeout of one run, at most `interval` (`--health-timeout`).
    #[serde(serialize_with = "serialize_duration")]
    pub timeout: Duration,
    /// Consecutive successes before a check is up (`--health-rise`), at least 1.
    pub rise: u32,
    /// Consecutive failures before a check is down (`--health-fall`), at least 1.
    pub fall: u32,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogConfig {
    /// Output format (`--log-format`).
    pub format: LogFormat,
    /// A tracing filter directive (`--log-level`), already checked; `RUST_LOG` overrides it.
    pub level: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Validates `args`, using `host` for the defaults that depend on the machine.
    pub fn from_args(
        args: &crate::cli::RunArgs,
        host: &HostFacts,
    ) -> Result<Validated, ConfigError> {
        let config = from_args::build(args, host)?;
        rules::check(&config, args)?;
        let warnings = rules::warnings(&config, args);
        Ok(Validated { config, warnings })
    }

    /// A one-line summary for the start-up log; never contains a secret.
    pub fn summary(&self) -> String {
        let vips: Vec<String> = self.vips.iter().map(ToString::to_string).collect();
        let peers: Vec<String> = self
            .bgp
            .peers
            .iter()
            .map(|peer| format!("{}/as{}", peer.address, peer.asn))
            .collect();
        let checks: Vec<String> = self
            .health
            .checks
            .iter()
            .map(HealthCheckSpec::name)
            .collect();
        format!(
            "vips=[{}] interface={} mode={} node={} peers=[{}] checks=[{}] garp={} http={}",
            vips.join(","),
            self.interface,
            self.mode.as_str(),
            self.node_name,
            peers.join(","),
            checks.join(","),
            self.garp,
            self.http_listen
        )
    }
}
