//! The tokio task of one session: feeds packets, timer expiries and commands into the state
//! machine, carries out its actions (send, arm timers) and publishes a `BfdStatus` after each
//! event. Holds no protocol logic of its own beyond the bounded AdminDown burst on shutdown.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::sleep_until;

use super::BfdStatus;
use super::packet::{ControlPacket, Diag, State};
use super::registry::Deregister;
use super::session::{Action, Event, Session, Timers};
use super::socket::SendSocket;

/// Longest interval at which the extra AdminDown packets of a shutdown are repeated; beyond it
/// only the first is sent, to keep shutdown bounded.
const SHUTDOWN_REPEAT_MAX_INTERVAL: Duration = Duration::from_millis(400);
/// AdminDown packets sent after the first one on shutdown, in case one is lost.
const SHUTDOWN_REPEATS: usize = 2;

/// What a `BfdSession` handle asks of its task.
pub(crate) enum Command {
    Shutdown(oneshot::Sender<()>),
    SetTimers(Timers),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Shutdown(_) => f.write_str("Shutdown"),
            Command::SetTimers(t) => write!(f, "SetTimers({t:?})"),
        }
    }
}

/// One session's task state.
pub(crate) struct Driver {
    pub fsm: Session,
    pub peer: IpAddr,
    pub socket: SendSocket,
    pub status: watch::Sender<BfdStatus>,
    pub tx_deadline: Option<tokio::time::Instant>,
    pub detection_deadline: Option<tokio::time::Instant>,
    pub up_since: Option<Instant>,
    pub failures: u64,
}

async fn wait_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    pub async fn run(
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

pub(crate) fn status_of(
    fsm: &Session,
    peer: IpAddr,
    up_since: Option<Instant>,
    failures: u64,
) -> BfdStatus {
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
