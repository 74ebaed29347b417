//! Malformed UPDATEs from a raw-bytes test peer of our own: each case gets its RFC 7606 /
//! RFC 4271 reaction over a real TCP session, the speaker never panics (reset sessions come
//! back), and a BIRD session on the same speaker is not disturbed.

mod common;

use std::time::Duration;

use common::*;
use cpvip_bgp::wire::{self, DecodeContext, FrameReader, Message, Open};
use cpvip_bgp::{PeerConfig, Speaker, State};
use cpvip_lab::router::Bird;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RAW_ASN: u32 = 65002;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
        .collect()
}

fn update(attrs_hex: &str, nlri_hex: &str) -> Vec<u8> {
    let attrs = hex(attrs_hex);
    let nlri = hex(nlri_hex);
    let mut v = vec![0xff; 16];
    let len = u16::try_from(23 + attrs.len() + nlri.len()).expect("len");
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&[2, 0, 0]);
    v.extend_from_slice(&u16::try_from(attrs.len()).expect("len").to_be_bytes());
    v.extend(attrs);
    v.extend(nlri);
    v
}

const ORIGIN: &str = "40010100";
const AS_PATH: &str = "40020602010000fdea";
const NEXT_HOP: &str = "4003040a000002";
const NLRI: &str = "180a0101";

/// Expected reaction: the session survives (RFC 7606 treat-as-withdraw / attribute discard)
/// or we get this NOTIFICATION (code, subcode) and the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reaction {
    Survives,
    Reset(u8, u8),
}

fn cases() -> Vec<(&'static str, Vec<u8>, Reaction)> {
    vec![
        (
            "bad attribute flags (ORIGIN marked optional)",
            update(&format!("c0010100{AS_PATH}{NEXT_HOP}"), NLRI),
            Reaction::Survives,
        ),
        (
            "truncated MP_REACH_NLRI",
            update(&format!("{ORIGIN}{AS_PATH}800e14 0002 01 10 2001"), ""),
            Reaction::Reset(3, 9),
        ),
        (
            "AS_PATH length mismatch",
            update(&format!("{ORIGIN}40020602020000fdea{NEXT_HOP}"), NLRI),
            Reaction::Survives,
        ),
        (
            "unknown well-known attribute",
            update(&format!("{ORIGIN}{AS_PATH}{NEXT_HOP}40630100"), NLRI),
            Reaction::Survives,
        ),
        (
            "duplicate attributes",
            update(&format!("{ORIGIN}{ORIGIN}{AS_PATH}{NEXT_HOP}"), NLRI),
            Reaction::Survives,
        ),
        (
            "NLRI overrun",
            update(&format!("{ORIGIN}{AS_PATH}{NEXT_HOP}"), "180a01"),
            Reaction::Reset(3, 10),
        ),
        (
            "bad message length in the header",
            {
                let mut v = vec![0xff; 16];
                v.extend_from_slice(&[0x00, 0x05, 2]);
                v
            },
            Reaction::Reset(1, 2),
        ),
    ]
}

async fn next_message(conn: &mut TcpStream, reader: &mut FrameReader) -> Option<Message> {
    loop {
        if let Ok(Some(f)) = reader.next_frame() {
            return wire::decode_message(f, &DecodeContext::default()).ok();
        }
        match conn.read_buf(reader.buffer()).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Accepts the speaker, completes the handshake (hold time 0: no keepalives needed).
async fn handshake(listener: &TcpListener, id: u8) -> (TcpStream, FrameReader) {
    let (mut conn, _) = listener.accept().await.expect("accept");
    let mut reader = FrameReader::new();
    let Some(Message::Open(ours)) = next_message(&mut conn, &mut reader).await else {
        panic!("speaker did not send OPEN first")
    };
    assert_eq!(ours.asn(), SPEAKER_ASN);
    let open = Open::ours(
        RAW_ASN,
        0,
        std::net::Ipv4Addr::new(10, 9, 9, id),
        true,
        false,
    );
    conn.write_all(&wire::encode::open(&open).expect("open"))
        .await
        .expect("send OPEN");
    conn.write_all(&wire::encode::keepalive())
        .await
        .expect("send KEEPALIVE");
    (conn, reader)
}

/// Runs one case against the speaker; returns what the peer observed, and the connection
/// (kept open until the caller has checked the speaker's side).
async fn run_case(listener: TcpListener, id: u8, bytes: Vec<u8>) -> (Reaction, TcpStream) {
    let (mut conn, mut reader) = handshake(&listener, id).await;
    // Wait for our End-of-RIB: the session is Established on our side.
    loop {
        match next_message(&mut conn, &mut reader).await {
            Some(Message::Update(u)) if u.end_of_rib.is_some() => break,
            Some(_) => {}
            None => panic!("session closed before End-of-RIB"),
        }
    }
    conn.write_all(&bytes).await.expect("send malformed");
    conn.write_all(&wire::encode::keepalive())
        .await
        .expect("send KEEPALIVE");
    let observed = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match next_message(&mut conn, &mut reader).await {
                Some(Message::Notification(n)) => return Reaction::Reset(n.code, n.subcode),
                Some(_) => {}
                None => return Reaction::Reset(0, 0),
            }
        }
    })
    .await
    .unwrap_or(Reaction::Survives);
    if let Reaction::Reset(..) = observed {
        // The peer task is alive: it reconnects and opens again.
        let (mut again, _) = tokio::time::timeout(Duration::from_secs(15), listener.accept())
            .await
            .expect("speaker reconnects after the reset")
            .expect("accept");
        let mut r = FrameReader::new();
        assert!(matches!(
            next_message(&mut again, &mut r).await,
            Some(Message::Open(_))
        ));
    }
    (observed, conn)
}

#[test]
fn malformed_updates_get_their_reaction_and_other_sessions_are_unaffected() {
    let lab = Lab::new("bgp-mal");
    let bird = Bird::start(&lab.r, lab.dir.path(), &bird_ebgp4("")).expect("bird");
    let bird = &bird;
    lab.s
        .block_on(move || async move {
            let cases = cases();
            let mut peers = vec![PeerConfig::new(ip(R4), ROUTER_ASN)];
            let mut runs = Vec::new();
            for (i, (name, bytes, want)) in cases.into_iter().enumerate() {
                let id = u8::try_from(10 + i).expect("few cases");
                let addr = format!("127.0.0.{id}");
                let listener = TcpListener::bind((addr.as_str(), 179)).await.expect("bind");
                peers.push(PeerConfig::new(ip(&addr), RAW_ASN));
                runs.push((
                    name,
                    addr,
                    want,
                    tokio::spawn(run_case(listener, id, bytes)),
                ));
            }
            let h = Speaker::start(speaker(SPEAKER_ASN, peers)).expect("start");
            h.set_routes(routes(&["203.0.113.60/32"]));
            wait_established(&h, R4, true, UP_LONG).await;
            let bird_since = status(&h, R4).established_at;
            for (name, addr, want, run) in runs {
                let (got, conn) = tokio::time::timeout(UP_LONG, run)
                    .await
                    .unwrap_or_else(|_| panic!("{name}: no reaction"))
                    .unwrap_or_else(|e| panic!("{name}: test peer failed: {e}"));
                assert_eq!(got, want, "{name}");
                let st = status(&h, &addr);
                if want == Reaction::Survives {
                    assert_eq!(st.state, State::Established, "{name}: {st:?}");
                    assert_eq!(st.updates_received, 1, "{name}: {st:?}");
                    assert_eq!(st.flaps, 0, "{name}: {st:?}");
                    assert_eq!(st.updates_malformed, 1, "{name}: {st:?}");
                } else {
                    assert!(st.last_error.is_some(), "{name}: {st:?}");
                }
                drop(conn);
            }
            // The BIRD session never noticed: same session, route still there.
            let st = status(&h, R4);
            assert_eq!(st.state, State::Established);
            assert_eq!(st.flaps, 0);
            assert_eq!(st.established_at, bird_since);
            let routes = bird.birdc("show route all").expect("birdc");
            assert!(routes.contains("203.0.113.60/32"), "{routes}");
        })
        .expect("netns");
}

const UP_LONG: Duration = Duration::from_secs(30);
