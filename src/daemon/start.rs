//! `cpvip run` put together: turns the validated [`Config`] into the running parts (VIP manager,
//! BGP speaker, BFD sessions, election, health checks, HTTP) and hands them to
//! [`super::service::run_service`]. Start-up order matters: the HTTP port is bound first (an
//! "address in use" is reported before anything changes), then what a previous run left on the
//! host is cleaned up, then the BGP sessions come up with nothing announced.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use cpvip_bgp::bfd::{Bfd, BfdConfig, BfdSession, BfdStatus};
use cpvip_bgp::{AttributeConfig, PeerConfig, Speaker, SpeakerConfig, SpeakerHandle};
use cpvip_netlink::VipManager;
use tokio::sync::watch;

use super::adapters::{Bgp, HostVip, lock_speaker};
use super::from_config::{daemon_settings, health_checks, health_settings};
use super::lifecycle::{EXIT_FAILURE, NoElection, forward_signals};
use super::service::{Service, run_service};
use crate::config::{BgpConfig, Config, Mode};
use crate::election::{ElectionConfig, LeaseElection};
use crate::http::PeerStatus;

/// A start-up failure, reported as one line before exiting 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(String);

fn fail(context: &str, error: impl std::fmt::Display) -> StartError {
    StartError(format!("{context}: {error}"))
}

/// Runs the daemon until it is told to stop; returns the exit code.
pub async fn run(config: Config) -> Result<i32, StartError> {
    let http = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .map_err(|e| fail(&format!("--http-listen {}", config.http_listen), e))?;

    let manager = VipManager::new(&config.interface, config.vips.iter().copied())
        .await
        .map_err(|e| fail("VIP manager", e))?;
    let cleanup = manager
        .cleanup_stale()
        .await
        .map_err(|e| fail("clean-up of a previous run", e))?;
    if !cleanup.removed.is_empty() {
        tracing::warn!(removed = ?cleanup.removed, "removed VIPs a previous run of cpvip left bound");
    }
    if !cleanup.conflicts.is_empty() {
        tracing::warn!(conflicts = ?cleanup.conflicts, interface = %config.interface,
            "the VIP is already on the interface without cpvip's label: another owner? left alone");
    }
    let manager = Arc::new(manager);

    let (speaker, bfd) = if config.bgp.peers.is_empty() {
        (None, Vec::new())
    } else {
        let speaker = Speaker::start(speaker_config(&config.bgp)?).map_err(|e| fail("BGP", e))?;
        let bfd = start_bfd(&config, &speaker)?;
        (Some(speaker), bfd)
    };
    let speaker_running = speaker.is_some();
    let speaker = Arc::new(Mutex::new(speaker));
    let bfd_status: HashMap<IpAddr, watch::Receiver<BfdStatus>> =
        bfd.iter().map(|s| (s.peer(), s.status())).collect();
    let peers = {
        let speaker = speaker.clone();
        move || peer_statuses(&speaker, &bfd_status)
    };
    let running = {
        let speaker = speaker.clone();
        move || !speaker_running || lock_speaker(&speaker).is_some()
    };

    // The apiserver check loads the kubeconfig's credentials once the file exists (see
    // `Check::apiserver_deferred`); until then it fails and the node does not serve.
    let api = crate::health::kubeconfig::api_credentials(&config.kubeconfig.path).ok();
    let checks = health_checks(&config, api.as_ref()).map_err(|e| fail("--health-check", e))?;
    let parts = Parts {
        settings: daemon_settings(&config),
        checks,
        health: health_settings(&config),
        vip: HostVip::new(manager.clone()),
        routes: Bgp::new(speaker),
        http,
        peers: Box::new(peers),
        speaker_running: Box::new(running),
    };
    let code = match config.mode {
        Mode::Leader => {
            let election =
                LeaseElection::start(election_config(&config)).map_err(|e| fail("election", e))?;
            parts.run(election).await?
        }
        Mode::Anycast => parts.run(NoElection::default()).await?,
    };
    // BGP has sent its Cease: now tell the routers' BFD this was administrative, not a failure.
    for session in bfd {
        session.shutdown().await;
    }
    manager.shutdown().await;
    Ok(code)
}

/// Everything but the election, which differs in type between the modes.
struct Parts {
    settings: super::DaemonSettings,
    checks: Vec<crate::health::Check>,
    health: crate::health::HealthSettings,
    vip: HostVip,
    routes: Bgp,
    http: tokio::net::TcpListener,
    peers: Box<dyn Fn() -> Vec<PeerStatus> + Send + Sync>,
    speaker_running: Box<dyn Fn() -> bool + Send + Sync>,
}

impl Parts {
    async fn run<E: super::lifecycle::Election + 'static>(
        self,
        election: E,
    ) -> Result<i32, StartError> {
        let signals = forward_signals().map_err(|e| fail("signal handlers", e))?;
        let service = Service {
            settings: self.settings,
            checks: self.checks,
            health: self.health,
            vip: self.vip,
            routes: self.routes,
            election,
            http: self.http,
            peers: self.peers,
            speaker_running: self.speaker_running,
        };
        Ok(run_service(service, signals).await)
    }
}

/// Runs [`run`] and logs a start-up failure.
pub async fn run_logged(config: Config) -> i32 {
    match run(config).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("cannot start: {error}");
            EXIT_FAILURE
        }
    }
}

fn election_config(config: &Config) -> ElectionConfig {
    let mut election =
        ElectionConfig::new(config.node_name.clone(), config.kubeconfig.path.clone());
    election.lease_name = config.lease.name.clone();
    election.namespace = config.lease.namespace.clone();
    election.lease_duration = config.lease.duration;
    election.renew_deadline = config.lease.renew_deadline;
    election.retry_period = config.lease.retry_period;
    election
}

fn speaker_config(bgp: &BgpConfig) -> Result<SpeakerConfig, StartError> {
    let local_asn = bgp
        .local_as
        .map(|a| a.0)
        .ok_or_else(|| StartError("--bgp-as is required with peers".into()))?;
    let router_id = match bgp.router_id {
        Some(id) => id,
        None => default_router_id(bgp)?,
    };
    let peers = bgp
        .peers
        .iter()
        .map(|p| {
            let mut peer = PeerConfig::new(p.address, p.asn.0);
            peer.port = p.port;
            peer.password = p.password.as_ref().map(|s| s.expose().to_owned());
            peer.multihop = p.multihop;
            peer.gtsm = p.gtsm;
            peer.passive = p.passive;
            peer.source = p.source;
            peer
        })
        .collect();
    let listen_port = bgp.peers.iter().find(|p| p.passive).map(|p| p.port);
    let attributes = AttributeConfig {
        med: bgp.med,
        local_pref: bgp.local_pref,
        communities: bgp
            .communities
            .iter()
            .map(|c| cpvip_bgp::Community(c.0))
            .collect(),
        large_communities: bgp
            .large_communities
            .iter()
            .map(|c| cpvip_bgp::LargeCommunity {
                global: c.global,
                local1: c.local1,
                local2: c.local2,
            })
            .collect(),
        next_hop_v4: match bgp.next_hop {
            Some(IpAddr::V4(v4)) => Some(v4),
            _ => None,
        },
        next_hop_v6: match bgp.next_hop {
            Some(IpAddr::V6(v6)) => Some(v6),
            _ => None,
        },
    };
    Ok(SpeakerConfig {
        local_asn,
        router_id,
        hold_time: u16::try_from(bgp.hold_time.as_secs()).unwrap_or(u16::MAX),
        peers,
        listen_port,
        listen_addr: None,
        attributes,
    })
}

/// DESIGN: the first IPv4 address of the interface towards the first peer. The kernel's source
/// address selection answers that without sending anything (a connected UDP socket).
fn default_router_id(bgp: &BgpConfig) -> Result<Ipv4Addr, StartError> {
    for peer in &bgp.peers {
        if let Some(IpAddr::V4(v4)) = peer.source.or_else(|| local_address_towards(peer.address)) {
            return Ok(v4);
        }
    }
    Err(StartError(
        "--bgp-router-id: no IPv4 address towards any peer; set the router ID explicitly".into(),
    ))
}

fn local_address_towards(peer: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if peer.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect((peer, 179)).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// One BFD session per peer with `bfd`; a detected failure (not the peer's AdminDown) takes that
/// BGP session down at once instead of waiting for the hold timer.
fn start_bfd(config: &Config, speaker: &SpeakerHandle) -> Result<Vec<BfdSession>, StartError> {
    let bfd = Bfd::new();
    let mut sessions = Vec::new();
    for peer in config.bgp.peers.iter().filter(|p| p.bfd) {
        let local = peer
            .source
            .or_else(|| local_address_towards(peer.address))
            .ok_or_else(|| {
                fail(
                    &format!("BFD to {}", peer.address),
                    "no local address towards the peer",
                )
            })?;
        let session = bfd
            .start(BfdConfig {
                peer: peer.address,
                local,
                desired_min_tx: config.bfd.interval,
                required_min_rx: config.bfd.interval,
                detect_mult: config.bfd.multiplier,
            })
            .map_err(|e| fail(&format!("BFD to {}", peer.address), e))?;
        if let Some(down) = speaker.peer_down_sender(peer.address) {
            let mut status = session.status();
            let address = peer.address;
            tokio::spawn(async move {
                let mut seen = status.borrow().failures;
                while status.changed().await.is_ok() {
                    let now = status.borrow_and_update().clone();
                    if now.failures > seen {
                        seen = now.failures;
                        tracing::warn!(peer = %address, diag = %now.diag, "BFD down: tearing the BGP session down");
                        down.peer_down(format!("BFD down: {}", now.diag)).await;
                    }
                }
            });
        }
        sessions.push(session);
    }
    Ok(sessions)
}

fn peer_statuses(
    speaker: &Mutex<Option<SpeakerHandle>>,
    bfd: &HashMap<IpAddr, watch::Receiver<BfdStatus>>,
) -> Vec<PeerStatus> {
    let Some(peers) = lock_speaker(speaker).as_ref().map(SpeakerHandle::peers) else {
        return Vec::new();
    };
    peers
        .into_iter()
        .map(|p| PeerStatus {
            address: p.address.to_string(),
            remote_as: p.asn,
            state: format!("{:?}", p.state),
            uptime_secs: p.uptime().map(|d| d.as_secs()),
            flaps: p.flaps,
            updates_received: p.updates_received,
            prefixes_sent: p.prefixes_sent,
            prefixes_received: p.prefixes_received,
            bfd: bfd.get(&p.address).map(|s| bfd_state_name(&s.borrow())),
            last_error: p.last_error,
        })
        .collect()
}

fn bfd_state_name(status: &BfdStatus) -> String {
    use cpvip_bgp::bfd::State;
    match status.state {
        State::Up => "up",
        State::Init => "init",
        State::Down => "down",
        State::AdminDown => "admin-down",
    }
    .to_owned()
}
