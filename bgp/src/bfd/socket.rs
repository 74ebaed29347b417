//! BFD single-hop sockets (RFC 5881).
//!
//! Owns: one receive socket per local address on UDP 3784 that drops datagrams whose TTL/hop
//! limit is not 255 (§5, the GTSM-style check that the sender is on the link), and one send
//! socket per session from a source port in 49152-65535 (§4) with TTL 255 and IP precedence
//! CS6 (network control). The TTL is read per datagram with `IP_RECVTTL`/`IPV6_RECVHOPLIMIT`
//! (see `crate::sockopt`: `IP_MINTTL` does not apply to UDP on Linux).
//!
//! Does not own: IPv6 link-local peers (no scope id is set; peers are addressed by global or
//! unique-local addresses), multihop (port 4784), echo (port 3785).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::os::fd::AsFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::sockopt;

/// Destination port of single-hop control packets (RFC 5881 §4).
pub const CONTROL_PORT: u16 = 3784;
/// Source ports a session may use (RFC 5881 §4).
pub const SOURCE_PORTS: RangeInclusive<u16> = 49152..=65535;
/// TTL / hop limit on send, and the only value accepted on receive (RFC 5881 §5).
pub const REQUIRED_TTL: u8 = 255;
/// DSCP CS6 in the TOS / traffic class byte: BFD is network control traffic.
const TOS_CS6: u32 = 0xc0;
/// How many random source ports to try before giving up.
const PORT_ATTEMPTS: usize = 64;

/// A datagram that passed the TTL check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Datagram {
    pub len: usize,
    pub source: SocketAddr,
}

/// The shared receive socket of one local address.
#[derive(Debug)]
pub(crate) struct ReceiveSocket {
    socket: UdpSocket,
}

impl ReceiveSocket {
    /// Binds `local`:3784 with TTL reporting. Needs a tokio runtime.
    pub fn bind(local: IpAddr) -> io::Result<ReceiveSocket> {
        let socket = Socket::new(
            Domain::for_address(SocketAddr::new(local, 0)),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        if local.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        sockopt::enable_receive_ttl(socket.as_fd(), local.is_ipv6())?;
        socket.bind(&SocketAddr::new(local, CONTROL_PORT).into())?;
        socket.set_nonblocking(true)?;
        Ok(ReceiveSocket {
            socket: UdpSocket::from_std(socket.into())?,
        })
    }

    /// Waits for the next datagram whose TTL is 255; others are dropped (and logged at debug).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Datagram> {
        loop {
            let received = self
                .socket
                .async_io(Interest::READABLE, || {
                    sockopt::recv_with_ttl(self.socket.as_fd(), buf)
                })
                .await?;
            if received.ttl == Some(REQUIRED_TTL) {
                return Ok(Datagram {
                    len: received.len,
                    source: received.source,
                });
            }
            tracing::debug!(
                source = %received.source,
                ttl = ?received.ttl,
                "dropping BFD packet whose TTL is not 255 (not from a directly connected peer)"
            );
        }
    }
}

/// The send socket of one session.
#[derive(Debug)]
pub(crate) struct SendSocket {
    socket: UdpSocket,
    peer: SocketAddr,
}

impl SendSocket {
    /// Binds `local` on a random free port of 49152-65535, TTL 255, towards `peer`:3784.
    pub fn bind(local: IpAddr, peer: IpAddr) -> io::Result<SendSocket> {
        let socket = Socket::new(
            Domain::for_address(SocketAddr::new(local, 0)),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        if local.is_ipv6() {
            socket.set_only_v6(true)?;
            socket.set_unicast_hops_v6(u32::from(REQUIRED_TTL))?;
            socket.set_tclass_v6(TOS_CS6)?;
        } else {
            socket.set_ttl_v4(u32::from(REQUIRED_TTL))?;
            socket.set_tos_v4(TOS_CS6)?;
        }
        bind_source_port(&socket, local)?;
        socket.set_nonblocking(true)?;
        Ok(SendSocket {
            socket: UdpSocket::from_std(socket.into())?,
            peer: SocketAddr::new(peer, CONTROL_PORT),
        })
    }

    /// The bound local address and source port.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends one datagram to the peer.
    pub async fn send(&self, bytes: &[u8]) -> io::Result<()> {
        self.socket.send_to(bytes, self.peer).await.map(|_| ())
    }
}

fn bind_source_port(socket: &Socket, local: IpAddr) -> io::Result<()> {
    let span = u64::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let start = RandomState::new().hash_one(local) % span;
    let mut last_error = None;
    for attempt in 0..PORT_ATTEMPTS as u64 {
        // Stepping by a prime spreads the attempts over the range.
        let offset = (start + attempt * 7919) % span;
        let port = SOURCE_PORTS.start() + u16::try_from(offset).unwrap_or(0);
        match socket.bind(&SocketAddr::new(local, port).into()) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}
