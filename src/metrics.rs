//! Prometheus metrics (OpenMetrics text), exactly the names of DESIGN.md:
//! `cpvip_serving{vip}`, `cpvip_leader`, `cpvip_lease_transitions_total`,
//! `cpvip_health_check_up{check}`, `cpvip_bgp_session_established{peer}`,
//! `cpvip_bgp_session_flaps_total{peer}`, `cpvip_bgp_updates_received_total{peer}`,
//! `cpvip_bgp_prefixes_announced{peer}`, `cpvip_bfd_session_up{peer}`, `cpvip_build_info{version}`.
//!
//! Values are taken from a [`StatusReport`] at scrape time ([`Metrics::observe`]) rather than
//! pushed from every component: one source of truth for `/status` and `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::health::CheckState;
use crate::http::StatusReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VipLabels {
    vip: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

/// The registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    serving: Family<VipLabels, Gauge>,
    leader: Gauge,
    lease_transitions: Counter,
    health_check_up: Family<CheckLabels, Gauge>,
    bgp_session_established: Family<PeerLabels, Gauge>,
    bgp_session_flaps: Family<PeerLabels, Counter>,
    bgp_updates_received: Family<PeerLabels, Counter>,
    bgp_prefixes_announced: Family<PeerLabels, Gauge>,
    bfd_session_up: Family<PeerLabels, Gauge>,
}

impl Metrics {
    /// Registers every metric; `version` goes into `cpvip_build_info`.
    pub fn new(version: &str) -> Self {
        let mut registry = Registry::with_prefix("cpvip");
        let metrics = Self {
            serving: Family::default(),
            leader: Gauge::default(),
            lease_transitions: Counter::default(),
            health_check_up: Family::default(),
            bgp_session_established: Family::default(),
            bgp_session_flaps: Family::default(),
            bgp_updates_received: Family::default(),
            bgp_prefixes_announced: Family::default(),
            bfd_session_up: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "serving",
            "1 while this node serves the VIP (bound and announced)",
            metrics.serving.clone(),
        );
        registry.register(
            "leader",
            "1 while this node holds the Lease",
            metrics.leader.clone(),
        );
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "lease_transitions",
            "Lease holder changes seen by this process",
            metrics.lease_transitions.clone(),
        );
        registry.register(
            "health_check_up",
            "1 while the health check is up",
            metrics.health_check_up.clone(),
        );
        registry.register(
            "bgp_session_established",
            "1 while the BGP session is Established",
            metrics.bgp_session_established.clone(),
        );
        registry.register(
            "bgp_session_flaps",
            "Times the BGP session left Established",
            metrics.bgp_session_flaps.clone(),
        );
        registry.register(
            "bgp_updates_received",
            "BGP UPDATE messages received",
            metrics.bgp_updates_received.clone(),
        );
        registry.register(
            "bgp_prefixes_announced",
            "Prefixes announced to the peer",
            metrics.bgp_prefixes_announced.clone(),
        );
        registry.register(
            "bfd_session_up",
            "1 while the BFD session is up",
            metrics.bfd_session_up.clone(),
        );
        registry.register(
            "build",
            "cpvip build information",
            Info::new(vec![("version".to_string(), version.to_string())]),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// Updates every metric from a status report. Counters only move forward: a counter in the
    /// report that went backwards (a restarted component) is held until it passes again.
    pub fn observe(&self, report: &StatusReport) {
        for vip in &report.vips {
            let serving = vip.bound && report.announced.contains(&vip.address);
            let labels = VipLabels {
                vip: vip.address.to_string(),
            };
            self.serving.get_or_create(&labels).set(i64::from(serving));
        }
        self.leader.set(i64::from(report.leader));
        advance(&self.lease_transitions, report.lease_transitions);
        for check in &report.checks {
            let labels = CheckLabels {
                check: check.name.clone(),
            };
            let up = check.state == CheckState::Up;
            self.health_check_up
                .get_or_create(&labels)
                .set(i64::from(up));
        }
        for peer in &report.peers {
            let labels = PeerLabels {
                peer: peer.address.clone(),
            };
            self.bgp_session_established
                .get_or_create(&labels)
                .set(i64::from(peer.established()));
            advance(&self.bgp_session_flaps.get_or_create(&labels), peer.flaps);
            advance(
                &self.bgp_updates_received.get_or_create(&labels),
                peer.updates_received,
            );
            self.bgp_prefixes_announced
                .get_or_create(&labels)
                .set(i64::try_from(peer.prefixes_sent).unwrap_or(i64::MAX));
            if let Some(bfd) = &peer.bfd {
                self.bfd_session_up
                    .get_or_create(&labels)
                    .set(i64::from(bfd == "up"));
            }
        }
    }

    /// The OpenMetrics text exposition (ends with `# EOF`).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

fn advance(counter: &Counter, to: u64) {
    let now = counter.get();
    if to > now {
        counter.inc_by(to - now);
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
pub(crate) mod tests;
