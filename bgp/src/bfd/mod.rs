//! BFD, RFC 5880/5881: asynchronous mode, single hop, no authentication.
//!
//! Owns: the packet codec (`packet`), the pure session state machine (`session`), the sockets
//! (`socket`, with all unsafe code in `sys`) and the tokio driver in this file: [`Bfd`] shares
//! one UDP 3784 receive socket per local address between sessions and routes packets by
//! discriminator or source address; each [`BfdSession`] runs one task and publishes a
//! [`BfdStatus`] on a `watch` channel.
//!
//! Does not own: what a session going down means. The daemon watches [`BfdStatus::failures`]
//! and forces the BGP session to that peer down when it grows. A Down caused by the peer's
//! AdminDown is not a failure (RFC 5882 §3.2) and does not count. Echo mode, demand mode,
//! multihop and authentication are not implemented: packets with the A bit are discarded.

pub mod packet;
pub mod session;
mod socket;
mod sys;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::sleep_until;

pub use packet::{ControlPacket, DecodeError, Diag, State};
pub use session::Timers;
use session::{Action, Event, Session};
use socket::{ReceiveSocket, SendSocket};

/// Longest interval at which the extra AdminDown packets of a shutdown are repeated; beyond it
/// only the first is sent, to keep shutdown bounded.
const SHUTDOWN_REPEAT_MAX_INTERVAL: Duration = Duration::from_millis(400);
/// AdminDown packets sent after the first one on shutdown, in case one is lost.
const SHUTDOWN_REPEATS: usize = 2;
/// Smallest interval we accept in our own configuration. Since our transmit interval and our
/// detection time are never below our own desired TX and required RX, this floor also keeps a
/// peer advertising tiny intervals from making the driver spin. Sub-10 ms BFD is not realistic
/// from a user-space task on a shared host anyway.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Packets queued per session between the receive task and the session task.
const PACKET_QUEUE: usize = 32;

/// One peer's BFD parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdConfig {
    /// The directly connected peer.
    pub peer: IpAddr,
    /// Our address on the link to the peer (packets are sent from and received on it).
    pub local: IpAddr,
    /// Desired minimum TX interval once Up (`--bfd-interval`); 1 s is used until Up.
    pub desired_min_tx: Duration,
    /// Required minimum RX interval we advertise (`--bfd-interval`).
    pub required_min_rx: Duration,
    /// Detection multiplier (`--bfd-multiplier`).
    pub detect_mult: u8,
}

/// A snapshot of one session, published on every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdStatus {
    /// The peer address.
    pub peer: IpAddr,
    /// Our session state.
    pub state: State,
    /// The peer's state as last received.
    pub remote_state: State,
    /// Why our state last changed.
    pub diag: Diag,
    /// The diagnostic the peer last sent.
    pub remote_diag: Diag,
    /// The last Down came from the peer's AdminDown: not a failure.
    pub peer_admin_down: bool,
    /// Our discriminator.
    pub local_discriminator: u32,
    /// The peer's discriminator, zero while unknown.
    pub remote_discriminator: u32,
    /// Negotiated interval of our packets (before jitter); `None` if the peer wants none.
    pub tx_interval: Option<Duration>,
    /// Negotiated interval of the peer's packets.
    pub rx_interval: Duration,
    /// How long the peer may stay silent before we declare the session down.
    pub detection_time: Duration,
    /// The peer's detection multiplier.
    pub remote_detect_mult: u8,
    /// When the session last came Up, `None` unless Up.
    pub up_since: Option<Instant>,
    /// How many times the session went from Up to Down for a reason other than the peer's
    /// AdminDown or our own shutdown: each increment means "tear the BGP session down".
    pub failures: u64,
}

impl BfdStatus {
    /// True while the session is Up.
    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum BfdError {
    /// A timer value is out of range.
    #[error("invalid BFD parameter: {0}")]
    InvalidConfig(&'static str),
    /// Local and peer addresses are of different families.
    #[error("local address {local} and peer {peer} are not of the same address family")]
    AddressFamilyMismatch {
        /// Local address.
        local: IpAddr,
        /// Peer address.
        peer: IpAddr,
    },
    /// There is already a session to this peer from this local address.
    #[error("a BFD session to {peer} from {local} already exists")]
    Duplicate {
        /// Local address.
        local: IpAddr,
        /// Peer address.
        peer: IpAddr,
    },
    /// A socket could not be opened or bound.
    #[error("BFD socket on {local}: {source}")]
    Socket {
        /// Local address.
        local: IpAddr,
        /// The OS error.
        source: io::Error,
    },
}

/// The BFD instance: shares receive sockets between sessions. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Bfd {
    registry: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
struct Registry {
    listeners: HashMap<IpAddr, Listener>,
}

#[derive(Debug)]
struct Listener {
    routes: HashMap<u32, Route>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Route {
    peer: IpAddr,
    packets: mpsc::Sender<ControlPacket>,
}

fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    // The registry holds no invariant a panicking holder could break half-way.
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

fn random_u64(salt: impl std::hash::Hash) -> u64 {
    RandomState::new().hash_one((salt, Instant::now()))
}

impl Bfd {
    /// A BFD instance with no sessions.
    pub fn new() -> Bfd {
        Bfd::default()
    }

    /// Starts a session to `config.peer` and returns its handle. Must be called inside a tokio
    /// runtime; the session's sockets belong to the network namespace of the calling thread.
    pub fn start(&self, config: BfdConfig) -> Result<BfdSession, BfdError> {
        validate(&config)?;
        let socket_error = |source| BfdError::Socket {
            local: config.local,
            source,
        };
        let send = SendSocket::bind(config.local, config.peer).map_err(socket_error)?;
        let (packets_tx, packets_rx) = mpsc::channel(PACKET_QUEUE);

        let discriminator = {
            let mut registry = lock(&self.registry);
            if let Entry::Vacant(vacant) = registry.listeners.entry(config.local) {
                let receive = ReceiveSocket::bind(config.local).map_err(socket_error)?;
                let task = tokio::spawn(receive_loop(
                    receive,
                    config.local,
                    Arc::downgrade(&self.registry),
                ));
                vacant.insert(Listener {
                    routes: HashMap::new(),
                    task,
                });
            }
            let in_use = |registry: &Registry, discriminator: u32| {
                registry
                    .listeners
                    .values()
                    .any(|l| l.routes.contains_key(&discriminator))
            };
            if let Some(listener) = registry.listeners.get(&config.local)
                && listener.routes.values().any(|r| r.peer == config.peer)
            {
                return Err(BfdError::Duplicate {
                    local: config.local,
                    peer: config.peer,
                });
            }
            let mut seed = random_u64(config.peer);
            let discriminator = loop {
                let candidate =
                    NonZeroU32::new(seed as u32).filter(|d| !in_use(&registry, d.get()));
                match candidate {
                    Some(d) => break d,
                    None => seed = seed.rotate_left(17).wrapping_add(0x9e37_79b9_7f4a_7c15),
                }
            };
            if let Some(listener) = registry.listeners.get_mut(&config.local) {
                listener.routes.insert(
                    discriminator.get(),
                    Route {
                        peer: config.peer,
                        packets: packets_tx,
                    },
                );
            }
            discriminator
        };

        let timers = Timers {
            desired_min_tx: config.desired_min_tx,
            required_min_rx: config.required_min_rx,
            detect_mult: config.detect_mult,
        };
        let fsm = Session::new(timers, discriminator, random_u64(discriminator));
        let (status_tx, status_rx) = watch::channel(status_of(&fsm, config.peer, None, 0));
        let (commands_tx, commands_rx) = mpsc::channel(4);
        let deregister = Deregister {
            registry: Arc::clone(&self.registry),
            local: config.local,
            discriminator: discriminator.get(),
        };
        tracing::info!(
            peer = %config.peer,
            local = %config.local,
            source = ?send.local_addr().ok(),
            discriminator = discriminator.get(),
            "BFD session started"
        );
        let task = tokio::spawn(
            Driver {
                fsm,
                peer: config.peer,
                socket: send,
                status: status_tx,
                tx_deadline: None,
                detection_deadline: None,
                up_since: None,
                failures: 0,
            }
            .run(packets_rx, commands_rx, deregister),
        );
        Ok(BfdSession {
            peer: config.peer,
            status: status_rx,
            commands: commands_tx,
            task: Some(task),
        })
    }
}

fn validate(config: &BfdConfig) -> Result<(), BfdError> {
    if config.local.is_ipv4() != config.peer.is_ipv4() {
        return Err(BfdError::AddressFamilyMismatch {
            local: config.local,
            peer: config.peer,
        });
    }
    if config.detect_mult == 0 {
        return Err(BfdError::InvalidConfig(
            "detect multiplier must be at least 1",
        ));
    }
    let range = MIN_INTERVAL..=Duration::from_micros(u64::from(u32::MAX));
    if !range.contains(&config.desired_min_tx) || !range.contains(&config.required_min_rx) {
        return Err(BfdError::InvalidConfig(
            "intervals must be between 10 ms and 4294 s",
        ));
    }
    Ok(())
}

/// Reads one local address's socket and hands each packet to its session (RFC 5880 §6.8.6:
/// by Your Discriminator when set, else by source address).
async fn receive_loop(
    socket: ReceiveSocket,
    local: IpAddr,
    registry: std::sync::Weak<Mutex<Registry>>,
) {
    let mut buf = [0u8; 512];
    loop {
        let datagram = match socket.recv(&mut buf).await {
            Ok(datagram) => datagram,
            Err(error) => {
                tracing::warn!(%local, %error, "BFD receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let packet = match ControlPacket::decode(&buf[..datagram.len]) {
            Ok(packet) => packet,
            Err(error) => {
                tracing::debug!(source = %datagram.source, %error, "discarding BFD packet");
                continue;
            }
        };
        let Some(registry) = registry.upgrade() else {
            return;
        };
        let registry = lock(&registry);
        let Some(listener) = registry.listeners.get(&local) else {
            return;
        };
        let peer = datagram.source.ip();
        let route = if packet.your_discriminator != 0 {
            listener
                .routes
                .get(&packet.your_discriminator)
                .filter(|route| route.peer == peer)
        } else {
            listener.routes.values().find(|route| route.peer == peer)
        };
        match route {
            // A full queue means the session task is far behind; dropping is what a lossy
            // link would do, and the detection timer copes with it.
            Some(route) => {
                let _ = route.packets.try_send(packet);
            }
            None => tracing::debug!(source = %datagram.source, your = packet.your_discriminator,
                "BFD packet for no session"),
        }
    }
}

/// Removes a session from the registry when its task ends, however it ends; the last session
/// of a local address closes that address's receive socket.
struct Deregister {
    registry: Arc<Mutex<Registry>>,
    local: IpAddr,
    discriminator: u32,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        let mut registry = lock(&self.registry);
        let empty = registry.listeners.get_mut(&self.local).is_some_and(|l| {
            l.routes.remove(&self.discriminator);
            l.routes.is_empty()
        });
        if empty && let Some(listener) = registry.listeners.remove(&self.local) {
            listener.task.abort();
        }
    }
}

enum Command {
    Shutdown(oneshot::Sender<()>),
    SetTimers(Timers),
}

/// Handle of one running session. Dropping it stops the session silently (the peer then
/// detects a failure); [`BfdSession::shutdown`] tells the peer first.
#[derive(Debug)]
pub struct BfdSession {
    peer: IpAddr,
    status: watch::Receiver<BfdStatus>,
    commands: mpsc::Sender<Command>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Shutdown(_) => f.write_str("Shutdown"),
            Command::SetTimers(t) => write!(f, "SetTimers({t:?})"),
        }
    }
}

impl BfdSession {
    /// The peer address.
    pub fn peer(&self) -> IpAddr {
        self.peer
    }

    /// A receiver of the session's status; every change is published.
    pub fn status(&self) -> watch::Receiver<BfdStatus> {
        self.status.clone()
    }

    /// Changes the timers at run time; while Up this runs a poll sequence (RFC 5880 §6.8.3).
    pub async fn set_timers(&self, timers: Timers) {
        let _ = self.commands.send(Command::SetTimers(timers)).await;
    }

    /// Sends AdminDown (diag 7) to the peer, repeated twice at the negotiated interval when that
    /// is at most 400 ms, then stops the session. Returns when done (under a second).
    pub async fn shutdown(mut self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(done_tx)).await.is_ok() {
            let _ = done_rx.await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for BfdSession {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct Driver {
    fsm: Session,
    peer: IpAddr,
    socket: SendSocket,
    status: watch::Sender<BfdStatus>,
    tx_deadline: Option<tokio::time::Instant>,
    detection_deadline: Option<tokio::time::Instant>,
    up_since: Option<Instant>,
    failures: u64,
}

async fn wait_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn run(
        mut self,
        mut packets: mpsc::Receiver<ControlPacket>,
        mut commands: mpsc::Receiver<Command>,
        _deregister: Deregister,
    ) {
        self.apply(Event::Enable).await;
        loop {
            let event = tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::SetTimers(timers)) => Event::SetTimers(timers),
                    Some(Command::Shutdown(done)) => {
                        self.shutdown().await;
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                Some(packet) = packets.recv() => Event::PacketReceived(packet),
                () = wait_until(self.tx_deadline) => Event::TxTimerExpired,
                () = wait_until(self.detection_deadline) => Event::DetectionTimerExpired,
            };
            self.apply(event).await;
        }
    }

    async fn shutdown(&mut self) {
        let negotiated = self.fsm.tx_interval();
        let was_active = matches!(self.fsm.state(), State::Up | State::Init);
        self.apply(Event::AdminDown).await;
        let Some(interval) =
            negotiated.filter(|i| was_active && *i <= SHUTDOWN_REPEAT_MAX_INTERVAL)
        else {
            return;
        };
        for _ in 0..SHUTDOWN_REPEATS {
            tokio::time::sleep(interval).await;
            self.apply(Event::TxTimerExpired).await;
        }
    }

    async fn apply(&mut self, event: Event) {
        let actions = self.fsm.handle(event);
        let now = tokio::time::Instant::now();
        // A timer that fired is spent; the state machine re-arms it if it should run on.
        match event {
            Event::TxTimerExpired => self.tx_deadline = None,
            Event::DetectionTimerExpired => self.detection_deadline = None,
            _ => {}
        }
        for action in actions {
            match action {
                Action::SendPacket(packet) => {
                    if let Err(error) = self.socket.send(&packet.encode()).await {
                        tracing::debug!(peer = %self.peer, %error, "BFD send failed");
                    }
                }
                Action::ArmTxTimer(after) => self.tx_deadline = Some(now + after),
                Action::StopTxTimer => self.tx_deadline = None,
                Action::ArmDetectionTimer(after) => self.detection_deadline = Some(now + after),
                Action::StopDetectionTimer => self.detection_deadline = None,
                Action::StateChanged { from, to, diag } => self.on_state_change(from, to, diag),
            }
        }
        let status = status_of(&self.fsm, self.peer, self.up_since, self.failures);
        self.status.send_if_modified(|current| {
            if *current == status {
                false
            } else {
                *current = status;
                true
            }
        });
    }

    fn on_state_change(&mut self, from: State, to: State, diag: Diag) {
        if to == State::Up {
            self.up_since = Some(Instant::now());
        } else if from == State::Up {
            self.up_since = None;
        }
        // peer_admin_down is settled once handle() returns; a Down from Up is a failure unless
        // the peer asked for it or we are shutting down ourselves.
        let failure = from == State::Up && to == State::Down && !self.fsm.peer_admin_down();
        if failure {
            self.failures += 1;
            tracing::warn!(peer = %self.peer, %from, %to, %diag, "BFD session down");
        } else {
            tracing::info!(peer = %self.peer, %from, %to, %diag, "BFD session state changed");
        }
    }
}

fn status_of(fsm: &Session, peer: IpAddr, up_since: Option<Instant>, failures: u64) -> BfdStatus {
    BfdStatus {
        peer,
        state: fsm.state(),
        remote_state: fsm.remote_state(),
        diag: fsm.local_diag(),
        remote_diag: fsm.remote_diag(),
        peer_admin_down: fsm.peer_admin_down(),
        local_discriminator: fsm.local_discriminator().get(),
        remote_discriminator: fsm.remote_discriminator(),
        tx_interval: fsm.tx_interval(),
        rx_interval: fsm.rx_interval(),
        detection_time: fsm.detection_time(),
        remote_detect_mult: fsm.remote_detect_mult(),
        up_since,
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BfdConfig {
        BfdConfig {
            peer: IpAddr::from([192, 0, 2, 1]),
            local: IpAddr::from([192, 0, 2, 2]),
            desired_min_tx: Duration::from_millis(100),
            required_min_rx: Duration::from_millis(100),
            detect_mult: 3,
        }
    }

    #[test]
    fn bfd_config_validation_rejects_what_could_not_work() {
        assert!(validate(&config()).is_ok());
        let fast = BfdConfig {
            desired_min_tx: Duration::from_millis(5),
            ..config()
        };
        assert!(matches!(validate(&fast), Err(BfdError::InvalidConfig(_))));
        let zero_rx = BfdConfig {
            required_min_rx: Duration::ZERO,
            ..config()
        };
        assert!(matches!(
            validate(&zero_rx),
            Err(BfdError::InvalidConfig(_))
        ));
        let no_mult = BfdConfig {
            detect_mult: 0,
            ..config()
        };
        assert!(matches!(
            validate(&no_mult),
            Err(BfdError::InvalidConfig(_))
        ));
        let mixed = BfdConfig {
            peer: "2001:db8::1".parse().expect("v6 literal"),
            ..config()
        };
        assert!(matches!(
            validate(&mixed),
            Err(BfdError::AddressFamilyMismatch { .. })
        ));
    }
}
