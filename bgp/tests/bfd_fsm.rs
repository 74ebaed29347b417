//! The BFD session state machine driven by packet and timer sequences (RFC 5880 §6.8).

use std::num::NonZeroU32;
use std::time::Duration;

use cpvip_bgp::bfd::packet::{ControlPacket, Diag, State};
use cpvip_bgp::bfd::session::{Action, Event, Session, Timers};

const OURS: u32 = 0x0000_1234;
const THEIRS: u32 = 0x0bad_cafe;
const MS: u32 = 1000;

fn timers(tx_ms: u64, rx_ms: u64, mult: u8) -> Timers {
    Timers {
        desired_min_tx: Duration::from_millis(tx_ms),
        required_min_rx: Duration::from_millis(rx_ms),
        detect_mult: mult,
    }
}

fn session(mult: u8) -> Session {
    Session::new(
        timers(100, 100, mult),
        NonZeroU32::new(OURS).expect("non-zero"),
        42,
    )
}

/// What the peer sends; tests adjust fields.
fn peer(state: State) -> ControlPacket {
    ControlPacket {
        diag: Diag::None,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        auth_present: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discriminator: THEIRS,
        your_discriminator: if state == State::Down { 0 } else { OURS },
        desired_min_tx_us: 1000 * MS,
        required_min_rx_us: 100 * MS,
        required_min_echo_rx_us: 0,
    }
}

fn sent(actions: &[Action]) -> Vec<ControlPacket> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendPacket(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn tx_timer(actions: &[Action]) -> Option<Duration> {
    actions.iter().rev().find_map(|a| match a {
        Action::ArmTxTimer(d) => Some(*d),
        _ => None,
    })
}

fn detection_timer(actions: &[Action]) -> Option<Duration> {
    actions.iter().rev().find_map(|a| match a {
        Action::ArmDetectionTimer(d) => Some(*d),
        _ => None,
    })
}

fn state_changes(actions: &[Action]) -> Vec<(State, State, Diag)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged { from, to, diag } => Some((*from, *to, *diag)),
            _ => None,
        })
        .collect()
}

fn within(d: Duration, interval_ms: u64, low_permille: u64, high_permille: u64) -> bool {
    let us = d.as_micros() as u64;
    us >= interval_ms * low_permille && us <= interval_ms * high_permille
}

/// Brings a session Up through Down → Init → Up and completes our poll for the slow-start exit.
fn up_session() -> Session {
    let mut s = session(3);
    s.handle(Event::Enable);
    s.handle(Event::PacketReceived(peer(State::Down)));
    s.handle(Event::PacketReceived(peer(State::Up)));
    let mut fin = peer(State::Up);
    fin.final_ = true;
    // The peer also leaves slow start: it polls with its configured 100 ms.
    fin.desired_min_tx_us = 100 * MS;
    s.handle(Event::PacketReceived(fin));
    assert_eq!(s.state(), State::Up);
    assert!(!s.poll_in_progress());
    s
}

#[test]
fn enable_sends_down_at_the_slow_start_rate() {
    let mut s = session(3);
    let actions = s.handle(Event::Enable);
    let packets = sent(&actions);
    assert_eq!(packets.len(), 1);
    let p = packets[0];
    assert_eq!(p.state, State::Down);
    assert_eq!(p.my_discriminator, OURS);
    assert_eq!(p.your_discriminator, 0);
    assert_eq!(p.desired_min_tx_us, 1000 * MS, "1 s until Up (§6.8.3)");
    assert_eq!(p.required_min_rx_us, 100 * MS);
    assert_eq!(p.required_min_echo_rx_us, 0);
    assert_eq!(p.detect_mult, 3);
    assert!(!p.poll && !p.final_ && !p.demand && !p.auth_present);
    let t = tx_timer(&actions).expect("tx timer armed");
    assert!(within(t, 1000, 750, 1000), "{t:?}");
}

#[test]
fn three_way_handshake_down_init_up() {
    let mut s = session(3);
    s.handle(Event::Enable);

    let actions = s.handle(Event::PacketReceived(peer(State::Down)));
    assert_eq!(
        state_changes(&actions),
        vec![(State::Down, State::Init, Diag::None)]
    );
    let p = sent(&actions)[0];
    assert_eq!(p.state, State::Init);
    assert_eq!(
        p.your_discriminator, THEIRS,
        "learned the peer's discriminator"
    );
    // §6.8.4: 3 × max(our 100 ms required RX, their 1 s desired TX).
    assert_eq!(detection_timer(&actions), Some(Duration::from_secs(3)));

    let actions = s.handle(Event::PacketReceived(peer(State::Init)));
    assert_eq!(
        state_changes(&actions),
        vec![(State::Init, State::Up, Diag::None)]
    );
    assert_eq!(s.state(), State::Up);
    assert_eq!(s.remote_state(), State::Init);
}

#[test]
fn down_goes_straight_up_when_the_peer_is_in_init() {
    let mut s = session(3);
    s.handle(Event::Enable);
    let actions = s.handle(Event::PacketReceived(peer(State::Init)));
    assert_eq!(
        state_changes(&actions),
        vec![(State::Down, State::Up, Diag::None)]
    );
}

#[test]
fn init_ignores_a_peer_still_down() {
    let mut s = session(3);
    s.handle(Event::Enable);
    s.handle(Event::PacketReceived(peer(State::Down)));
    let actions = s.handle(Event::PacketReceived(peer(State::Down)));
    assert!(state_changes(&actions).is_empty());
    assert_eq!(s.state(), State::Init);
}

#[test]
fn going_up_leaves_slow_start_with_a_poll_sequence() {
    let mut s = session(3);
    s.handle(Event::Enable);
    s.handle(Event::PacketReceived(peer(State::Down)));
    let actions = s.handle(Event::PacketReceived(peer(State::Up)));
    let p = sent(&actions)[0];
    assert_eq!(p.state, State::Up);
    assert_eq!(p.desired_min_tx_us, 100 * MS, "configured interval once Up");
    assert!(
        p.poll && !p.final_,
        "timer change announced with P (§6.8.3)"
    );
    // A decrease of our TX may take effect at once: max(100 ms, peer's required 100 ms).
    assert_eq!(s.tx_interval(), Some(Duration::from_millis(100)));
    let t = tx_timer(&actions).expect("tx timer re-armed");
    assert!(within(t, 100, 750, 1000), "{t:?}");

    // Periodic packets keep P until the peer answers with F.
    let actions = s.handle(Event::TxTimerExpired);
    assert!(sent(&actions)[0].poll);
    let mut fin = peer(State::Up);
    fin.final_ = true;
    s.handle(Event::PacketReceived(fin));
    assert!(!s.poll_in_progress());
    let actions = s.handle(Event::TxTimerExpired);
    let p = sent(&actions)[0];
    assert!(!p.poll && !p.final_);
}

#[test]
fn a_final_without_a_poll_changes_nothing() {
    let mut s = up_session();
    let mut fin = peer(State::Up);
    fin.final_ = true;
    fin.desired_min_tx_us = 100 * MS;
    let actions = s.handle(Event::PacketReceived(fin));
    assert!(sent(&actions).is_empty());
    assert!(state_changes(&actions).is_empty());
}

#[test]
fn answers_the_peers_poll_with_final_and_uses_its_new_interval() {
    let mut s = session(3);
    s.handle(Event::Enable);
    s.handle(Event::PacketReceived(peer(State::Down)));
    s.handle(Event::PacketReceived(peer(State::Up)));
    assert_eq!(s.detection_time(), Duration::from_secs(3));

    let mut poll = peer(State::Up);
    poll.poll = true;
    poll.desired_min_tx_us = 100 * MS;
    let actions = s.handle(Event::PacketReceived(poll));
    let packets = sent(&actions);
    assert_eq!(packets.len(), 1);
    assert!(
        packets[0].final_ && !packets[0].poll,
        "F answers, never with P (§6.5)"
    );
    assert_eq!(
        detection_timer(&actions),
        Some(Duration::from_millis(300)),
        "3 × max(100 ms, 100 ms)"
    );
    assert_eq!(s.detection_time(), Duration::from_millis(300));
    // Our own poll is still open: the next periodic packet carries P.
    assert!(sent(&s.handle(Event::TxTimerExpired))[0].poll);
}

#[test]
fn the_greater_of_our_tx_and_their_rx_sets_our_interval() {
    let mut s = up_session();
    let mut slow_receiver = peer(State::Up);
    slow_receiver.desired_min_tx_us = 100 * MS;
    slow_receiver.required_min_rx_us = 250 * MS;
    let actions = s.handle(Event::PacketReceived(slow_receiver));
    assert_eq!(s.tx_interval(), Some(Duration::from_millis(250)));
    let t = tx_timer(&actions).expect("re-armed for the new interval");
    assert!(within(t, 250, 750, 1000), "{t:?}");
}

#[test]
fn detection_timeout_takes_the_session_down_and_back_to_slow_start() {
    let mut s = up_session();
    assert_eq!(s.detection_time(), Duration::from_millis(300));
    let actions = s.handle(Event::DetectionTimerExpired);
    assert_eq!(
        state_changes(&actions),
        vec![(State::Up, State::Down, Diag::ControlDetectionTimeExpired)]
    );
    let p = sent(&actions)[0];
    assert_eq!(p.state, State::Down);
    assert_eq!(p.diag, Diag::ControlDetectionTimeExpired);
    assert_eq!(p.your_discriminator, 0, "remote discriminator forgotten");
    assert_eq!(p.desired_min_tx_us, 1000 * MS, "slow start again");
    assert!(!p.poll);
    assert!(!s.peer_admin_down());
    let t = tx_timer(&actions).expect("tx timer");
    assert!(within(t, 1000, 750, 1000), "{t:?}");
}

#[test]
fn detection_timeout_in_down_only_forgets_the_peer() {
    let mut s = session(3);
    s.handle(Event::Enable);
    let mut down = peer(State::Down);
    down.required_min_rx_us = 0;
    s.handle(Event::PacketReceived(down));
    // Init now; a timeout there goes Down with diag 1.
    let actions = s.handle(Event::DetectionTimerExpired);
    assert_eq!(
        state_changes(&actions),
        vec![(State::Init, State::Down, Diag::ControlDetectionTimeExpired)]
    );
    let actions = s.handle(Event::DetectionTimerExpired);
    assert!(state_changes(&actions).is_empty());
    assert_eq!(s.remote_discriminator(), 0);
    // The peer had asked for no packets; once forgotten, we call out again at our slow rate.
    assert_eq!(s.tx_interval(), Some(Duration::from_secs(1)));
}

#[test]
fn peer_admin_down_is_reported_as_such_not_as_a_failure() {
    let mut s = up_session();
    let mut admin = peer(State::AdminDown);
    admin.diag = Diag::AdministrativelyDown;
    let actions = s.handle(Event::PacketReceived(admin));
    assert_eq!(
        state_changes(&actions),
        vec![(State::Up, State::Down, Diag::NeighborSignaledDown)]
    );
    assert!(s.peer_admin_down());
    assert_eq!(s.remote_state(), State::AdminDown);
    assert_eq!(s.remote_diag(), Diag::AdministrativelyDown);
    // Still AdminDown from the peer: we stay Down and do not move to Init.
    let actions = s.handle(Event::PacketReceived(admin));
    assert!(state_changes(&actions).is_empty());
    assert_eq!(s.state(), State::Down);
    // The peer comes back: Down → Init → Up clears the flag.
    s.handle(Event::PacketReceived(peer(State::Down)));
    s.handle(Event::PacketReceived(peer(State::Up)));
    assert_eq!(s.state(), State::Up);
    assert!(!s.peer_admin_down());
}

#[test]
fn peer_down_while_up_is_a_failure_with_diag_3() {
    let mut s = up_session();
    let mut down = peer(State::Down);
    down.diag = Diag::ControlDetectionTimeExpired;
    let actions = s.handle(Event::PacketReceived(down));
    assert_eq!(
        state_changes(&actions),
        vec![(State::Up, State::Down, Diag::NeighborSignaledDown)]
    );
    assert!(!s.peer_admin_down());
}

#[test]
fn local_admin_down_sends_diag_7_and_ignores_the_peer_until_enabled() {
    let mut s = up_session();
    let actions = s.handle(Event::AdminDown);
    assert_eq!(
        state_changes(&actions),
        vec![(State::Up, State::AdminDown, Diag::AdministrativelyDown)]
    );
    assert!(actions.contains(&Action::StopDetectionTimer));
    let p = sent(&actions)[0];
    assert_eq!(p.state, State::AdminDown);
    assert_eq!(p.diag, Diag::AdministrativelyDown);
    assert_eq!(p.your_discriminator, THEIRS);

    let actions = s.handle(Event::PacketReceived(peer(State::Down)));
    assert!(state_changes(&actions).is_empty());
    assert_eq!(detection_timer(&actions), None);
    assert_eq!(s.state(), State::AdminDown);

    let actions = s.handle(Event::Enable);
    assert_eq!(
        state_changes(&actions),
        vec![(State::AdminDown, State::Down, Diag::None)]
    );
    assert_eq!(sent(&actions)[0].state, State::Down);
}

#[test]
fn increasing_tx_while_up_waits_for_the_final() {
    let mut s = up_session();
    let actions = s.handle(Event::SetTimers(timers(300, 100, 3)));
    let p = sent(&actions)[0];
    assert!(p.poll);
    assert_eq!(
        p.desired_min_tx_us,
        300 * MS,
        "new value advertised at once"
    );
    assert_eq!(
        s.tx_interval(),
        Some(Duration::from_millis(100)),
        "but not used before the F (§6.8.3)"
    );
    let t = tx_timer(&actions).expect("tx timer");
    assert!(within(t, 100, 750, 1000), "{t:?}");

    let mut fin = peer(State::Up);
    fin.final_ = true;
    fin.desired_min_tx_us = 100 * MS;
    let actions = s.handle(Event::PacketReceived(fin));
    assert_eq!(s.tx_interval(), Some(Duration::from_millis(300)));
    let t = tx_timer(&actions).expect("re-armed at the new interval");
    assert!(within(t, 300, 750, 1000), "{t:?}");
}

#[test]
fn decreasing_rx_while_up_keeps_the_old_detection_time_until_the_final() {
    let mut s = Session::new(
        timers(100, 500, 3),
        NonZeroU32::new(OURS).expect("non-zero"),
        7,
    );
    s.handle(Event::Enable);
    s.handle(Event::PacketReceived(peer(State::Down)));
    s.handle(Event::PacketReceived(peer(State::Up)));
    let mut fin = peer(State::Up);
    fin.final_ = true;
    fin.desired_min_tx_us = 100 * MS;
    s.handle(Event::PacketReceived(fin));
    assert_eq!(s.detection_time(), Duration::from_millis(1500));

    let actions = s.handle(Event::SetTimers(timers(100, 100, 3)));
    let p = sent(&actions)[0];
    assert!(p.poll);
    assert_eq!(p.required_min_rx_us, 100 * MS);
    let actions = s.handle(Event::PacketReceived({
        let mut up = peer(State::Up);
        up.desired_min_tx_us = 100 * MS;
        up
    }));
    assert_eq!(
        detection_timer(&actions),
        Some(Duration::from_millis(1500)),
        "old required RX until the F"
    );
    let actions = s.handle(Event::PacketReceived(fin));
    assert_eq!(detection_timer(&actions), Some(Duration::from_millis(300)));
}

#[test]
fn a_second_change_during_a_poll_needs_a_second_final() {
    let mut s = up_session();
    s.handle(Event::SetTimers(timers(300, 100, 3)));
    s.handle(Event::SetTimers(timers(500, 100, 3)));
    let mut fin = peer(State::Up);
    fin.final_ = true;
    fin.desired_min_tx_us = 100 * MS;
    s.handle(Event::PacketReceived(fin));
    assert!(
        s.poll_in_progress(),
        "the first F may answer the older values"
    );
    assert_eq!(s.tx_interval(), Some(Duration::from_millis(100)));
    s.handle(Event::PacketReceived(fin));
    assert!(!s.poll_in_progress());
    assert_eq!(s.tx_interval(), Some(Duration::from_millis(500)));
}

#[test]
fn timer_change_while_not_up_needs_no_poll() {
    let mut s = session(3);
    s.handle(Event::Enable);
    let actions = s.handle(Event::SetTimers(timers(50, 50, 5)));
    assert!(sent(&actions).is_empty());
    assert!(!s.poll_in_progress());
    let p = sent(&s.handle(Event::TxTimerExpired))[0];
    assert_eq!(p.desired_min_tx_us, 1000 * MS, "still slow start");
    assert_eq!(p.required_min_rx_us, 50 * MS);
    assert_eq!(p.detect_mult, 5);
}

#[test]
fn peer_asking_for_no_packets_stops_periodic_transmission() {
    let mut s = up_session();
    let mut quiet = peer(State::Up);
    quiet.required_min_rx_us = 0;
    quiet.desired_min_tx_us = 100 * MS;
    let actions = s.handle(Event::PacketReceived(quiet));
    assert!(actions.contains(&Action::StopTxTimer));
    assert_eq!(s.tx_interval(), None);
    assert!(sent(&s.handle(Event::TxTimerExpired)).is_empty());
    // A poll is still answered (§6.8.6: whatever the transmission limits).
    quiet.poll = true;
    let packets = sent(&s.handle(Event::PacketReceived(quiet)));
    assert_eq!(packets.len(), 1);
    assert!(packets[0].final_);
}

#[test]
fn packet_for_another_discriminator_is_ignored() {
    let mut s = up_session();
    let mut stray = peer(State::Down);
    stray.your_discriminator = OURS + 1;
    let actions = s.handle(Event::PacketReceived(stray));
    assert!(actions.is_empty());
    assert_eq!(s.state(), State::Up);
}

#[test]
fn jitter_is_75_to_100_percent_and_75_to_90_with_multiplier_1() {
    for (mult, low, high) in [(3u8, 750u64, 1000u64), (1, 750, 900)] {
        let mut s = session(mult);
        s.handle(Event::Enable);
        let mut min = u64::MAX;
        let mut max = 0;
        for _ in 0..2000 {
            let t = tx_timer(&s.handle(Event::TxTimerExpired)).expect("tx timer");
            let permille = t.as_micros() as u64 / 1000;
            min = min.min(permille);
            max = max.max(permille);
        }
        assert!(
            min >= low && max <= high,
            "mult {mult}: {min}..{max} permille"
        );
        // The whole range is used, not a constant.
        assert!(
            min < low + 20 && max > high - 20,
            "mult {mult}: {min}..{max} permille"
        );
    }
}

mod invariants {
    //! Whatever a peer sends and whenever timers fire, the state machine keeps the RFC's
    //! transmit rules and never asks the driver to spin.

    use super::*;
    use proptest::prelude::*;

    fn any_state() -> impl Strategy<Value = State> {
        (0u8..4).prop_map(State::from_code)
    }

    prop_compose! {
        fn any_packet()(
            state in any_state(),
            diag in (0u8..32).prop_map(Diag::from_code),
            poll: bool, final_: bool,
            detect_mult in 1u8..,
            my in 1u32..,
            your in prop_oneof![Just(0u32), Just(OURS), any::<u32>()],
            tx in prop_oneof![Just(0u32), Just(1u32), 1000u32..2_000_000, any::<u32>()],
            rx in prop_oneof![Just(0u32), Just(1u32), 1000u32..2_000_000, any::<u32>()],
        ) -> ControlPacket {
            ControlPacket {
                diag, state, poll, final_, control_plane_independent: false, auth_present: false,
                demand: false, multipoint: false, detect_mult, my_discriminator: my,
                your_discriminator: your, desired_min_tx_us: tx, required_min_rx_us: rx,
                required_min_echo_rx_us: 0,
            }
        }
    }

    fn any_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            6 => any_packet().prop_map(Event::PacketReceived),
            3 => Just(Event::TxTimerExpired),
            2 => Just(Event::DetectionTimerExpired),
            1 => Just(Event::AdminDown),
            1 => Just(Event::Enable),
            1 => (10u64..2000, 10u64..2000, 1u8..10)
                .prop_map(|(tx, rx, m)| Event::SetTimers(timers(tx, rx, m))),
        ]
    }

    proptest! {
        #[test]
        fn transmit_rules_hold_for_any_sequence(events in proptest::collection::vec(any_event(), 1..200)) {
            let mut s = session(3);
            s.handle(Event::Enable);
            for event in events {
                let before = s.state();
                let actions = s.handle(event);
                let mut state = before;
                for action in &actions {
                    match action {
                        Action::SendPacket(p) => {
                            prop_assert!(!(p.poll && p.final_), "P and F together: {p:?}");
                            prop_assert_eq!(p.my_discriminator, OURS);
                            prop_assert!(!p.auth_present && !p.demand && !p.multipoint);
                            prop_assert_eq!(p.required_min_echo_rx_us, 0);
                            prop_assert!(p.detect_mult >= 1);
                            if p.state != State::Up {
                                prop_assert!(p.desired_min_tx_us >= 1_000_000, "slow start: {p:?}");
                            }
                            prop_assert_eq!(p.state, s.state());
                        }
                        Action::ArmTxTimer(d) => {
                            // Our intervals are at least 10 ms: 75 % of that is the floor.
                            prop_assert!(*d >= Duration::from_micros(7_500), "tx timer {d:?}");
                        }
                        Action::ArmDetectionTimer(d) => {
                            prop_assert!(*d >= Duration::from_millis(10), "detection {d:?}");
                        }
                        Action::StateChanged { from, to, .. } => {
                            prop_assert_eq!(*from, state);
                            prop_assert_ne!(from, to);
                            state = *to;
                        }
                        Action::StopTxTimer | Action::StopDetectionTimer => {}
                    }
                }
                prop_assert_eq!(state, s.state());
                if s.state() != State::Up {
                    prop_assert!(!s.poll_in_progress());
                }
            }
        }
    }
}
