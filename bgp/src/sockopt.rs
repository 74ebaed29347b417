//! Socket options for BGP (and BFD) transport: the crate's only `unsafe` code.
//!
//! Owns: TCP MD5 signatures (RFC 2385, `TCP_MD5SIG`), the GTSM receive floor (RFC 5082,
//! `IP_MINTTL` / `IPV6_MINHOPCOUNT`), and — through socket2's safe wrappers — the sent TTL / hop
//! limit (multihop, GTSM 255), `TCP_NODELAY` and DSCP CS6 in TOS / traffic class. Neither socket2
//! nor nix has MD5 or the minimum-TTL options, and libc has no `tcp_md5sig` struct, so those two
//! are raw `setsockopt` calls on a struct of our own.
//!
//! Also owns, for BFD, the receive-TTL socket option and `recvmsg` with its ancillary data,
//! which neither socket2 nor tokio expose for IPv4. Why not `IP_MINTTL` there: Linux enforces
//! it in TCP only; a UDP socket with `IP_MINTTL` 255 still received a TTL 64 datagram (checked
//! on kernel 6.18 between two namespaces). So the BFD receive socket asks for the TTL of each
//! datagram (`IP_RECVTTL`/`IPV6_RECVHOPLIMIT`) and the caller checks it.
#![allow(unsafe_code)]

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use socket2::SockRef;

/// DSCP CS6 (network control, RFC 4594) in the TOS / traffic class byte.
pub const TOS_CS6: u32 = 0xc0;
/// Longest key Linux accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// `struct tcp_md5sig` from `<linux/tcp.h>`; `tcpm_addr` is a `sockaddr_storage` that we fill
/// byte by byte so no pointer casts are needed.
#[repr(C)]
struct TcpMd5Sig {
    tcpm_addr: [u8; 128],
    tcpm_flags: u8,
    tcpm_prefixlen: u8,
    tcpm_keylen: u16,
    tcpm_ifindex: libc::c_int,
    tcpm_key: [u8; MD5_MAX_KEY_LEN],
}

/// Writes `addr` as a `sockaddr_in` / `sockaddr_in6` into a `sockaddr_storage` image. An IPv4
/// peer on an IPv6 socket is written as a v4-mapped address, as the kernel compares it so.
fn sockaddr_bytes(addr: IpAddr, v6_socket: bool) -> [u8; 128] {
    let mut s = [0u8; 128];
    let addr = match (addr, v6_socket) {
        (IpAddr::V4(a), true) => IpAddr::V6(a.to_ipv6_mapped()),
        (a, _) => a,
    };
    match addr {
        IpAddr::V4(a) => {
            // sa_family_t is native-endian; port (0 = any) stays zero.
            s[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            s[4..8].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            s[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            s[8..24].copy_from_slice(&a.octets());
        }
    }
    s
}

fn is_v6_socket(fd: &impl AsFd) -> io::Result<bool> {
    Ok(SockRef::from(fd).domain()? == socket2::Domain::IPV6)
}

/// Installs (or with an empty key removes) the RFC 2385 MD5 key for `peer` on a socket: on a
/// listener before `accept`, on an outgoing socket before `connect`.
pub fn set_md5_key(fd: &impl AsFd, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("TCP MD5 key longer than {MD5_MAX_KEY_LEN} bytes"),
        ));
    }
    let mut sig = TcpMd5Sig {
        tcpm_addr: sockaddr_bytes(peer, is_v6_socket(fd)?),
        tcpm_flags: 0,
        tcpm_prefixlen: 0,
        tcpm_keylen: key.len() as u16,
        tcpm_ifindex: 0,
        tcpm_key: [0; MD5_MAX_KEY_LEN],
    };
    sig.tcpm_key[..key.len()].copy_from_slice(key);
    let len = std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t;
    // SAFETY: `fd` is an open socket borrowed for the call; the pointer and length describe
    // `sig`, a fully initialised repr(C) value laid out like the kernel's `struct tcp_md5sig`
    // (216 bytes) that lives until the call returns; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&raw const sig).cast::<libc::c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_int(
    fd: &impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is an open socket borrowed for the call; the pointer and length describe a
    // c_int on our stack that outlives the call; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            level,
            name,
            (&raw const value).cast::<libc::c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// GTSM receive floor (RFC 5082): drop packets whose TTL / hop limit is below `min`.
pub fn set_min_ttl(fd: &impl AsFd, v6: bool, min: u8) -> io::Result<()> {
    if v6 {
        set_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MINHOPCOUNT,
            libc::c_int::from(min),
        )
    } else {
        set_int(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MINTTL,
            libc::c_int::from(min),
        )
    }
}

/// TTL / hop limit of sent packets (1 for directly connected eBGP, N for multihop, 255 for
/// GTSM).
pub fn set_ttl(fd: &impl AsFd, v6: bool, ttl: u8) -> io::Result<()> {
    let s = SockRef::from(fd);
    if v6 {
        s.set_unicast_hops_v6(u32::from(ttl))
    } else {
        s.set_ttl_v4(u32::from(ttl))
    }
}

/// DSCP CS6 for BGP's control traffic, and no Nagle delay for small UPDATEs.
pub fn set_control_traffic(fd: &impl AsFd, v6: bool) -> io::Result<()> {
    let s = SockRef::from(fd);
    s.set_tcp_nodelay(true)?;
    if v6 {
        s.set_tclass_v6(TOS_CS6)
    } else {
        s.set_tos_v4(TOS_CS6)
    }
}

/// Asks the kernel to attach the received TTL (IPv4) or hop limit (IPv6) to every datagram.
pub(crate) fn enable_receive_ttl(fd: BorrowedFd<'_>, ipv6: bool) -> io::Result<()> {
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT)
    } else {
        (libc::IPPROTO_IP, libc::IP_RECVTTL)
    };
    let on: libc::c_int = 1;
    // SAFETY: `fd` is an open socket for the lifetime of the borrow; `optval` points to a live
    // c_int and `optlen` is exactly its size; setsockopt does not keep the pointer.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One datagram read by [`recv_with_ttl`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    /// Bytes written to the buffer.
    pub len: usize,
    /// Sender address and port.
    pub source: SocketAddr,
    /// TTL or hop limit from the IP header, `None` if the kernel attached none.
    pub ttl: Option<u8>,
}

/// Reads one datagram without blocking (`WouldBlock` when none is queued).
pub(crate) fn recv_with_ttl(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    let mut source = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64 elements give the alignment cmsghdr needs; 64 bytes hold CMSG_SPACE(sizeof(int))
    // several times over.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is a plain C struct for which all-zero bytes are a valid value.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_name = source.as_mut_ptr().cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 8]>() as _;

    // SAFETY: every pointer in `msg` refers to a live local (`source`, `iov` → `buf`,
    // `control`) whose size is the length given next to it; all outlive the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = usize::try_from(n).unwrap_or(0).min(buf.len());

    let mut ttl = None;
    // SAFETY: `msg` was filled by a successful recvmsg, so msg_control/msg_controllen describe
    // the initialised part of `control`; CMSG_FIRSTHDR/CMSG_NXTHDR stay within it and return
    // null at its end. The data of an IP_TTL/IPV6_HOPLIMIT message is one c_int, read
    // unaligned because CMSG_DATA only guarantees the header's alignment.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            let is_ttl = (header.cmsg_level == libc::IPPROTO_IP
                && header.cmsg_type == libc::IP_TTL)
                || (header.cmsg_level == libc::IPPROTO_IPV6
                    && header.cmsg_type == libc::IPV6_HOPLIMIT);
            if is_ttl
                && header.cmsg_len as usize
                    >= libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize
            {
                let value = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                ttl = u8::try_from(value).ok();
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }

    // SAFETY: recvmsg wrote msg_namelen bytes of a sockaddr into `source` (the rest stays
    // zeroed), so reading it as sockaddr_storage is sound.
    let storage = unsafe { source.assume_init() };
    let source = socket_addr_from(&storage, msg.msg_namelen)?;
    Ok(Received { len, source, ttl })
}

fn socket_addr_from(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> io::Result<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, which is smaller than
            // and layout-compatible with the start of sockaddr_storage.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        family => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("recvmsg returned address family {family}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_struct_matches_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
    }

    #[test]
    fn sockaddr_images() {
        let v4 = sockaddr_bytes("192.0.2.1".parse().expect("ip"), false);
        assert_eq!(u16::from_ne_bytes([v4[0], v4[1]]), libc::AF_INET as u16);
        assert_eq!(&v4[4..8], &[192, 0, 2, 1]);
        let mapped = sockaddr_bytes("192.0.2.1".parse().expect("ip"), true);
        assert_eq!(
            u16::from_ne_bytes([mapped[0], mapped[1]]),
            libc::AF_INET6 as u16
        );
        assert_eq!(
            &mapped[8..24],
            &"::ffff:192.0.2.1"
                .parse::<std::net::Ipv6Addr>()
                .expect("ip")
                .octets()
        );
    }

    #[test]
    fn options_apply_to_real_sockets() {
        let s4 = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        set_md5_key(&s4, "192.0.2.1".parse().expect("ip"), b"secret").expect("md5");
        set_md5_key(&s4, "192.0.2.1".parse().expect("ip"), b"").expect("md5 delete");
        set_min_ttl(&s4, false, 254).expect("minttl");
        set_ttl(&s4, false, 255).expect("ttl");
        set_control_traffic(&s4, false).expect("tos");
        assert_eq!(s4.ttl_v4().expect("ttl"), 255);
        assert_eq!(s4.tos_v4().expect("tos"), TOS_CS6);
        let s6 = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)
            .expect("socket");
        set_md5_key(&s6, "2001:db8::1".parse().expect("ip"), &[7; 80]).expect("md5");
        assert!(set_md5_key(&s6, "2001:db8::1".parse().expect("ip"), &[7; 81]).is_err());
        set_min_ttl(&s6, true, 254).expect("minhop");
        set_ttl(&s6, true, 255).expect("hops");
        set_control_traffic(&s6, true).expect("tclass");
        assert_eq!(s6.unicast_hops_v6().expect("hops"), 255);
    }
}
