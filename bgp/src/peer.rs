//! The per-peer tokio task: the thin driver around [`Session`]. It owns one peer's socket,
//! timers, outgoing connection attempt and Adj-RIB-Out (the routes this peer has from us), turns
//! socket bytes, timers and commands into FSM events, and performs the FSM's actions.
//!
//! Received UPDATEs are validated and counted by the wire facade, then dropped: nothing is kept
//! per received prefix.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::session::{
    Action, CollisionWinner, Event, Negotiated, Session, SessionConfig, State, Timer,
    resolve_collision,
};
use crate::speaker::{PeerConfig, PeerStatus, SpeakerConfig};
use crate::transport::{self, Candidate, Incoming, TtlPolicy};
use crate::wire::{
    Announcement, DecodeContext, Family, FrameReader, Message, Notification, Open, Route,
    UpdateDisposition, decode_message, encode,
};

/// Commands from the handle and the listener to one peer task.
pub(crate) enum PeerCommand {
    /// Administrative stop; the sender is told when the session is closed.
    Stop(Option<Notification>, oneshot::Sender<()>),
    /// External "peer is gone" (BFD).
    ForceDown(String),
    /// The listener accepted a connection from this peer.
    Incoming(Incoming),
    /// A second connection whose OPEN was read, for collision resolution.
    Candidate(Candidate),
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// How long one write may block before the connection is considered dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a colliding connection gets to send its OPEN.
const COLLISION_OPEN_WAIT: Duration = Duration::from_secs(10);

/// Tiny xorshift64* generator for timer jitter; seeded from the clock and the peer address.
struct Jitter(u64);

impl Jitter {
    fn new(addr: IpAddr) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let a = match addr {
            IpAddr::V4(a) => u64::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a) as u64,
        };
        Self((t ^ a.rotate_left(17)) | 1)
    }

    /// `d` scaled by a factor in [0.75, 1.0] (RFC 4271 §10).
    fn apply(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40; // 24 random bits
        let factor = 0.75 + 0.25 * (r as f64 / f64::from(1u32 << 24));
        d.mul_f64(factor)
    }
}

pub(crate) struct PeerTask {
    speaker: Arc<SpeakerConfig>,
    peer: PeerConfig,
    ttl: TtlPolicy,
    fsm: Session,
    conn: Option<TcpStream>,
    conn_is_ours: bool,
    reader: FrameReader,
    connecting: Option<Connecting>,
    timers: [Option<Instant>; 3],
    jitter: Jitter,
    routes: watch::Receiver<Arc<BTreeSet<Route>>>,
    routes_open: bool,
    adj_out: BTreeSet<Route>,
    announcement: Option<Announcement>,
    decode: DecodeContext,
    commands: mpsc::Receiver<PeerCommand>,
    command_tx: mpsc::Sender<PeerCommand>,
    status: watch::Sender<PeerStatus>,
    events: VecDeque<Event>,
}

fn timer_index(t: Timer) -> usize {
    match t {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
    }
}

const TIMERS: [Timer; 3] = [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive];

async fn read_some(conn: &mut Option<TcpStream>, reader: &mut FrameReader) -> io::Result<usize> {
    match conn {
        Some(c) => c.read_buf(reader.buffer()).await,
        None => std::future::pending().await,
    }
}

async fn connected(connecting: &mut Option<Connecting>) -> io::Result<TcpStream> {
    match connecting {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl PeerTask {
    pub(crate) fn new(
        speaker: Arc<SpeakerConfig>,
        peer: PeerConfig,
        ttl: TtlPolicy,
        routes: watch::Receiver<Arc<BTreeSet<Route>>>,
        commands: mpsc::Receiver<PeerCommand>,
        command_tx: mpsc::Sender<PeerCommand>,
        status: watch::Sender<PeerStatus>,
    ) -> Self {
        let v6 = peer.address.is_ipv6();
        let open = Open::ours(
            speaker.local_asn,
            speaker.hold_time,
            speaker.router_id,
            !v6,
            v6,
        );
        let fsm = Session::new(SessionConfig {
            open,
            peer_asn: peer.asn,
            passive: peer.passive,
        });
        Self {
            jitter: Jitter::new(peer.address),
            decode: DecodeContext {
                ibgp: peer.asn == speaker.local_asn,
                ..DecodeContext::default()
            },
            speaker,
            peer,
            ttl,
            fsm,
            conn: None,
            conn_is_ours: false,
            reader: FrameReader::new(),
            connecting: None,
            timers: [None; 3],
            routes,
            routes_open: true,
            adj_out: BTreeSet::new(),
            announcement: None,
            commands,
            command_tx,
            status,
            events: VecDeque::new(),
        }
    }

    fn family(&self) -> Family {
        Family::of(self.peer.address)
    }

    pub(crate) async fn run(mut self) {
        self.feed(Event::ManualStart).await;
        loop {
            let deadline = self.timers.iter().flatten().min().copied();
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    None => {
                        self.feed(Event::ManualStop(None)).await;
                        return;
                    }
                    Some(PeerCommand::Stop(n, done)) => {
                        self.feed(Event::ManualStop(n)).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(PeerCommand::ForceDown(why)) => self.feed(Event::ForceDown(why)).await,
                    Some(PeerCommand::Incoming(i)) => self.on_incoming(i.stream).await,
                    Some(PeerCommand::Candidate(c)) => self.on_candidate(c).await,
                },
                res = read_some(&mut self.conn, &mut self.reader) => self.on_read(res).await,
                res = connected(&mut self.connecting) => {
                    self.connecting = None;
                    match res {
                        Ok(stream) => {
                            self.conn = Some(stream);
                            self.conn_is_ours = true;
                            self.reader = FrameReader::new();
                            self.feed(Event::TcpConnectionConfirmed).await;
                        }
                        Err(e) => {
                            self.set_last_error(format!("connect: {e}"));
                            self.feed(Event::TcpConnectionFails).await;
                        }
                    }
                }
                () = sleep_until(deadline) => self.on_timers().await,
                changed = self.routes.changed(), if self.routes_open => {
                    if changed.is_ok() {
                        self.feed(Event::RoutesChanged).await;
                    } else {
                        self.routes_open = false;
                    }
                }
            }
        }
    }

    async fn on_timers(&mut self) {
        let now = Instant::now();
        for t in TIMERS {
            let i = timer_index(t);
            if self.timers[i].is_some_and(|d| d <= now) {
                self.timers[i] = None;
                let ev = match t {
                    Timer::ConnectRetry => Event::ConnectRetryTimerExpires,
                    Timer::Hold => Event::HoldTimerExpires,
                    Timer::Keepalive => Event::KeepaliveTimerExpires,
                };
                self.feed(ev).await;
            }
        }
    }

    async fn on_read(&mut self, res: io::Result<usize>) {
        match res {
            Ok(0) | Err(_) => {
                if let Err(e) = res {
                    self.set_last_error(format!("read: {e}"));
                }
                self.feed(Event::TcpConnectionFails).await;
            }
            Ok(_) => {
                while self.conn.is_some() {
                    let frame = match self.reader.next_frame() {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(n) => {
                            self.feed(Event::MessageError(n)).await;
                            break;
                        }
                    };
                    self.status.send_modify(|s| s.messages_received += 1);
                    let ev = self.event_of(decode_message(frame, &self.decode));
                    self.feed(ev).await;
                }
            }
        }
    }

    fn event_of(&mut self, msg: Result<Message, Notification>) -> Event {
        match msg {
            Err(n) => Event::MessageError(n),
            Ok(Message::Open(o)) => Event::BgpOpen(o),
            Ok(Message::Keepalive) => Event::KeepAliveMsg,
            Ok(Message::Notification(n)) => Event::NotifMsg(n),
            Ok(Message::RouteRefresh(r)) => Event::RouteRefreshMsg(r),
            Ok(Message::Update(u)) => {
                let malformed = u.disposition != UpdateDisposition::Clean;
                if malformed {
                    tracing::info!(peer = %self.peer.address, disposition = ?u.disposition,
                        "bgp: malformed UPDATE handled per RFC 7606");
                }
                self.status.send_modify(|s| {
                    s.updates_received += 1;
                    s.prefixes_received += u64::from(u.announced);
                    s.updates_malformed += u64::from(malformed);
                });
                Event::UpdateMsg(u)
            }
        }
    }

    async fn on_incoming(&mut self, stream: TcpStream) {
        match self.fsm.state() {
            State::Idle => {}
            State::Connect | State::Active => {
                self.connecting = None;
                self.conn = Some(stream);
                self.conn_is_ours = false;
                self.reader = FrameReader::new();
                self.feed(Event::TcpConnectionConfirmed).await;
            }
            State::OpenSent | State::OpenConfirm => {
                // RFC 4271 §6.8: we need the peer's identifier from the new connection's OPEN.
                let tx = self.command_tx.clone();
                tokio::spawn(async move {
                    if let Some(c) = transport::read_open(stream, COLLISION_OPEN_WAIT).await {
                        let _ = tx.send(PeerCommand::Candidate(c)).await;
                    }
                });
            }
            State::Established => {
                // §6.8: a collision with an Established session closes the new connection.
                reject(
                    stream,
                    Notification::new(Notification::CEASE, Notification::CEASE_COLLISION),
                )
                .await;
            }
        }
    }

    async fn on_candidate(&mut self, c: Candidate) {
        let winner = match self.fsm.state() {
            State::Idle | State::Established => CollisionWinner::Existing,
            State::Connect | State::Active => CollisionWinner::New,
            State::OpenSent | State::OpenConfirm => resolve_collision(
                self.speaker.router_id,
                self.speaker.local_asn,
                c.open.router_id,
                self.peer.asn,
                self.conn_is_ours,
            ),
        };
        if winner == CollisionWinner::Existing {
            let n = Notification::new(Notification::CEASE, Notification::CEASE_COLLISION);
            reject(c.stream, n).await;
            return;
        }
        if matches!(self.fsm.state(), State::OpenSent | State::OpenConfirm) {
            self.feed(Event::CollisionLost).await;
        }
        self.connecting = None;
        self.conn = Some(c.stream);
        self.conn_is_ours = false;
        self.reader = c.reader;
        self.feed(Event::TcpConnectionConfirmed).await;
        self.feed(Event::BgpOpen(c.open)).await;
    }

    /// Runs the FSM on `event` and everything its actions cause.
    async fn feed(&mut self, event: Event) {
        self.events.push_back(event);
        while let Some(ev) = self.events.pop_front() {
            let before = self.fsm.state();
            let actions = self.fsm.handle(ev);
            let after = self.fsm.state();
            if before != after {
                tracing::debug!(peer = %self.peer.address, ?before, ?after, "bgp: state");
                self.status.send_modify(|s| s.state = after);
            }
            for a in actions {
                self.perform(a).await;
            }
        }
    }

    async fn perform(&mut self, action: Action) {
        match action {
            Action::Connect => {
                self.conn = None;
                let fut = transport::connect(self.peer.clone(), self.ttl);
                self.connecting = Some(Box::pin(fut));
            }
            Action::SendOpen(o) => match encode::open(&o) {
                Ok(b) => self.send(vec![b]).await,
                Err(e) => tracing::error!(error = %e, "bgp: cannot encode our OPEN"),
            },
            Action::SendKeepalive => self.send(vec![encode::keepalive()]).await,
            Action::SendNotification(n) => {
                tracing::info!(peer = %self.peer.address, notification = %n, "bgp: sending NOTIFICATION");
                self.send(vec![encode::notification(&n)]).await;
            }
            Action::SendFullTable => {
                self.adj_out.clear();
                self.sync_routes().await;
                self.send(vec![encode::end_of_rib(self.family())]).await;
            }
            Action::SendRouteChanges => self.sync_routes().await,
            Action::ResendRoutes(_) => {
                let all: Vec<Route> = self.adj_out.iter().copied().collect();
                self.announce(&all).await;
            }
            Action::WithdrawAll => {
                let all: Vec<Route> = self.adj_out.iter().copied().collect();
                self.withdraw(&all).await;
                self.adj_out.clear();
                self.status.send_modify(|s| s.prefixes_sent = 0);
            }
            Action::StartTimer(t, d) => {
                let d = match t {
                    Timer::Hold => d,
                    Timer::ConnectRetry | Timer::Keepalive => self.jitter.apply(d),
                };
                self.timers[timer_index(t)] = Some(Instant::now() + d);
            }
            Action::StopTimer(t) => self.timers[timer_index(t)] = None,
            Action::CloseConnection => {
                if let Some(mut c) = self.conn.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), c.shutdown()).await;
                }
                self.connecting = None;
                self.reader = FrameReader::new();
            }
            Action::SessionEstablished(neg) => self.on_established(&neg),
            Action::SessionDown {
                reason,
                was_established,
            } => {
                tracing::warn!(peer = %self.peer.address, %reason, was_established, "bgp: session down");
                self.adj_out.clear();
                self.announcement = None;
                self.decode.max_len = crate::wire::MAX_MESSAGE_LEN;
                self.status.send_modify(|s| {
                    s.last_error = Some(reason.to_string());
                    s.established_at = None;
                    s.negotiated = None;
                    s.prefixes_sent = 0;
                    s.flaps += u64::from(was_established);
                });
            }
        }
    }

    fn on_established(&mut self, neg: &Negotiated) {
        tracing::info!(peer = %self.peer.address, hold = neg.hold_time, "bgp: session established");
        self.reader.set_max_len(neg.max_message_len());
        self.decode.max_len = neg.max_message_len();
        self.decode.four_octet_as = neg.four_octet_as;
        let local = self
            .conn
            .as_ref()
            .and_then(|c| c.local_addr().ok())
            .map(|a| a.ip());
        let attrs = &self.speaker.attributes;
        let ibgp = self.peer.asn == self.speaker.local_asn;
        let next_hop = match self.family() {
            Family::Ipv4Unicast => attrs.next_hop_v4.map(IpAddr::V4),
            Family::Ipv6Unicast => attrs.next_hop_v6.map(IpAddr::V6),
        }
        .or(local);
        self.announcement = next_hop.map(|next_hop| Announcement {
            as_path: if ibgp {
                vec![]
            } else {
                vec![self.speaker.local_asn]
            },
            next_hop,
            med: attrs.med,
            local_pref: if ibgp {
                Some(attrs.local_pref.unwrap_or(100))
            } else {
                None
            },
            communities: attrs.communities.clone(),
            large_communities: attrs.large_communities.clone(),
        });
        self.status.send_modify(|s| {
            s.established_at = Some(std::time::Instant::now());
            s.negotiated = Some(neg.clone());
        });
    }

    /// Sends the difference between the desired set (this family) and the Adj-RIB-Out.
    async fn sync_routes(&mut self) {
        let fam = self.family();
        let desired: BTreeSet<Route> = self
            .routes
            .borrow_and_update()
            .iter()
            .filter(|r| r.family() == fam)
            .copied()
            .collect();
        let gone: Vec<Route> = self.adj_out.difference(&desired).copied().collect();
        let new: Vec<Route> = desired.difference(&self.adj_out).copied().collect();
        self.withdraw(&gone).await;
        self.announce(&new).await;
        let n = desired.len() as u64;
        self.adj_out = desired;
        self.status.send_modify(|s| s.prefixes_sent = n);
    }

    async fn announce(&mut self, routes: &[Route]) {
        let Some(a) = &self.announcement else { return };
        let four = self.decode.four_octet_as;
        match encode::announce(routes, a, four, self.decode.max_len) {
            Ok(msgs) => self.send(msgs).await,
            Err(e) => {
                tracing::error!(peer = %self.peer.address, error = %e, "bgp: cannot encode UPDATE")
            }
        }
    }

    async fn withdraw(&mut self, routes: &[Route]) {
        match encode::withdraw(routes, self.decode.max_len) {
            Ok(msgs) => self.send(msgs).await,
            Err(e) => {
                tracing::error!(peer = %self.peer.address, error = %e, "bgp: cannot encode withdraw")
            }
        }
    }

    /// Writes messages; a failed or stuck write becomes a TcpConnectionFails event.
    async fn send(&mut self, msgs: Vec<Bytes>) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let count = msgs.len() as u64;
        let res = tokio::time::timeout(WRITE_TIMEOUT, async {
            for m in &msgs {
                conn.write_all(m).await?;
            }
            io::Result::Ok(())
        })
        .await;
        match res {
            Ok(Ok(())) => self.status.send_modify(|s| s.messages_sent += count),
            Ok(Err(e)) => {
                self.set_last_error(format!("write: {e}"));
                self.conn = None;
                self.events.push_back(Event::TcpConnectionFails);
            }
            Err(_) => {
                self.set_last_error("write: timed out".into());
                self.conn = None;
                self.events.push_back(Event::TcpConnectionFails);
            }
        }
    }

    fn set_last_error(&self, e: String) {
        self.status.send_modify(|s| s.last_error = Some(e));
    }
}

/// Closes a connection we do not want, telling the peer why.
async fn reject(mut stream: TcpStream, n: Notification) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(&encode::notification(&n)).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_three_quarters_and_one() {
        let mut j = Jitter::new("10.0.0.1".parse().expect("ip"));
        let d = Duration::from_secs(8);
        let mut seen = BTreeSet::new();
        for _ in 0..1000 {
            let x = j.apply(d);
            assert!(x >= Duration::from_secs(6) && x <= d, "{x:?}");
            seen.insert(x.as_millis() / 100);
        }
        // Actually spread, not constant.
        assert!(seen.len() > 10, "{seen:?}");
    }
}
