//! Socket options for BGP (and BFD) transport: the crate's only `unsafe` code.
//!
//! Owns: TCP MD5 signatures (RFC 2385, `TCP_MD5SIG`), the GTSM receive floor (RFC 5082,
//! `IP_MINTTL` / `IPV6_MINHOPCOUNT`), and — through socket2's safe wrappers — the sent TTL / hop
//! limit (multihop, GTSM 255), `TCP_NODELAY` and DSCP CS6 in TOS / traffic class. Neither socket2
//! nor nix has MD5 or the minimum-TTL options, and libc has no `tcp_md5sig` struct, so those two
//! are raw `setsockopt` calls on a struct of our own.
#![allow(unsafe_code)]

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

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
