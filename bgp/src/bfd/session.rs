//! The BFD session state machine of RFC 5880 §6.8 for asynchronous mode, with no I/O.
//!
//! Owns: the state variables of §6.8.1, the Down/Init/Up transitions of §6.8.6, slow start
//! (1 s transmit interval until Up, §6.8.3), the poll/final sequence for timer changes (§6.5,
//! §6.8.3), transmit intervals with jitter (§6.8.2, §6.8.7) and the detection time (§6.8.4).
//! Timers are events in and actions out; the driver owns the clocks and the sockets.
//!
//! Does not own: demand mode, echo mode and authentication (never used: we send D=0, echo
//! interval 0 and no auth section), session selection (the driver demultiplexes), or deciding
//! what a state change means for BGP.

use std::num::NonZeroU32;
use std::time::Duration;

use super::packet::{ControlPacket, Diag, State};

/// Transmit interval while the session is not Up (RFC 5880 §6.8.3: at least one second).
pub const SLOW_TX_US: u32 = 1_000_000;

/// The locally configured timer parameters of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// How often we would like to send once Up (bfd.DesiredMinTxInterval).
    pub desired_min_tx: Duration,
    /// The fastest rate at which we accept packets (bfd.RequiredMinRxInterval).
    pub required_min_rx: Duration,
    /// How many missed intervals the peer tolerates before declaring us down (bfd.DetectMult).
    pub detect_mult: u8,
}

/// Something that happened to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Start the session, or bring it back from AdminDown to Down (§6.8.16).
    Enable,
    /// Hold the session administratively down; packets then carry AdminDown (§6.8.16).
    AdminDown,
    /// A control packet addressed to this session arrived and passed the codec's checks.
    PacketReceived(ControlPacket),
    /// The periodic transmit timer fired.
    TxTimerExpired,
    /// No packet arrived for one detection time.
    DetectionTimerExpired,
    /// The configured timers changed (starts a poll sequence while Up).
    SetTimers(Timers),
}

/// Something the driver must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send this packet to the peer now.
    SendPacket(ControlPacket),
    /// (Re)arm the transmit timer to fire after this long; replaces any armed deadline.
    ArmTxTimer(Duration),
    /// Stop periodic transmission (the peer asked for none: Required Min RX 0).
    StopTxTimer,
    /// (Re)arm the detection timer to fire after this long; replaces any armed deadline.
    ArmDetectionTimer(Duration),
    /// Disarm the detection timer.
    StopDetectionTimer,
    /// The local session state changed, for the given reason.
    StateChanged {
        /// State before.
        from: State,
        /// State after.
        to: State,
        /// bfd.LocalDiag after the change.
        diag: Diag,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poll {
    Idle,
    Active,
    /// Parameters changed again while polling: the next Final may answer a poll that carried
    /// the older values, so it only starts another round.
    ActiveRestart,
}

/// One BFD session's state (RFC 5880 §6.8.1 names in the comments).
#[derive(Debug, Clone)]
pub struct Session {
    timers: Timers,
    /// bfd.SessionState
    state: State,
    /// bfd.RemoteSessionState
    remote_state: State,
    /// bfd.LocalDiscr
    local_discr: NonZeroU32,
    /// bfd.RemoteDiscr
    remote_discr: u32,
    /// bfd.LocalDiag
    local_diag: Diag,
    remote_diag: Diag,
    /// bfd.DesiredMinTxInterval as advertised, µs.
    desired_min_tx_us: u32,
    /// bfd.RequiredMinRxInterval as advertised, µs.
    required_min_rx_us: u32,
    /// Desired TX used for our transmit interval; lags an increase until the poll ends.
    tx_in_effect_us: u32,
    /// Required RX used for the detection time; lags a decrease until the poll ends.
    rx_for_detection_us: u32,
    /// bfd.RemoteMinRxInterval
    remote_min_rx_us: u32,
    remote_desired_min_tx_us: u32,
    remote_detect_mult: u8,
    poll: Poll,
    /// The un-jittered periodic interval the tx timer was last armed with.
    armed_interval_us: Option<u32>,
    peer_admin_down: bool,
    rng: u64,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Session {
    /// A session in state Down that sends nothing until [`Event::Enable`]. `seed` feeds the
    /// transmit jitter (any value; tests pass a fixed one).
    pub fn new(timers: Timers, local_discr: NonZeroU32, seed: u64) -> Session {
        let timers = Timers {
            desired_min_tx: timers.desired_min_tx.max(Duration::from_micros(1)),
            required_min_rx: timers.required_min_rx,
            detect_mult: timers.detect_mult.max(1),
        };
        let desired = micros(timers.desired_min_tx).max(SLOW_TX_US);
        let required = micros(timers.required_min_rx);
        Session {
            timers,
            state: State::Down,
            remote_state: State::Down,
            local_discr,
            remote_discr: 0,
            local_diag: Diag::None,
            remote_diag: Diag::None,
            desired_min_tx_us: desired,
            required_min_rx_us: required,
            tx_in_effect_us: desired,
            rx_for_detection_us: required,
            remote_min_rx_us: 1,
            remote_desired_min_tx_us: 0,
            remote_detect_mult: 0,
            poll: Poll::Idle,
            armed_interval_us: None,
            peer_admin_down: false,
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    /// Applies one event and returns what the driver must do, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Enable => {
                if self.state == State::AdminDown {
                    self.transition(State::Down, Diag::None, &mut actions);
                }
                self.send_now(&mut actions);
            }
            Event::AdminDown => {
                if self.state != State::AdminDown {
                    self.transition(State::AdminDown, Diag::AdministrativelyDown, &mut actions);
                    actions.push(Action::StopDetectionTimer);
                }
                self.send_now(&mut actions);
            }
            Event::TxTimerExpired => match self.periodic_interval_us() {
                Some(interval) => {
                    actions.push(Action::SendPacket(self.packet(false)));
                    self.arm_tx(interval, &mut actions);
                }
                None => self.armed_interval_us = None,
            },
            Event::DetectionTimerExpired => self.on_detection_timeout(&mut actions),
            Event::PacketReceived(packet) => self.on_packet(packet, &mut actions),
            Event::SetTimers(timers) => self.on_set_timers(timers, &mut actions),
        }
        actions
    }

    fn on_detection_timeout(&mut self, actions: &mut Vec<Action>) {
        // §6.8.1: forget the remote after a detection time of silence; a fresh
        // RemoteMinRxInterval of 1 µs lets us keep sending at our own (slow) rate.
        self.remote_discr = 0;
        self.remote_state = State::Down;
        self.remote_min_rx_us = 1;
        if matches!(self.state, State::Init | State::Up) {
            self.transition(State::Down, Diag::ControlDetectionTimeExpired, actions);
            self.send_now(actions);
        } else {
            self.rearm_tx_if_interval_changed(actions);
        }
    }

    fn on_packet(&mut self, packet: ControlPacket, actions: &mut Vec<Action>) {
        if packet.your_discriminator != 0 && packet.your_discriminator != self.local_discr.get() {
            return;
        }
        self.remote_discr = packet.my_discriminator;
        self.remote_state = packet.state;
        self.remote_diag = packet.diag;
        self.remote_min_rx_us = packet.required_min_rx_us;
        self.remote_desired_min_tx_us = packet.desired_min_tx_us;
        self.remote_detect_mult = packet.detect_mult;
        if packet.final_ && self.poll != Poll::Idle {
            self.finish_poll();
        }
        if self.state == State::AdminDown {
            self.rearm_tx_if_interval_changed(actions);
            return;
        }
        actions.push(Action::ArmDetectionTimer(self.detection_time()));

        let before = self.state;
        if packet.state == State::AdminDown {
            if self.state != State::Down {
                self.transition(State::Down, Diag::NeighborSignaledDown, actions);
                self.peer_admin_down = true;
            }
        } else {
            match (self.state, packet.state) {
                (State::Down, State::Down) => self.transition(State::Init, Diag::None, actions),
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.transition(State::Up, Diag::None, actions)
                }
                (State::Up, State::Down) => {
                    self.transition(State::Down, Diag::NeighborSignaledDown, actions)
                }
                _ => {}
            }
        }

        if packet.poll {
            // §6.8.6: answer at once, whatever the timers; the answer carries the new state too.
            actions.push(Action::SendPacket(self.packet(true)));
            self.rearm_tx_if_interval_changed(actions);
        } else if self.state != before {
            // Not required by the RFC, but telling the peer at once saves up to a slow-start
            // second per step of the three-way handshake.
            self.send_now(actions);
        } else {
            self.rearm_tx_if_interval_changed(actions);
        }
    }

    fn on_set_timers(&mut self, timers: Timers, actions: &mut Vec<Action>) {
        self.timers = Timers {
            desired_min_tx: timers.desired_min_tx.max(Duration::from_micros(1)),
            required_min_rx: timers.required_min_rx,
            detect_mult: timers.detect_mult.max(1),
        };
        let changed = self.apply_desired_tx(self.target_desired_tx_us())
            | self.apply_required_rx(micros(self.timers.required_min_rx));
        if changed && self.state == State::Up {
            self.start_poll();
            self.send_now(actions);
        } else {
            self.rearm_tx_if_interval_changed(actions);
        }
    }

    /// What bfd.DesiredMinTxInterval should be in the current state (slow start).
    fn target_desired_tx_us(&self) -> u32 {
        let configured = micros(self.timers.desired_min_tx);
        if self.state == State::Up {
            configured
        } else {
            configured.max(SLOW_TX_US)
        }
    }

    /// Advertises a new desired TX. An increase while Up waits for the poll's end before it
    /// slows our transmissions, so that the peer has widened its detection time first (§6.8.3).
    fn apply_desired_tx(&mut self, new_us: u32) -> bool {
        if new_us == self.desired_min_tx_us {
            return false;
        }
        self.desired_min_tx_us = new_us;
        if self.state != State::Up || new_us < self.tx_in_effect_us {
            self.tx_in_effect_us = new_us;
        }
        true
    }

    /// Advertises a new required RX. A decrease while Up keeps the old value in our detection
    /// time until the poll ends, so the peer is already sending faster (§6.8.3).
    fn apply_required_rx(&mut self, new_us: u32) -> bool {
        if new_us == self.required_min_rx_us {
            return false;
        }
        self.required_min_rx_us = new_us;
        if self.state != State::Up || new_us > self.rx_for_detection_us {
            self.rx_for_detection_us = new_us;
        }
        true
    }

    fn start_poll(&mut self) {
        self.poll = match self.poll {
            Poll::Idle => Poll::Active,
            Poll::Active | Poll::ActiveRestart => Poll::ActiveRestart,
        };
    }

    fn finish_poll(&mut self) {
        if self.poll == Poll::ActiveRestart {
            self.poll = Poll::Active;
            return;
        }
        self.poll = Poll::Idle;
        self.tx_in_effect_us = self.desired_min_tx_us;
        self.rx_for_detection_us = self.required_min_rx_us;
    }

    fn transition(&mut self, to: State, diag: Diag, actions: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.local_diag = diag;
        if to == State::Up {
            self.peer_admin_down = false;
            if self.apply_desired_tx(self.target_desired_tx_us()) {
                self.start_poll();
            }
        } else if from == State::Up {
            self.poll = Poll::Idle;
            self.apply_desired_tx(self.target_desired_tx_us());
            self.tx_in_effect_us = self.desired_min_tx_us;
            self.rx_for_detection_us = self.required_min_rx_us;
        }
        actions.push(Action::StateChanged { from, to, diag });
    }

    /// Sends a packet immediately and restarts the periodic timer from now.
    fn send_now(&mut self, actions: &mut Vec<Action>) {
        actions.push(Action::SendPacket(self.packet(false)));
        match self.periodic_interval_us() {
            Some(interval) => self.arm_tx(interval, actions),
            None => self.stop_tx(actions),
        }
    }

    fn rearm_tx_if_interval_changed(&mut self, actions: &mut Vec<Action>) {
        let interval = self.periodic_interval_us();
        if interval == self.armed_interval_us {
            return;
        }
        match interval {
            Some(interval) => self.arm_tx(interval, actions),
            None => self.stop_tx(actions),
        }
    }

    fn arm_tx(&mut self, interval_us: u32, actions: &mut Vec<Action>) {
        self.armed_interval_us = Some(interval_us);
        actions.push(Action::ArmTxTimer(self.jittered(interval_us)));
    }

    fn stop_tx(&mut self, actions: &mut Vec<Action>) {
        if self.armed_interval_us.take().is_some() {
            actions.push(Action::StopTxTimer);
        }
    }

    /// §6.8.7: the greater of our desired TX and the peer's required RX; none if the peer asked
    /// for no periodic packets.
    fn periodic_interval_us(&self) -> Option<u32> {
        (self.remote_min_rx_us != 0).then(|| self.tx_in_effect_us.max(self.remote_min_rx_us))
    }

    /// §6.8.7: reduce by 0-25 %, or by 10-25 % when our detect multiplier is 1, so that a single
    /// late packet cannot bring the session down.
    fn jittered(&mut self, interval_us: u32) -> Duration {
        // xorshift64: enough to de-synchronise senders; nothing here needs to be unpredictable.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let (low, high) = if self.timers.detect_mult == 1 {
            (750, 900)
        } else {
            (750, 1000)
        };
        let permille = low + self.rng % (high - low + 1);
        Duration::from_micros(u64::from(interval_us) * permille / 1000)
    }

    fn packet(&self, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            // §6.5: never P and F together.
            poll: self.poll != Poll::Idle && !final_,
            final_,
            control_plane_independent: false,
            auth_present: false,
            demand: false,
            multipoint: false,
            detect_mult: self.timers.detect_mult,
            my_discriminator: self.local_discr.get(),
            your_discriminator: self.remote_discr,
            desired_min_tx_us: self.desired_min_tx_us,
            required_min_rx_us: self.required_min_rx_us,
            required_min_echo_rx_us: 0,
        }
    }

    /// bfd.SessionState.
    pub fn state(&self) -> State {
        self.state
    }

    /// bfd.RemoteSessionState: the state in the last packet from the peer.
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// bfd.LocalDiag: why the session last changed state.
    pub fn local_diag(&self) -> Diag {
        self.local_diag
    }

    /// The diagnostic in the last packet from the peer.
    pub fn remote_diag(&self) -> Diag {
        self.remote_diag
    }

    /// bfd.LocalDiscr.
    pub fn local_discriminator(&self) -> NonZeroU32 {
        self.local_discr
    }

    /// bfd.RemoteDiscr (zero while unknown).
    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discr
    }

    /// True when the last Down was caused by the peer's AdminDown (RFC 5882 §3.2: not a
    /// failure of the path); cleared when the session comes Up.
    pub fn peer_admin_down(&self) -> bool {
        self.peer_admin_down
    }

    /// Our periodic transmit interval before jitter, `None` when the peer asked for none.
    pub fn tx_interval(&self) -> Option<Duration> {
        self.periodic_interval_us()
            .map(|us| Duration::from_micros(u64::from(us)))
    }

    /// The interval at which the peer is allowed to send to us: the greater of our required RX
    /// and its desired TX.
    pub fn rx_interval(&self) -> Duration {
        Duration::from_micros(u64::from(
            self.rx_for_detection_us.max(self.remote_desired_min_tx_us),
        ))
    }

    /// §6.8.4: the peer's detect multiplier times the interval it sends at.
    pub fn detection_time(&self) -> Duration {
        self.rx_interval() * u32::from(self.remote_detect_mult)
    }

    /// The peer's detect multiplier (zero before its first packet).
    pub fn remote_detect_mult(&self) -> u8 {
        self.remote_detect_mult
    }

    /// True while a poll sequence waits for its Final.
    pub fn poll_in_progress(&self) -> bool {
        self.poll != Poll::Idle
    }

    /// The configured timers.
    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// bfd.DesiredMinTxInterval as currently advertised (1 s or more until Up).
    pub fn advertised_desired_min_tx(&self) -> Duration {
        Duration::from_micros(u64::from(self.desired_min_tx_us))
    }
}
