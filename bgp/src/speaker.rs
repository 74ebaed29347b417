//! The public face of the speaker: configuration, [`Speaker::start`], and the
//! [`SpeakerHandle`] to change the announced routes, read per-peer status, force a peer down
//! (BFD) and shut down.
//!
//! One tokio task per peer owns that peer's FSM, socket and timers (see `peer.rs`), so no peer
//! can delay or break another. The desired route set is one `watch` value shared by all peers.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::peer::{PeerCommand, PeerTask};
use crate::session::{Negotiated, State};
use crate::transport;
use crate::wire::{Community, LargeCommunity, Notification, Route};

/// One BGP neighbor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// The neighbor's address (IPv4 or IPv6; routes of that family only are sent to it).
    pub address: IpAddr,
    /// The neighbor's ASN (equal to ours: iBGP).
    pub asn: u32,
    /// TCP port to connect to (179).
    pub port: u16,
    /// TCP MD5 signature key (RFC 2385).
    pub password: Option<String>,
    /// eBGP multihop: TTL of sent packets.
    pub multihop: Option<u8>,
    /// GTSM (RFC 5082): send TTL 255, accept 254 and above.
    pub gtsm: bool,
    /// Never connect; wait for the neighbor (needs [`SpeakerConfig::listen_port`]).
    pub passive: bool,
    /// Local address to connect from.
    pub source: Option<IpAddr>,
}

impl PeerConfig {
    /// A neighbor with defaults: port 179, no password, TTL 1 for eBGP, active.
    pub fn new(address: IpAddr, asn: u32) -> Self {
        Self {
            address,
            asn,
            port: 179,
            password: None,
            multihop: None,
            gtsm: false,
            passive: false,
            source: None,
        }
    }
}

/// Optional attributes attached to every announcement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttributeConfig {
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF on iBGP sessions (default 100).
    pub local_pref: Option<u32>,
    /// COMMUNITIES.
    pub communities: Vec<Community>,
    /// LARGE_COMMUNITY.
    pub large_communities: Vec<LargeCommunity>,
    /// NEXT_HOP for IPv4 routes instead of the session's local address.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// MP_REACH_NLRI next hop for IPv6 routes instead of the session's local address.
    pub next_hop_v6: Option<Ipv6Addr>,
}

/// Everything the speaker needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeakerConfig {
    /// Our ASN (4-octet allowed).
    pub local_asn: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds (0 = none; otherwise at least 3).
    pub hold_time: u16,
    /// Neighbors.
    pub peers: Vec<PeerConfig>,
    /// Accept incoming connections from configured peers on this port (None: never listen).
    pub listen_port: Option<u16>,
    /// Address to listen on (default: the wildcard of each family in use).
    pub listen_addr: Option<IpAddr>,
    /// Attributes of our announcements.
    pub attributes: AttributeConfig,
}

/// Configuration the speaker refuses.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    /// A setting that cannot work.
    #[error("invalid BGP configuration: {0}")]
    Config(String),
    /// The listener could not be set up.
    #[error("BGP listener: {0}")]
    Listen(#[from] std::io::Error),
}

/// A snapshot of one peer's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// Neighbor address.
    pub address: IpAddr,
    /// Neighbor ASN.
    pub asn: u32,
    /// FSM state.
    pub state: State,
    /// When the session last became Established (None when not Established).
    pub established_at: Option<Instant>,
    /// The last reason a session ended or a connection failed.
    pub last_error: Option<String>,
    /// BGP messages sent.
    pub messages_sent: u64,
    /// BGP messages received.
    pub messages_received: u64,
    /// Prefixes currently announced to this peer.
    pub prefixes_sent: u64,
    /// Prefixes the peer announced to us (counted, then dropped).
    pub prefixes_received: u64,
    /// UPDATE messages received.
    pub updates_received: u64,
    /// UPDATEs that RFC 7606 turned into withdrawals or attribute discards.
    pub updates_malformed: u64,
    /// Times an Established session went down.
    pub flaps: u64,
    /// What was negotiated (while OpenConfirm or Established).
    pub negotiated: Option<Negotiated>,
}

impl PeerStatus {
    pub(crate) fn new(p: &PeerConfig) -> Self {
        Self {
            address: p.address,
            asn: p.asn,
            state: State::Idle,
            established_at: None,
            last_error: None,
            messages_sent: 0,
            messages_received: 0,
            prefixes_sent: 0,
            prefixes_received: 0,
            updates_received: 0,
            updates_malformed: 0,
            flaps: 0,
            negotiated: None,
        }
    }

    /// Time since the session became Established.
    pub fn uptime(&self) -> Option<Duration> {
        self.established_at.map(|t| t.elapsed())
    }
}

struct PeerHandle {
    commands: mpsc::Sender<PeerCommand>,
    status: watch::Receiver<PeerStatus>,
    task: JoinHandle<()>,
}

/// The running speaker.
pub struct Speaker;

/// Controls a running speaker. Dropping it stops every session (without withdrawing first;
/// call [`SpeakerHandle::shutdown`] for an orderly stop).
pub struct SpeakerHandle {
    routes: watch::Sender<Arc<BTreeSet<Route>>>,
    peers: Vec<(IpAddr, PeerHandle)>,
    listeners: Vec<JoinHandle<()>>,
}

impl Speaker {
    /// Validates `config`, binds the listener (if any) and starts one task per peer. Must be
    /// called inside a tokio runtime.
    pub fn start(config: SpeakerConfig) -> Result<SpeakerHandle, SpeakerError> {
        validate(&config)?;
        let (routes_tx, _) = watch::channel(Arc::new(BTreeSet::new()));
        let config = Arc::new(config);
        let mut peers = Vec::new();
        let mut routing = HashMap::new();
        for p in &config.peers {
            let (cmd_tx, cmd_rx) = mpsc::channel(16);
            let (status_tx, status_rx) = watch::channel(PeerStatus::new(p));
            let ebgp = p.asn != config.local_asn;
            let ttl = transport::ttl_policy(p, ebgp);
            routing.insert(p.address, (cmd_tx.clone(), ttl));
            let task = PeerTask::new(
                config.clone(),
                p.clone(),
                ttl,
                routes_tx.subscribe(),
                cmd_rx,
                cmd_tx.clone(),
                status_tx,
            );
            let handle = tokio::spawn(task.run());
            peers.push((
                p.address,
                PeerHandle {
                    commands: cmd_tx,
                    status: status_rx,
                    task: handle,
                },
            ));
        }
        let mut listeners = Vec::new();
        if let Some(port) = config.listen_port {
            for l in transport::bind_listeners(config.listen_addr, port, &config.peers)? {
                listeners.push(tokio::spawn(transport::accept_loop(l, routing.clone())));
            }
        }
        Ok(SpeakerHandle {
            routes: routes_tx,
            peers,
            listeners,
        })
    }
}

fn validate(c: &SpeakerConfig) -> Result<(), SpeakerError> {
    let err = |s: String| Err(SpeakerError::Config(s));
    if c.local_asn == 0 {
        return err("local ASN 0".into());
    }
    if c.router_id.is_unspecified() {
        return err("router id 0.0.0.0".into());
    }
    if matches!(c.hold_time, 1 | 2) {
        return err(format!("hold time {}s (0 or at least 3)", c.hold_time));
    }
    let mut seen = BTreeSet::new();
    for p in &c.peers {
        if !seen.insert(p.address) {
            return err(format!("peer {} configured twice", p.address));
        }
        if p.asn == 0 {
            return err(format!("peer {} has ASN 0", p.address));
        }
        if p.passive && c.listen_port.is_none() {
            return err(format!(
                "peer {} is passive but no listen port is set",
                p.address
            ));
        }
        if p.password
            .as_ref()
            .is_some_and(|k| k.len() > crate::sockopt::MD5_MAX_KEY_LEN)
        {
            return err(format!(
                "peer {}: MD5 password longer than 80 bytes",
                p.address
            ));
        }
        if let Some(s) = p.source
            && s.is_ipv4() != p.address.is_ipv4()
        {
            return err(format!(
                "peer {}: source {s} of the other family",
                p.address
            ));
        }
    }
    Ok(())
}

impl SpeakerHandle {
    /// Replaces the set of routes to announce. Idempotent: an equal set changes nothing; each
    /// Established peer gets only the difference, in its own family.
    pub fn set_routes(&self, routes: BTreeSet<Route>) {
        self.routes.send_if_modified(|cur| {
            if **cur == routes {
                false
            } else {
                *cur = Arc::new(routes);
                true
            }
        });
    }

    /// The announced set as last given to [`Self::set_routes`].
    pub fn routes(&self) -> BTreeSet<Route> {
        (**self.routes.borrow()).clone()
    }

    /// A snapshot of every peer, in configuration order.
    pub fn peers(&self) -> Vec<PeerStatus> {
        self.peers
            .iter()
            .map(|(_, p)| p.status.borrow().clone())
            .collect()
    }

    /// Follows one peer's status (changes on every state change and counter update).
    pub fn watch_peer(&self, address: IpAddr) -> Option<watch::Receiver<PeerStatus>> {
        self.find(address).map(|p| p.status.clone())
    }

    /// External "peer is gone" signal (BFD): the session is torn down at once (Cease / BFD
    /// Down, RFC 9384) and reconnects after the usual back-off. Unknown addresses are ignored.
    pub async fn peer_down(&self, address: IpAddr, reason: impl Into<String>) {
        if let Some(p) = self.find(address) {
            let _ = p.commands.send(PeerCommand::ForceDown(reason.into())).await;
        }
    }

    /// A cloneable sender for [`Self::peer_down`]-style events, for a BFD task that outlives
    /// borrows of the handle.
    pub fn peer_down_sender(&self, address: IpAddr) -> Option<PeerDownSender> {
        self.find(address)
            .map(|p| PeerDownSender(p.commands.clone()))
    }

    /// Orderly stop: every peer withdraws its routes, sends Cease / Administrative Shutdown
    /// with `reason` (RFC 9003) and closes. Whatever is not done after `timeout` is aborted.
    pub async fn shutdown(self, reason: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        for l in &self.listeners {
            l.abort();
        }
        let mut waits = Vec::new();
        for (_, p) in &self.peers {
            let (tx, rx) = oneshot::channel();
            let n = Notification::admin_shutdown(reason);
            if p.commands.try_send(PeerCommand::Stop(Some(n), tx)).is_ok() {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = tokio::time::timeout_at(deadline, rx).await;
        }
        for (_, p) in &self.peers {
            p.task.abort();
        }
    }

    fn find(&self, address: IpAddr) -> Option<&PeerHandle> {
        self.peers
            .iter()
            .find(|(a, _)| *a == address)
            .map(|(_, p)| p)
    }
}

impl Drop for SpeakerHandle {
    fn drop(&mut self) {
        for l in &self.listeners {
            l.abort();
        }
        for (_, p) in &self.peers {
            p.task.abort();
        }
    }
}

/// Sends "force down" events to one peer's session (see [`SpeakerHandle::peer_down`]).
#[derive(Clone, Debug)]
pub struct PeerDownSender(mpsc::Sender<PeerCommand>);

impl PeerDownSender {
    /// Tears the session down now; it reconnects later.
    pub async fn peer_down(&self, reason: impl Into<String>) {
        let _ = self.0.send(PeerCommand::ForceDown(reason.into())).await;
    }
}
