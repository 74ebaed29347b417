//! TCP transport for BGP sessions: outgoing connections bound to the configured source, the
//! passive listener that accepts only configured peers, and the per-socket options (MD5, TTL /
//! GTSM, NODELAY, CS6) applied through [`crate::sockopt`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

use crate::sockopt;
use crate::speaker::PeerConfig;
use crate::wire::{DecodeContext, FrameReader, Message, Open, decode_message};

/// TTL settings of one peer's packets: what we send and the lowest we accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TtlPolicy {
    pub send: u8,
    pub min_accept: Option<u8>,
}

/// RFC 5082 GTSM: send 255 and accept at least 255 - (hops - 1) (254 for one hop, as the
/// issue asks for the directly connected case to tolerate one router); otherwise the multihop
/// TTL; directly connected eBGP sends TTL 1; iBGP the system default 64.
pub(crate) fn ttl_policy(peer: &PeerConfig, ebgp: bool) -> TtlPolicy {
    if peer.gtsm {
        let hops = peer.multihop.unwrap_or(1).max(1);
        return TtlPolicy {
            send: 255,
            min_accept: Some(255u8.saturating_sub(hops)),
        };
    }
    let send = match (peer.multihop, ebgp) {
        (Some(n), _) => n.max(1),
        (None, true) => 1,
        (None, false) => 64,
    };
    TtlPolicy {
        send,
        min_accept: None,
    }
}

/// Options every BGP socket of `peer` gets (outgoing before connect, accepted after accept).
pub(crate) fn apply_session_options(
    sock: &impl std::os::fd::AsFd,
    peer_addr: IpAddr,
    ttl: TtlPolicy,
) -> io::Result<()> {
    let v6 = peer_addr.is_ipv6();
    sockopt::set_ttl(sock, v6, ttl.send)?;
    if let Some(min) = ttl.min_accept {
        sockopt::set_min_ttl(sock, v6, min)?;
    }
    sockopt::set_control_traffic(sock, v6)
}

/// Connects to `peer` from its `source` address (if any) with MD5 and TTL options set first.
pub(crate) async fn connect(peer: PeerConfig, ttl: TtlPolicy) -> io::Result<TcpStream> {
    let sock = if peer.address.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    if let Some(src) = peer.source {
        sock.bind(SocketAddr::new(src, 0))?;
    }
    if let Some(pw) = &peer.password {
        sockopt::set_md5_key(&sock, peer.address, pw.as_bytes())?;
    }
    apply_session_options(&sock, peer.address, ttl)?;
    sock.connect(SocketAddr::new(peer.address, peer.port)).await
}

/// Binds one listener per address family used by `peers` (or one on `addr`), with each
/// peer's MD5 key installed on it.
pub(crate) fn bind_listeners(
    addr: Option<IpAddr>,
    port: u16,
    peers: &[PeerConfig],
) -> io::Result<Vec<TcpListener>> {
    let addrs: Vec<IpAddr> = match addr {
        Some(a) => vec![a],
        None => {
            let mut v = Vec::new();
            if peers.iter().any(|p| p.address.is_ipv4()) {
                v.push(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            }
            if peers.iter().any(|p| p.address.is_ipv6()) {
                v.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
            }
            v
        }
    };
    let mut out = Vec::new();
    for a in addrs {
        let domain = if a.is_ipv6() {
            socket2::Domain::IPV6
        } else {
            socket2::Domain::IPV4
        };
        let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        s.set_reuse_address(true)?;
        if a.is_ipv6() {
            // Separate listeners per family: IPv4 peers are never seen as v4-mapped here.
            s.set_only_v6(addr.is_none())?;
        }
        s.set_nonblocking(true)?;
        for p in peers {
            if let Some(pw) = &p.password
                && (a.is_ipv6() || p.address.is_ipv4())
            {
                sockopt::set_md5_key(&s, p.address, pw.as_bytes())?;
            }
        }
        s.bind(&SocketAddr::new(a, port).into())?;
        s.listen(64)?;
        out.push(TcpListener::from_std(s.into())?);
    }
    Ok(out)
}

/// An accepted connection, handed to its peer's task.
pub(crate) struct Incoming {
    pub stream: TcpStream,
}

/// Accepts connections and routes each to its peer's task; unknown sources are closed at once.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    peers: HashMap<IpAddr, (mpsc::Sender<crate::peer::PeerCommand>, TtlPolicy)>,
) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "bgp: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ip = match from.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let Some((tx, ttl)) = peers.get(&ip) else {
            tracing::info!(%from, "bgp: refused connection from an unconfigured address");
            continue;
        };
        if let Err(e) = apply_session_options(&stream, ip, *ttl) {
            tracing::warn!(%from, error = %e, "bgp: socket options on accepted connection");
            continue;
        }
        let _ = tx
            .send(crate::peer::PeerCommand::Incoming(Incoming { stream }))
            .await;
    }
}

/// A second connection from a peer whose OPEN we have read, for collision resolution.
pub(crate) struct Candidate {
    pub stream: TcpStream,
    pub reader: FrameReader,
    pub open: Open,
}

/// Reads the peer's OPEN from a freshly accepted connection (bounded by `limit`).
pub(crate) async fn read_open(mut stream: TcpStream, limit: Duration) -> Option<Candidate> {
    let mut reader = FrameReader::new();
    let work = async {
        loop {
            if let Ok(Some(frame)) = reader.next_frame() {
                return match decode_message(frame, &DecodeContext::default()) {
                    Ok(Message::Open(open)) => Some(open),
                    _ => None,
                };
            }
            match stream.read_buf(reader.buffer()).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    };
    let open = tokio::time::timeout(limit, work).await.ok().flatten()?;
    Some(Candidate {
        stream,
        reader,
        open,
    })
}
