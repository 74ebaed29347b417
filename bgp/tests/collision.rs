//! RFC 4271 §6.8 connection collisions, made deterministic with a raw-bytes test peer on
//! loopback in a namespace of the test's own: the speaker connects to the peer, and while that
//! connection waits in OpenSent the peer connects to the speaker's listener. The connection
//! initiated by the side with the higher BGP identifier must survive; the other gets Cease 7.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use cpvip_bgp::wire::{self, DecodeContext, FrameReader, Message, Open};
use cpvip_bgp::{PeerConfig, Speaker, SpeakerConfig, State};
use cpvip_lab::netns::{Netns, require_root};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const SPEAKER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

async fn next_message(conn: &mut TcpStream, reader: &mut FrameReader) -> Option<Message> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Some(f)) = reader.next_frame() {
                return wire::decode_message(f, &DecodeContext::default()).ok();
            }
            match conn.read_buf(reader.buffer()).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .flatten()
}

async fn send(conn: &mut TcpStream, bytes: &[u8]) {
    conn.write_all(bytes).await.expect("send");
}

fn open(id: Ipv4Addr) -> Vec<u8> {
    wire::encode::open(&Open::ours(65002, 30, id, true, false))
        .expect("open")
        .to_vec()
}

/// Returns (what the speaker's own connection saw, what the peer's connection saw).
async fn collide(
    listen: Ipv4Addr,
    peer: Ipv4Addr,
    peer_id: Ipv4Addr,
) -> (Option<Message>, Option<Message>) {
    let listener = TcpListener::bind((peer, 179)).await.expect("bind peer");
    let cfg = SpeakerConfig {
        local_asn: 65001,
        router_id: SPEAKER_ID,
        hold_time: 30,
        peers: vec![PeerConfig::new(peer.into(), 65002)],
        listen_port: Some(179),
        listen_addr: Some(listen.into()),
        attributes: Default::default(),
    };
    let h = Speaker::start(cfg).expect("start");

    // 1. The speaker's connection: read its OPEN and leave it waiting in OpenSent.
    let (mut ours, _) = listener.accept().await.expect("accept");
    let mut ours_reader = FrameReader::new();
    assert!(matches!(
        next_message(&mut ours, &mut ours_reader).await,
        Some(Message::Open(_))
    ));
    // 2. The peer's own connection to the speaker's listener, from the peer's address.
    let sock = TcpSocket::new_v4().expect("socket");
    sock.bind(SocketAddr::new(peer.into(), 0))
        .expect("bind source");
    let mut theirs = sock
        .connect(SocketAddr::new(listen.into(), 179))
        .await
        .expect("connect to the speaker's listener");
    let mut theirs_reader = FrameReader::new();
    send(&mut theirs, &open(peer_id)).await;
    // 3. Whichever connection loses gets a NOTIFICATION; the winner gets OPEN + KEEPALIVE or,
    //    if it is the speaker's (already sent OPEN), nothing until we answer.
    let first_theirs = next_message(&mut theirs, &mut theirs_reader).await;
    let ours_msg = if matches!(first_theirs, Some(Message::Notification(_))) {
        // The speaker's connection won: finish the handshake on it.
        send(&mut ours, &open(peer_id)).await;
        send(&mut ours, &wire::encode::keepalive()).await;
        next_message(&mut ours, &mut ours_reader).await
    } else {
        let n = next_message(&mut ours, &mut ours_reader).await;
        assert!(
            matches!(
                next_message(&mut theirs, &mut theirs_reader).await,
                Some(Message::Keepalive)
            ),
            "winner gets our KEEPALIVE"
        );
        send(&mut theirs, &wire::encode::keepalive()).await;
        n
    };
    let mut st = h.watch_peer(peer.into()).expect("peer");
    tokio::time::timeout(Duration::from_secs(10), async {
        while st.borrow_and_update().state != State::Established {
            let _ = st.changed().await;
        }
    })
    .await
    .expect("Established on the surviving connection");
    (ours_msg, first_theirs)
}

fn cease_7(m: &Option<Message>) -> bool {
    matches!(m, Some(Message::Notification(n)) if n.code == 6 && n.subcode == 7)
}

#[test]
fn collision_keeps_the_connection_of_the_higher_identifier() {
    require_root("the collision test makes a network namespace");
    let ns = Netns::new("bgp-coll").expect("netns");
    ns.block_on(|| async {
        // Peer identifier higher than ours: its connection survives, ours gets Cease 7.
        let (ours, theirs) = collide(
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(127, 0, 0, 20),
            Ipv4Addr::new(10, 9, 9, 9),
        )
        .await;
        assert!(cease_7(&ours), "speaker's connection: {ours:?}");
        assert!(
            matches!(theirs, Some(Message::Open(_))),
            "peer's connection: {theirs:?}"
        );

        // Peer identifier lower: the speaker's connection survives, the peer's gets Cease 7.
        let (ours, theirs) = collide(
            Ipv4Addr::new(127, 0, 0, 2),
            Ipv4Addr::new(127, 0, 0, 21),
            Ipv4Addr::new(1, 1, 1, 1),
        )
        .await;
        assert!(cease_7(&theirs), "peer's connection: {theirs:?}");
        assert!(
            matches!(ours, Some(Message::Keepalive)),
            "speaker's connection: {ours:?}"
        );
    })
    .expect("netns");
}
