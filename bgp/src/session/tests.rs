//! FSM unit tests from event sequences: no sockets, no clocks.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::*;
use crate::wire::{
    Capabilities, Family, Notification, Open, RouteRefresh, UpdateDisposition, UpdateSummary,
};

const LOCAL_ASN: u32 = 65001;
const PEER_ASN: u32 = 65000;

fn our_open(asn: u32, hold: u16) -> Open {
    Open::ours(asn, hold, Ipv4Addr::new(10, 0, 0, 1), true, false)
}

fn session(passive: bool, hold: u16) -> Session {
    Session::new(SessionConfig {
        open: our_open(LOCAL_ASN, hold),
        peer_asn: PEER_ASN,
        passive,
    })
}

fn peer_open(asn: u32, hold: u16) -> Open {
    let mut o = Open::ours(asn, hold, Ipv4Addr::new(10, 0, 0, 2), true, true);
    o.capabilities.extended_message = false;
    o
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn sends_notification(actions: &[Action]) -> Option<(u8, u8)> {
    actions.iter().find_map(|a| match a {
        Action::SendNotification(n) => Some((n.code, n.subcode)),
        _ => None,
    })
}

/// Drives an active session to Established and returns it.
fn established(hold_ours: u16, hold_peer: u16) -> (Session, Vec<Action>) {
    let mut s = session(false, hold_ours);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    s.handle(Event::BgpOpen(peer_open(PEER_ASN, hold_peer)));
    let a = s.handle(Event::KeepAliveMsg);
    assert_eq!(s.state(), State::Established);
    (s, a)
}

#[test]
fn active_start_connects_at_once() {
    let mut s = session(false, 9);
    let a = s.handle(Event::ManualStart);
    assert_eq!(s.state(), State::Connect);
    assert_eq!(
        a,
        vec![
            Action::Connect,
            Action::StartTimer(Timer::ConnectRetry, secs(1))
        ]
    );
}

#[test]
fn passive_start_waits() {
    let mut s = session(true, 9);
    assert_eq!(s.handle(Event::ManualStart), vec![]);
    assert_eq!(s.state(), State::Active);
    // No retry timer in passive mode.
    assert_eq!(s.handle(Event::ConnectRetryTimerExpires), vec![]);
    let a = s.handle(Event::TcpConnectionConfirmed);
    assert_eq!(s.state(), State::OpenSent);
    assert!(a.contains(&Action::SendOpen(our_open(LOCAL_ASN, 9))));
}

#[test]
fn connect_failures_back_off_exponentially_to_30s() {
    let mut s = session(false, 9);
    s.handle(Event::ManualStart);
    let mut delays = Vec::new();
    for _ in 0..7 {
        let a = s.handle(Event::TcpConnectionFails);
        assert_eq!(s.state(), State::Active);
        let Some(Action::StartTimer(Timer::ConnectRetry, d)) = a.first().cloned() else {
            panic!("no retry timer: {a:?}")
        };
        delays.push(d.as_secs());
        let a = s.handle(Event::ConnectRetryTimerExpires);
        assert_eq!(s.state(), State::Connect);
        assert_eq!(a[0], Action::Connect);
    }
    assert_eq!(delays, vec![2, 4, 8, 16, 30, 30, 30]);
}

#[test]
fn full_handshake_negotiates_hold_and_sends_table() {
    let (s, a) = established(9, 30);
    let neg = s.negotiated().expect("negotiated").clone();
    assert_eq!((neg.hold_time, neg.keepalive), (9, 3));
    assert!(neg.four_octet_as && neg.ipv4_unicast && !neg.ipv6_unicast);
    assert!(!neg.extended_message);
    assert_eq!(
        a,
        vec![
            Action::StartTimer(Timer::Hold, secs(9)),
            Action::SessionEstablished(neg),
            Action::SendFullTable,
        ]
    );
}

#[test]
fn open_confirm_arms_keepalive_at_a_third() {
    let mut s = session(false, 90);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    let a = s.handle(Event::BgpOpen(peer_open(PEER_ASN, 30)));
    assert_eq!(s.state(), State::OpenConfirm);
    assert_eq!(
        a,
        vec![
            Action::SendKeepalive,
            Action::StartTimer(Timer::Hold, secs(30)),
            Action::StartTimer(Timer::Keepalive, secs(10)),
        ]
    );
}

#[test]
fn hold_time_zero_means_no_timers() {
    let mut s = session(false, 9);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    let a = s.handle(Event::BgpOpen(peer_open(PEER_ASN, 0)));
    assert!(a.contains(&Action::StopTimer(Timer::Hold)));
    assert!(!a.iter().any(|x| matches!(x, Action::StartTimer(..))));
    let a = s.handle(Event::KeepAliveMsg);
    assert!(!a.iter().any(|x| matches!(x, Action::StartTimer(..))));
}

fn open_rejection(peer: Open) -> (Option<(u8, u8)>, Vec<Action>, State) {
    let mut s = session(false, 9);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    let a = s.handle(Event::BgpOpen(peer));
    (sends_notification(&a), a, s.state())
}

#[test]
fn bad_open_gets_the_right_notification() {
    // Bad peer AS: 2/2.
    assert_eq!(open_rejection(peer_open(65099, 9)).0, Some((2, 2)));
    // Bad BGP identifier (zero): 2/3.
    let mut o = peer_open(PEER_ASN, 9);
    o.router_id = Ipv4Addr::UNSPECIFIED;
    assert_eq!(open_rejection(o).0, Some((2, 3)));
    // Unacceptable hold time (1 and 2 s): 2/6.
    assert_eq!(open_rejection(peer_open(PEER_ASN, 1)).0, Some((2, 6)));
    assert_eq!(open_rejection(peer_open(PEER_ASN, 2)).0, Some((2, 6)));
    // Hold 3 is fine.
    assert_eq!(open_rejection(peer_open(PEER_ASN, 3)).2, State::OpenConfirm);
    // No common family: 2/7 naming our MP capability.
    let mut o = peer_open(PEER_ASN, 9);
    o.capabilities.ipv4_unicast = false;
    let (n, a, state) = open_rejection(o);
    assert_eq!(n, Some((2, 7)));
    assert_eq!(state, State::Active);
    assert!(a.contains(&Action::CloseConnection));
    assert!(a.contains(&Action::StartTimer(Timer::ConnectRetry, secs(2))));
}

#[test]
fn ibgp_with_our_own_identifier_is_2_3() {
    let mut s = Session::new(SessionConfig {
        open: our_open(PEER_ASN, 9),
        peer_asn: PEER_ASN,
        passive: false,
    });
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    let mut o = peer_open(PEER_ASN, 9);
    o.router_id = Ipv4Addr::new(10, 0, 0, 1);
    assert_eq!(
        sends_notification(&s.handle(Event::BgpOpen(o))),
        Some((2, 3))
    );
}

#[test]
fn peer_without_mp_capability_is_ipv4_only() {
    let peer = Open {
        my_as: 65000,
        hold_time: 90,
        router_id: Ipv4Addr::new(10, 0, 0, 2),
        capabilities: Capabilities::default(),
    };
    let neg = negotiate(&our_open(LOCAL_ASN, 9), &peer, PEER_ASN).expect("ok");
    assert!(neg.ipv4_unicast && !neg.four_octet_as && !neg.route_refresh);
}

#[test]
fn four_octet_asn_uses_as_trans_and_capability() {
    let o = our_open(4_200_000_001, 9);
    assert_eq!(o.my_as, crate::wire::AS_TRANS);
    assert_eq!(o.asn(), 4_200_000_001);
    // A 4-octet peer presented with AS_TRANS in my_as is accepted by its capability.
    let peer = Open::ours(4_200_000_002, 9, Ipv4Addr::new(10, 0, 0, 2), true, false);
    assert!(negotiate(&o, &peer, 4_200_000_002).is_ok());
    assert_eq!(
        negotiate(&o, &peer, 23456).map_err(|n| (n.code, n.subcode)),
        Err((2, 2))
    );
}

#[test]
fn hold_timer_expiry_sends_4_and_reconnects() {
    let (mut s, _) = established(3, 3);
    let a = s.handle(Event::HoldTimerExpires);
    assert_eq!(sends_notification(&a), Some((4, 0)));
    assert!(a.contains(&Action::SessionDown {
        reason: DownReason::HoldTimerExpired,
        was_established: true
    }));
    assert_eq!(s.state(), State::Active);
    // Back-off restarts from the bottom after an Established session.
    assert!(a.contains(&Action::StartTimer(Timer::ConnectRetry, secs(1))));
    assert_eq!(
        s.handle(Event::ConnectRetryTimerExpires)[0],
        Action::Connect
    );
}

#[test]
fn traffic_restarts_the_hold_timer_and_keepalives_repeat() {
    let (mut s, _) = established(9, 9);
    let upd = UpdateSummary {
        announced: 3,
        withdrawn: 0,
        end_of_rib: None,
        disposition: UpdateDisposition::Clean,
    };
    assert_eq!(
        s.handle(Event::UpdateMsg(upd)),
        vec![Action::StartTimer(Timer::Hold, secs(9))]
    );
    assert_eq!(
        s.handle(Event::KeepaliveTimerExpires),
        vec![
            Action::SendKeepalive,
            Action::StartTimer(Timer::Keepalive, secs(3))
        ]
    );
}

#[test]
fn routes_changed_and_route_refresh() {
    let (mut s, _) = established(9, 9);
    assert_eq!(
        s.handle(Event::RoutesChanged),
        vec![Action::SendRouteChanges]
    );
    let a = s.handle(Event::RouteRefreshMsg(RouteRefresh { afi: 1, safi: 1 }));
    assert!(a.contains(&Action::ResendRoutes(Family::Ipv4Unicast)));
    // A family that was not negotiated is ignored.
    let a = s.handle(Event::RouteRefreshMsg(RouteRefresh { afi: 2, safi: 1 }));
    assert!(!a.iter().any(|x| matches!(x, Action::ResendRoutes(_))));
    // Not Established: route changes wait for the full table.
    let mut idle = session(false, 9);
    assert_eq!(idle.handle(Event::RoutesChanged), vec![]);
}

#[test]
fn force_down_tears_down_with_cease_bfd_and_reconnects_later() {
    let (mut s, _) = established(9, 9);
    let a = s.handle(Event::ForceDown("bfd: neighbor down".into()));
    assert_eq!(sends_notification(&a), Some((6, 10)));
    assert!(a.contains(&Action::CloseConnection));
    assert_eq!(s.state(), State::Active);
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::StartTimer(Timer::ConnectRetry, _)))
    );
    // While not connected, ForceDown is a no-op.
    assert_eq!(s.handle(Event::ForceDown("again".into())), vec![]);
}

#[test]
fn manual_stop_withdraws_then_sends_cease_with_message() {
    let (mut s, _) = established(9, 9);
    let n = Notification::admin_shutdown("bye");
    let a = s.handle(Event::ManualStop(Some(n.clone())));
    assert_eq!(a[0], Action::WithdrawAll);
    assert_eq!(a[1], Action::SendNotification(n));
    assert_eq!(a[2], Action::CloseConnection);
    assert_eq!(s.state(), State::Idle);
    // Stopped sessions ignore everything but a new start.
    assert_eq!(s.handle(Event::ConnectRetryTimerExpires), vec![]);
    assert_eq!(s.handle(Event::ManualStart)[0], Action::Connect);
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let mut s = session(false, 9);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    assert_eq!(
        sends_notification(&s.handle(Event::KeepAliveMsg)),
        Some((5, 1))
    );
    let mut s = session(false, 9);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    s.handle(Event::BgpOpen(peer_open(PEER_ASN, 9)));
    let upd = UpdateSummary {
        announced: 0,
        withdrawn: 0,
        end_of_rib: None,
        disposition: UpdateDisposition::Clean,
    };
    assert_eq!(
        sends_notification(&s.handle(Event::UpdateMsg(upd))),
        Some((5, 2))
    );
    let (mut s, _) = established(9, 9);
    assert_eq!(
        sends_notification(&s.handle(Event::BgpOpen(peer_open(PEER_ASN, 9)))),
        Some((5, 3))
    );
}

#[test]
fn malformed_message_and_peer_notification_reset() {
    let (mut s, _) = established(9, 9);
    let a = s.handle(Event::MessageError(Notification::new(3, 1)));
    assert_eq!(sends_notification(&a), Some((3, 1)));
    assert_eq!(s.state(), State::Active);
    let (mut s, _) = established(9, 9);
    let a = s.handle(Event::NotifMsg(Notification::admin_shutdown("x")));
    assert_eq!(sends_notification(&a), None);
    assert!(a.contains(&Action::CloseConnection));
}

#[test]
fn collision_keeps_the_connection_of_the_higher_identifier() {
    let lo = Ipv4Addr::new(10, 0, 0, 1);
    let hi = Ipv4Addr::new(10, 0, 0, 2);
    // We are higher: keep the connection we initiated.
    assert_eq!(
        resolve_collision(hi, 1, lo, 2, true),
        CollisionWinner::Existing
    );
    assert_eq!(resolve_collision(hi, 1, lo, 2, false), CollisionWinner::New);
    // We are lower: keep the peer's connection.
    assert_eq!(resolve_collision(lo, 1, hi, 2, true), CollisionWinner::New);
    assert_eq!(
        resolve_collision(lo, 1, hi, 2, false),
        CollisionWinner::Existing
    );
    // Compared as unsigned integers, not as text.
    let big = Ipv4Addr::new(200, 0, 0, 1);
    let small = Ipv4Addr::new(9, 255, 255, 255);
    assert_eq!(
        resolve_collision(big, 1, small, 1, true),
        CollisionWinner::Existing
    );
    // Losing in OpenConfirm: Cease 7 and back to Active.
    let mut s = session(false, 9);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectionConfirmed);
    s.handle(Event::BgpOpen(peer_open(PEER_ASN, 9)));
    let a = s.handle(Event::CollisionLost);
    assert_eq!(sends_notification(&a), Some((6, 7)));
    assert_eq!(s.state(), State::Active);
}
