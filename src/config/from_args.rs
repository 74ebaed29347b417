//! Field-by-field conversion of [`RunArgs`] text into a [`Config`], in the order of the flags,
//! so the first bad flag is the one reported.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::RunArgs;

use super::asn::{AS_TRANS, Asn};
use super::community::{Community, LargeCommunity};
use super::defaults;
use super::duration::parse_duration;
use super::error::{ConfigError, at};
use super::health::HealthCheckSpec;
use super::names::{
    HostFacts, check_dns_label, check_dns_subdomain, check_interface_name, check_node_name,
    first_kubeconfig_entry,
};
use super::peer::{PeerSpec, is_unicast, redact_peer_spec};
use super::{
    BfdConfig, BgpConfig, Config, HealthConfig, Kubeconfig, KubeconfigSource, LeaseConfig,
    LogConfig, LogFormat, Mode,
};

pub(super) fn build(args: &RunArgs, host: &HostFacts) -> Result<Config, ConfigError> {
    let vips = args
        .vip
        .iter()
        .map(|text| vip(text))
        .collect::<Result<Vec<_>, _>>()?;
    let interface = args
        .interface
        .clone()
        .unwrap_or_else(|| defaults::INTERFACE.to_owned());
    at("--interface", &interface, check_interface_name(&interface))?;
    let mode = match args.mode.as_deref() {
        None | Some("leader") => Mode::Leader,
        Some("anycast") => Mode::Anycast,
        Some(other) => {
            return Err(ConfigError::value(
                "--mode",
                other,
                "must be leader or anycast",
            ));
        }
    };
    let node_name = node_name(args, host)?;
    let kubeconfig = kubeconfig(args, host)?;
    let lease = LeaseConfig {
        name: dns_name(
            "--lease-name",
            &args.lease_name,
            defaults::LEASE_NAME,
            check_dns_subdomain,
        )?,
        namespace: dns_name(
            "--lease-namespace",
            &args.lease_namespace,
            defaults::LEASE_NAMESPACE,
            check_dns_label,
        )?,
        duration: positive_duration(
            "--lease-duration",
            &args.lease_duration,
            defaults::LEASE_DURATION,
        )?,
        renew_deadline: positive_duration(
            "--renew-deadline",
            &args.renew_deadline,
            defaults::RENEW_DEADLINE,
        )?,
        retry_period: positive_duration(
            "--retry-period",
            &args.retry_period,
            defaults::RETRY_PERIOD,
        )?,
    };
    let bgp = BgpConfig {
        local_as: args.bgp_as.as_deref().map(local_as).transpose()?,
        router_id: args.bgp_router_id.as_deref().map(router_id).transpose()?,
        peers: args
            .bgp_peer
            .iter()
            .map(|text| peer(text))
            .collect::<Result<_, _>>()?,
        hold_time: hold_time(&args.bgp_hold_time)?,
        communities: list("--bgp-community", &args.bgp_community, Community::parse)?,
        large_communities: list(
            "--bgp-large-community",
            &args.bgp_large_community,
            LargeCommunity::parse,
        )?,
        med: args
            .bgp_med
            .as_deref()
            .map(|text| u32_value("--bgp-med", text))
            .transpose()?,
        local_pref: args
            .bgp_local_pref
            .as_deref()
            .map(|text| u32_value("--bgp-local-pref", text))
            .transpose()?,
        next_hop: args.bgp_next_hop.as_deref().map(next_hop).transpose()?,
    };
    let bfd = BfdConfig {
        interval: bfd_interval(&args.bfd_interval)?,
        multiplier: bfd_multiplier(&args.bfd_multiplier)?,
    };
    let health = HealthConfig {
        checks: health_checks(args)?,
        interval: positive_duration(
            "--health-interval",
            &args.health_interval,
            defaults::HEALTH_INTERVAL,
        )?,
        timeout: positive_duration(
            "--health-timeout",
            &args.health_timeout,
            defaults::HEALTH_TIMEOUT,
        )?,
        rise: count("--health-rise", &args.health_rise, defaults::HEALTH_RISE)?,
        fall: count("--health-fall", &args.health_fall, defaults::HEALTH_FALL)?,
    };
    if args.garp && args.no_garp {
        return Err(ConfigError::flag(
            "--no-garp",
            "cannot be combined with --garp",
        ));
    }
    let garp = if args.garp || args.no_garp {
        args.garp
    } else {
        interface != "lo"
    };
    let http_listen = http_listen(&args.http_listen)?;
    let log = LogConfig {
        format: log_format(&args.log_format)?,
        level: log_level(&args.log_level)?,
    };
    Ok(Config {
        vips,
        interface,
        mode,
        node_name,
        kubeconfig,
        lease,
        bgp,
        bfd,
        health,
        garp,
        http_listen,
        log,
    })
}

fn vip(text: &str) -> Result<IpAddr, ConfigError> {
    let address: IpAddr = text
        .parse()
        .map_err(|_| ConfigError::value("--vip", text, "must be an IPv4 or IPv6 address"))?;
    let unannounceable = !is_unicast(address)
        || address.is_loopback()
        || matches!(address, IpAddr::V6(v6) if v6.is_unicast_link_local());
    if unannounceable {
        return Err(ConfigError::value(
            "--vip",
            text,
            "must be a unicast address routers can reach (not unspecified, multicast, \
             broadcast, loopback or link-local)",
        ));
    }
    Ok(address)
}

fn node_name(args: &RunArgs, host: &HostFacts) -> Result<String, ConfigError> {
    match (&args.node_name, &host.hostname) {
        (Some(name), _) => {
            at("--node-name", name, check_node_name(name))?;
            Ok(name.clone())
        }
        // kubelet names a node after its lower-cased hostname; so do we, to match it.
        (None, Some(hostname)) => {
            let name = hostname.to_lowercase();
            at("--node-name", &name, check_node_name(&name))?;
            Ok(name)
        }
        (None, None) => Err(ConfigError::flag(
            "--node-name",
            "the hostname could not be read; give --node-name",
        )),
    }
}

fn kubeconfig(args: &RunArgs, host: &HostFacts) -> Result<Kubeconfig, ConfigError> {
    if let Some(path) = &args.kubeconfig {
        if path.is_empty() {
            return Err(ConfigError::value(
                "--kubeconfig",
                path,
                "must be a file path",
            ));
        }
        return Ok(Kubeconfig {
            path: PathBuf::from(path),
            source: KubeconfigSource::Flag,
        });
    }
    if let Some(path) = host
        .kubeconfig_env
        .as_deref()
        .and_then(first_kubeconfig_entry)
    {
        return Ok(Kubeconfig {
            path,
            source: KubeconfigSource::Env,
        });
    }
    Ok(Kubeconfig {
        path: PathBuf::from(defaults::KUBECONFIG),
        source: KubeconfigSource::Default,
    })
}

fn dns_name(
    flag: &'static str,
    given: &Option<String>,
    default: &str,
    check: fn(&str) -> Result<(), String>,
) -> Result<String, ConfigError> {
    let name = given.clone().unwrap_or_else(|| default.to_owned());
    at(flag, &name, check(&name))?;
    Ok(name)
}

fn duration(
    flag: &'static str,
    given: &Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match given {
        None => Ok(default),
        Some(text) => at(flag, text, parse_duration(text)),
    }
}

fn positive_duration(
    flag: &'static str,
    given: &Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let value = duration(flag, given, default)?;
    if value.is_zero() {
        let text = given.as_deref().unwrap_or_default();
        return Err(ConfigError::value(
            flag,
            text,
            "must be longer than 0, like 500ms, 3s or 1m",
        ));
    }
    Ok(value)
}

fn local_as(text: &str) -> Result<Asn, ConfigError> {
    let asn = at("--bgp-as", text, Asn::parse(text))?;
    if asn == AS_TRANS {
        return Err(ConfigError::value(
            "--bgp-as",
            text,
            "must not be 23456 (AS_TRANS, RFC 6793)",
        ));
    }
    Ok(asn)
}

fn router_id(text: &str) -> Result<Ipv4Addr, ConfigError> {
    match text.parse::<Ipv4Addr>() {
        Ok(id) if !id.is_unspecified() => Ok(id),
        _ => Err(ConfigError::value(
            "--bgp-router-id",
            text,
            "must be an IPv4 address other than 0.0.0.0",
        )),
    }
}

fn peer(text: &str) -> Result<PeerSpec, ConfigError> {
    PeerSpec::parse(text)
        .map_err(|expected| ConfigError::value("--bgp-peer", &redact_peer_spec(text), expected))
}

fn hold_time(given: &Option<String>) -> Result<Duration, ConfigError> {
    let value = duration("--bgp-hold-time", given, defaults::BGP_HOLD_TIME)?;
    let whole_seconds = value.subsec_nanos() == 0;
    let secs = value.as_secs();
    if whole_seconds && (secs == 0 || (3..=65_535).contains(&secs)) {
        return Ok(value);
    }
    Err(ConfigError::value(
        "--bgp-hold-time",
        given.as_deref().unwrap_or_default(),
        "must be 0s or whole seconds from 3s to 65535s (RFC 4271)",
    ))
}

fn list<T: PartialEq>(
    flag: &'static str,
    texts: &[String],
    parse: fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, ConfigError> {
    let mut values: Vec<T> = Vec::with_capacity(texts.len());
    for text in texts {
        let value = at(flag, text, parse(text))?;
        if values.contains(&value) {
            return Err(ConfigError::value(flag, text, "is given twice"));
        }
        values.push(value);
    }
    Ok(values)
}

fn u32_value(flag: &'static str, text: &str) -> Result<u32, ConfigError> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u32>() {
        Ok(value) if digits => Ok(value),
        _ => Err(ConfigError::value(
            flag,
            text,
            "must be a number from 0 to 4294967295",
        )),
    }
}

fn next_hop(text: &str) -> Result<IpAddr, ConfigError> {
    match text.parse::<IpAddr>() {
        Ok(address) if is_unicast(address) && !address.is_loopback() => Ok(address),
        _ => Err(ConfigError::value(
            "--bgp-next-hop",
            text,
            "must be a unicast IPv4 or IPv6 address (not loopback)",
        )),
    }
}

fn bfd_interval(given: &Option<String>) -> Result<Duration, ConfigError> {
    let value = duration("--bfd-interval", given, defaults::BFD_INTERVAL)?;
    if (Duration::from_millis(10)..=Duration::from_secs(60)).contains(&value) {
        return Ok(value);
    }
    let text = given.as_deref().unwrap_or_default();
    Err(ConfigError::value(
        "--bfd-interval",
        text,
        "must be from 10ms to 60s",
    ))
}

fn bfd_multiplier(given: &Option<String>) -> Result<u8, ConfigError> {
    let Some(text) = given else {
        return Ok(defaults::BFD_MULTIPLIER);
    };
    match text.parse::<u8>() {
        Ok(value) if value > 0 && !text.starts_with('+') => Ok(value),
        _ => Err(ConfigError::value(
            "--bfd-multiplier",
            text,
            "must be a number from 1 to 255",
        )),
    }
}

fn health_checks(args: &RunArgs) -> Result<Vec<HealthCheckSpec>, ConfigError> {
    if args.no_health_check {
        if !args.health_check.is_empty() {
            return Err(ConfigError::flag(
                "--no-health-check",
                "cannot be combined with --health-check",
            ));
        }
        return Ok(Vec::new());
    }
    if args.health_check.is_empty() {
        return Ok(vec![
            HealthCheckSpec::Apiserver,
            HealthCheckSpec::Supervisor,
        ]);
    }
    list("--health-check", &args.health_check, HealthCheckSpec::parse)
}

fn count(flag: &'static str, given: &Option<String>, default: u32) -> Result<u32, ConfigError> {
    let Some(text) = given else {
        return Ok(default);
    };
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u32>() {
        Ok(value) if digits && (1..=1000).contains(&value) => Ok(value),
        _ => Err(ConfigError::value(
            flag,
            text,
            "must be a number from 1 to 1000",
        )),
    }
}

fn http_listen(given: &Option<String>) -> Result<SocketAddr, ConfigError> {
    let text = given.as_deref().unwrap_or(defaults::HTTP_LISTEN);
    text.parse().map_err(|_| {
        ConfigError::value(
            "--http-listen",
            text,
            "must be an IP address and port, like 127.0.0.1:2112 or [::1]:2112",
        )
    })
}

fn log_format(given: &Option<String>) -> Result<LogFormat, ConfigError> {
    match given.as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(ConfigError::value(
            "--log-format",
            other,
            "must be text or json",
        )),
    }
}

fn log_level(given: &Option<String>) -> Result<String, ConfigError> {
    let level = given
        .clone()
        .unwrap_or_else(|| defaults::LOG_LEVEL.to_owned());
    // A lone word would parse as a target name ("verbose" = everything from target verbose),
    // so a plain level must be one of the level names; only directives may name targets.
    let is_directive = level.contains(['=', ',']);
    let is_level = ["error", "warn", "info", "debug", "trace", "off"]
        .iter()
        .any(|name| name.eq_ignore_ascii_case(&level));
    let valid = (is_level || is_directive)
        && tracing_subscriber::EnvFilter::builder()
            .parse(&level)
            .is_ok();
    if !valid {
        return Err(ConfigError::value(
            "--log-level",
            &level,
            "must be error, warn, info, debug, trace or a tracing filter like cpvip=debug,info",
        ));
    }
    Ok(level)
}
