//! Rules that span several flags: errors that stop start-up and warnings that do not.

use std::net::IpAddr;

use crate::cli::RunArgs;

use super::defaults::CLIENT_GO_JITTER_FACTOR;
use super::duration::format_duration;
use super::error::ConfigError;
use super::peer::redact_peer_spec;
use super::{Config, KubeconfigSource, Mode};

/// Cross-field errors, in the order of the flags involved.
pub(super) fn check(config: &Config, args: &RunArgs) -> Result<(), ConfigError> {
    if config.vips.is_empty() {
        return Err(ConfigError::flag(
            "--vip",
            "required; give at least one IPv4 or IPv6 address",
        ));
    }
    for (index, vip) in config.vips.iter().enumerate() {
        if config.vips[..index].contains(vip) {
            return Err(ConfigError::value(
                "--vip",
                &args.vip[index],
                "is given twice",
            ));
        }
    }
    check_lease_timing(config, args)?;
    if !config.bgp.peers.is_empty() && config.bgp.local_as.is_none() {
        return Err(ConfigError::flag(
            "--bgp-as",
            "required with --bgp-peer; give the local ASN (1-4294967295 or X.Y)",
        ));
    }
    for (index, peer) in config.bgp.peers.iter().enumerate() {
        if config.bgp.peers[..index]
            .iter()
            .any(|earlier| earlier.address == peer.address)
        {
            return Err(ConfigError::value(
                "--bgp-peer",
                &redact_peer_spec(&args.bgp_peer[index]),
                format!("peer {} is given twice", peer.address),
            ));
        }
    }
    if config.health.timeout > config.health.interval {
        return Err(ConfigError::value(
            "--health-timeout",
            args.health_timeout.as_deref().unwrap_or_default(),
            format!(
                "must not be longer than --health-interval ({})",
                format_duration(config.health.interval)
            ),
        ));
    }
    Ok(())
}

/// client-go's `NewLeaderElector` rules, to the nanosecond: leaseDuration > renewDeadline and
/// renewDeadline > JitterFactor (1.2) × retryPeriod.
fn check_lease_timing(config: &Config, args: &RunArgs) -> Result<(), ConfigError> {
    let lease = &config.lease;
    let renew_text = args
        .renew_deadline
        .clone()
        .unwrap_or_else(|| format_duration(lease.renew_deadline));
    if lease.duration <= lease.renew_deadline {
        return Err(ConfigError::value(
            "--renew-deadline",
            &renew_text,
            format!(
                "must be shorter than --lease-duration ({})",
                format_duration(lease.duration)
            ),
        ));
    }
    // Go: time.Duration(JitterFactor * float64(RetryPeriod)), truncated towards zero.
    let jittered_nanos = (CLIENT_GO_JITTER_FACTOR * lease.retry_period.as_nanos() as f64) as u128;
    if lease.renew_deadline.as_nanos() <= jittered_nanos {
        return Err(ConfigError::value(
            "--renew-deadline",
            &renew_text,
            format!(
                "must be longer than 1.2 x --retry-period ({}), as client-go requires",
                format_duration(lease.retry_period)
            ),
        ));
    }
    Ok(())
}

/// Settings that work but are probably not what was meant; one line each.
pub(super) fn warnings(config: &Config, args: &RunArgs) -> Vec<String> {
    let mut warnings = Vec::new();
    let peers = &config.bgp.peers;
    if config.mode == Mode::Leader && !config.kubeconfig.path.exists() {
        let origin = match config.kubeconfig.source {
            KubeconfigSource::Flag => "from --kubeconfig",
            KubeconfigSource::Env => "from $KUBECONFIG",
            KubeconfigSource::Default => "the default",
        };
        warnings.push(format!(
            "kubeconfig {} ({origin}) does not exist yet; the Lease election waits for it to appear",
            config.kubeconfig.path.display(),
        ));
    }
    if !peers.is_empty() && config.bgp.next_hop.is_none() {
        for (family, is_family) in [
            ("IPv6", IpAddr::is_ipv6 as fn(&IpAddr) -> bool),
            ("IPv4", IpAddr::is_ipv4),
        ] {
            let vip = config.vips.iter().find(|vip| is_family(vip));
            if let Some(vip) = vip
                && !peers.iter().any(|peer| is_family(&peer.address))
            {
                warnings.push(format!(
                    "VIP {vip} is {family} but no --bgp-peer is {family} and --bgp-next-hop is \
                     not set; routers may get no usable next hop for it"
                ));
            }
        }
    }
    // A dead leader's route lives on the router until the hold timer expires; past the Lease
    // duration it competes with the next leader's route (and routers that prefer the older path
    // keep using it). BFD removes it in a fraction of a second.
    let hold = config.bgp.hold_time;
    if config.mode == Mode::Leader
        && (hold.is_zero() || hold > config.lease.duration)
        && peers.iter().any(|peer| !peer.bfd)
    {
        warnings.push(format!(
            "--bgp-hold-time {} exceeds --lease-duration {} on peers without bfd: after a leader \
             dies, routers may keep its route until the hold time expires; keep hold <= lease \
             or add bfd to the peers",
            format_duration(hold),
            format_duration(config.lease.duration)
        ));
    }
    if peers.is_empty() && config.bgp.local_as.is_some() {
        warnings.push("--bgp-as is set but there is no --bgp-peer; nothing is announced".into());
    }
    if peers.is_empty() && config.interface == "lo" {
        warnings.push(
            "no --bgp-peer and --interface lo: the VIP is reachable from this host only".into(),
        );
    }
    if config.bgp.local_pref.is_some()
        && !peers.is_empty()
        && peers
            .iter()
            .all(|peer| Some(peer.asn) != config.bgp.local_as)
    {
        warnings.push("--bgp-local-pref is sent to iBGP peers only, and every peer is eBGP".into());
    }
    if config.garp && config.interface == "lo" {
        warnings.push("--garp on interface lo has no effect".into());
    }
    if config.garp && config.mode == Mode::Anycast {
        warnings.push(
            "--mode anycast with gratuitous ARP: every healthy node claims the VIP on the segment"
                .into(),
        );
    }
    if config.health.checks.is_empty() && args.no_health_check {
        warnings.push("--no-health-check: the VIP is served without local health checks".into());
    }
    warnings
}
