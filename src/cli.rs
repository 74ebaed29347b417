//! The `cpvip` command line: clap types only, no validation.
//!
//! Every `run` flag is read as text (or as a plain switch) and turned into a typed, validated
//! [`crate::config::Config`] by the `config` module, so that every bad value is reported in one
//! uniform format (`error: --flag "value": what is expected`) and exits with status 2.
//! Defaults therefore live in `config`, not in clap; the help text states them (a test keeps the
//! two in step), and an unset flag stays `None`, which lets [`RunArgs::to_env`] return exactly the
//! flags the user gave.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Prefix of every environment variable that stands in for a flag.
pub const ENV_PREFIX: &str = "CPVIP_";

/// Separator of several values in the environment variable of a repeatable flag (and on the
/// command line). Not a comma, because peer and health-check specs contain commas.
pub const LIST_SEPARATOR: char = ';';

/// The environment variable that stands in for `--flag-name`: `CPVIP_FLAG_NAME`.
pub fn env_var_for(long_flag: &str) -> String {
    format!("{ENV_PREFIX}{}", long_flag.to_uppercase().replace('-', "_"))
}

/// The version and the git commit it was built from (see `build.rs`), for `--version` and
/// `cpvip version`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CPVIP_GIT_COMMIT"),
    ")"
);

/// `cpvip`: one virtual IP for a Kubernetes control plane, announced by BGP.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "cpvip", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `cpvip`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the daemon: health checks, election, VIP on the host, BGP announcements.
    // Negative numbers reach the config check, which says what range is expected.
    #[command(allow_negative_numbers = true)]
    Run(RunArgs),
    /// Print a deployment manifest (static pod, systemd unit and its env file, or RBAC) for the given run flags.
    ///
    /// Static pod, the same file on every server: `cpvip manifest pod --vip ...`, saved as
    /// /var/lib/rancher/rke2/agent/pod-manifests/cpvip.yaml. systemd: `cpvip manifest systemd`
    /// saved as /etc/systemd/system/cpvip.service, and `cpvip manifest env --vip ...` saved as
    /// /etc/default/cpvip with mode 0600. The run flags are validated; only those given are
    /// passed on, so the node name and the BGP router id are found on each node at run time.
    /// Warnings (a password in the output, a node-specific flag) go to stderr.
    #[command(allow_negative_numbers = true)]
    Manifest(ManifestArgs),
    /// Ask a running daemon for its state (leader, VIP, health, BGP peers).
    Status(StatusArgs),
    /// Print the version and the git commit it was built from.
    Version,
}

/// Arguments of `cpvip manifest`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ManifestArgs {
    /// Which manifest to print (to stdout; warnings go to stderr).
    #[arg(value_enum)]
    pub kind: ManifestKind,
    /// Container image for the static pod [default: ghcr.io/cpvip/cpvip:<this version>]
    #[arg(long, value_name = "IMAGE", env = "CPVIP_IMAGE")]
    pub image: Option<String>,
    /// The daemon's flags; the manifest passes each one given here as its `CPVIP_*` variable.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The kinds of manifest `cpvip manifest` can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManifestKind {
    /// A static pod for /var/lib/rancher/rke2/agent/pod-manifests/cpvip.yaml; the run flags become its CPVIP_* env
    Pod,
    /// A systemd unit for /etc/systemd/system/cpvip.service; it reads the flags from /etc/default/cpvip (see env)
    Systemd,
    /// The /etc/default/cpvip file of the systemd unit: the run flags as CPVIP_* lines
    Env,
    /// ServiceAccount, Role and RoleBinding for the Lease (--lease-name, --lease-namespace), for own credentials
    Rbac,
}

/// Arguments of `cpvip status`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct StatusArgs {
    /// Address of the daemon's HTTP listener (its --http-listen) [default: 127.0.0.1:2112]
    #[arg(long = "http", value_name = "ADDR", env = "CPVIP_HTTP_LISTEN")]
    pub http: Option<String>,
    /// Print the daemon's JSON status instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Every flag of `cpvip run`, as given (text, unvalidated). `None` / empty / `false` = not given.
///
/// Repeatable flags also accept several values separated by `;` (one env variable holds a list).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct RunArgs {
    /// Virtual IP to serve, IPv4 or IPv6; repeatable [default: none; required]
    #[arg(long = "vip", value_name = "IP", env = "CPVIP_VIP", value_delimiter = LIST_SEPARATOR,
          help_heading = "VIP")]
    pub vip: Vec<String>,
    /// Interface the VIP is bound to [default: lo]
    #[arg(
        long,
        value_name = "NAME",
        env = "CPVIP_INTERFACE",
        help_heading = "VIP"
    )]
    pub interface: Option<String>,
    /// leader = one announcer elected by a Lease; anycast = every healthy node [default: leader]
    #[arg(
        long,
        value_name = "leader|anycast",
        env = "CPVIP_MODE",
        help_heading = "VIP"
    )]
    pub mode: Option<String>,
    /// Identity in the Lease and in logs [default: the hostname, lower-cased]
    #[arg(
        long,
        value_name = "NAME",
        env = "CPVIP_NODE_NAME",
        help_heading = "Election"
    )]
    pub node_name: Option<String>,
    /// Kubeconfig for the Lease (leader mode); the daemon waits for the file to appear [default: $KUBECONFIG, else /etc/rancher/rke2/rke2.yaml]
    #[arg(
        long,
        value_name = "PATH",
        env = "CPVIP_KUBECONFIG",
        help_heading = "Election"
    )]
    pub kubeconfig: Option<String>,
    /// Name of the coordination.k8s.io Lease [default: cpvip]
    #[arg(
        long,
        value_name = "NAME",
        env = "CPVIP_LEASE_NAME",
        help_heading = "Election"
    )]
    pub lease_name: Option<String>,
    /// Namespace of the Lease [default: kube-system]
    #[arg(
        long,
        value_name = "NS",
        env = "CPVIP_LEASE_NAMESPACE",
        help_heading = "Election"
    )]
    pub lease_namespace: Option<String>,
    /// How long a Lease is valid without renewal (client-go leaseDuration) [default: 5s]
    #[arg(
        long,
        value_name = "DURATION",
        env = "CPVIP_LEASE_DURATION",
        help_heading = "Election"
    )]
    pub lease_duration: Option<String>,
    /// A leader that cannot renew within this stops serving (client-go renewDeadline) [default: 3s]
    #[arg(
        long,
        value_name = "DURATION",
        env = "CPVIP_RENEW_DEADLINE",
        help_heading = "Election"
    )]
    pub renew_deadline: Option<String>,
    /// Interval between acquire/renew attempts (client-go retryPeriod) [default: 1s]
    #[arg(
        long,
        value_name = "DURATION",
        env = "CPVIP_RETRY_PERIOD",
        help_heading = "Election"
    )]
    pub retry_period: Option<String>,
    /// Local AS number, plain or asdot (65001, 1.10) [default: none; required with --bgp-peer]
    #[arg(long, value_name = "ASN", env = "CPVIP_BGP_AS", help_heading = "BGP")]
    pub bgp_as: Option<String>,
    /// BGP router id [default: first IPv4 of the interface towards the first peer]
    #[arg(
        long,
        value_name = "IPV4",
        env = "CPVIP_BGP_ROUTER_ID",
        help_heading = "BGP"
    )]
    pub bgp_router_id: Option<String>,
    /// BGP peer ADDRESS,as=ASN[,port=179][,password=SECRET][,multihop=N][,gtsm][,bfd][,source=IP][,passive]; repeatable; a password must not contain ',' or ';' [default: none]
    #[arg(long, value_name = "SPEC", env = "CPVIP_BGP_PEER", value_delimiter = LIST_SEPARATOR,
          hide_env_values = true, help_heading = "BGP")]
    pub bgp_peer: Vec<String>,
    /// BGP hold time in whole seconds, 0 or 3s-65535s; keepalive = hold/3; keep it <= --lease-duration unless peers use bfd [default: 3s]
    #[arg(
        long,
        value_name = "DURATION",
        env = "CPVIP_BGP_HOLD_TIME",
        help_heading = "BGP"
    )]
    pub bgp_hold_time: Option<String>,
    /// Community A:B or no-export, no-advertise, no-export-subconfed, no-peer, blackhole, graceful-shutdown; repeatable [default: none]
    #[arg(long, value_name = "COMMUNITY", env = "CPVIP_BGP_COMMUNITY",
          value_delimiter = LIST_SEPARATOR, help_heading = "BGP")]
    pub bgp_community: Vec<String>,
    /// Large community A:B:C (RFC 8092); repeatable [default: none]
    #[arg(long, value_name = "A:B:C", env = "CPVIP_BGP_LARGE_COMMUNITY",
          value_delimiter = LIST_SEPARATOR, help_heading = "BGP")]
    pub bgp_large_community: Vec<String>,
    /// MULTI_EXIT_DISC attached to the announcements [default: none]
    #[arg(long, value_name = "N", env = "CPVIP_BGP_MED", help_heading = "BGP")]
    pub bgp_med: Option<String>,
    /// LOCAL_PREF attached to announcements to iBGP peers [default: none]
    #[arg(
        long,
        value_name = "N",
        env = "CPVIP_BGP_LOCAL_PREF",
        help_heading = "BGP"
    )]
    pub bgp_local_pref: Option<String>,
    /// Next hop of the announcements [default: the session's local address]
    #[arg(
        long,
        value_name = "IP",
        env = "CPVIP_BGP_NEXT_HOP",
        help_heading = "BGP"
    )]
    pub bgp_next_hop: Option<String>,
    /// BFD transmit/receive interval for peers with bfd, 10ms-60s [default: 100ms]
    #[arg(
        long,
        value_name = "DURATION",
        env = "CPVIP_BFD_INTERVAL",
        help_heading = "BGP"
    )]
    pub bfd_interval: Option<String>,
    /// BFD detection multiplier, 1-255 [default: 3]
    #[arg(
        long,
        value_name = "N",
        env = "CPVIP_BFD_MULTIPLIER",
        help_heading = "BGP"
    )]
    pub bfd_multiplier: Option<String>,
    /// Local health check: apiserver, supervisor, https://HOST[:PORT]/PATH[,ca=FILE], http://..., tcp://HOST:PORT; repeatable [default: apiserver and supervisor]
    #[arg(long, value_name = "SPEC", env = "CPVIP_HEALTH_CHECK",
          value_delimiter = LIST_SEPARATOR, help_heading = "Health")]
    pub health_check: Vec<String>,
    /// Serve without local health checks [default: off]
    #[arg(long, env = "CPVIP_NO_HEALTH_CHECK", help_heading = "Health")]
    pub no_health_check: bool,
    /// Interval between health checks [default: 1s]
    #[arg(
        long,
        value_name = "DURATION",
        env = "CPVIP_HEALTH_INTERVAL",
        help_heading = "Health"
    )]
    pub health_interval: Option<String>,
    /// Timeout of one health check, at most --health-interval [default: 1s]
    #[arg(
        long,
        value_name = "DURATION",
        env = "CPVIP_HEALTH_TIMEOUT",
        help_heading = "Health"
    )]
    pub health_timeout: Option<String>,
    /// Consecutive successes before a check counts as up [default: 2]
    #[arg(
        long,
        value_name = "N",
        env = "CPVIP_HEALTH_RISE",
        help_heading = "Health"
    )]
    pub health_rise: Option<String>,
    /// Consecutive failures before a check counts as down [default: 3]
    #[arg(
        long,
        value_name = "N",
        env = "CPVIP_HEALTH_FALL",
        help_heading = "Health"
    )]
    pub health_fall: Option<String>,
    /// Send gratuitous ARP / unsolicited NA on takeover [default: on when --interface is not lo]
    #[arg(long, env = "CPVIP_GARP", help_heading = "VIP")]
    pub garp: bool,
    /// Do not send gratuitous ARP / unsolicited NA (overrides the default of --garp) [default: off]
    #[arg(long, env = "CPVIP_NO_GARP", help_heading = "VIP")]
    pub no_garp: bool,
    /// Listen address for /metrics, /healthz, /readyz and /status [default: 127.0.0.1:2112]
    #[arg(
        long,
        value_name = "ADDR",
        env = "CPVIP_HTTP_LISTEN",
        help_heading = "Operation"
    )]
    pub http_listen: Option<String>,
    /// Log format: text or json [default: text]
    #[arg(
        long,
        value_name = "text|json",
        env = "CPVIP_LOG_FORMAT",
        help_heading = "Operation"
    )]
    pub log_format: Option<String>,
    /// Log level or tracing filter (e.g. debug, cpvip=debug,info); RUST_LOG overrides it [default: info]
    #[arg(
        long,
        value_name = "LEVEL",
        env = "CPVIP_LOG_LEVEL",
        help_heading = "Operation"
    )]
    pub log_level: Option<String>,
}

impl RunArgs {
    /// The flags the user gave, as `CPVIP_*` environment variables (name, value), in flag order.
    ///
    /// Repeatable flags become one variable with the values joined by `;`; switches become
    /// `"true"`. Parsing `cpvip run` with exactly these variables set yields `self` again. The
    /// values are returned verbatim, including any peer password: the caller decides where
    /// they may go (a manifest should put a password in a Secret, not in plain text).
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut env = EnvPairs::default();
        env.list("vip", &self.vip);
        env.one("interface", &self.interface);
        env.one("mode", &self.mode);
        env.one("node-name", &self.node_name);
        env.one("kubeconfig", &self.kubeconfig);
        env.one("lease-name", &self.lease_name);
        env.one("lease-namespace", &self.lease_namespace);
        env.one("lease-duration", &self.lease_duration);
        env.one("renew-deadline", &self.renew_deadline);
        env.one("retry-period", &self.retry_period);
        env.one("bgp-as", &self.bgp_as);
        env.one("bgp-router-id", &self.bgp_router_id);
        env.list("bgp-peer", &self.bgp_peer);
        env.one("bgp-hold-time", &self.bgp_hold_time);
        env.list("bgp-community", &self.bgp_community);
        env.list("bgp-large-community", &self.bgp_large_community);
        env.one("bgp-med", &self.bgp_med);
        env.one("bgp-local-pref", &self.bgp_local_pref);
        env.one("bgp-next-hop", &self.bgp_next_hop);
        env.one("bfd-interval", &self.bfd_interval);
        env.one("bfd-multiplier", &self.bfd_multiplier);
        env.list("health-check", &self.health_check);
        env.switch("no-health-check", self.no_health_check);
        env.one("health-interval", &self.health_interval);
        env.one("health-timeout", &self.health_timeout);
        env.one("health-rise", &self.health_rise);
        env.one("health-fall", &self.health_fall);
        env.switch("garp", self.garp);
        env.switch("no-garp", self.no_garp);
        env.one("http-listen", &self.http_listen);
        env.one("log-format", &self.log_format);
        env.one("log-level", &self.log_level);
        env.pairs
    }
}

/// Collects (variable, value) pairs for the flags that were given.
#[derive(Default)]
struct EnvPairs {
    pairs: Vec<(String, String)>,
}

impl EnvPairs {
    fn one(&mut self, flag: &str, value: &Option<String>) {
        if let Some(value) = value {
            self.pairs.push((env_var_for(flag), value.clone()));
        }
    }

    fn list(&mut self, flag: &str, values: &[String]) {
        if !values.is_empty() {
            let joined = values.join(&LIST_SEPARATOR.to_string());
            self.pairs.push((env_var_for(flag), joined));
        }
    }

    fn switch(&mut self, flag: &str, on: bool) {
        if on {
            self.pairs.push((env_var_for(flag), "true".to_owned()));
        }
    }
}
