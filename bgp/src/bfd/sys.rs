//! The only unsafe code of the BFD module: the receive-TTL socket option and `recvmsg` with its
//! ancillary data, which neither socket2 nor tokio expose for IPv4.
//!
//! Why not `IP_MINTTL`: Linux enforces it in TCP only; a UDP socket with `IP_MINTTL` 255 still
//! received a TTL 64 datagram (checked on kernel 6.18 between two namespaces). So the receive
//! socket asks for the TTL of each datagram (`IP_RECVTTL`/`IPV6_RECVHOPLIMIT`) and the caller
//! checks it.
#![allow(unsafe_code)]

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

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
