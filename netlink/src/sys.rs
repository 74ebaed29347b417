//! The only `unsafe` code of this crate: an AF_PACKET raw socket bound to one interface, used to
//! send gratuitous ARP frames. socket2 can create AF_PACKET sockets but cannot build a
//! `sockaddr_ll`, so this goes through libc directly.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An AF_PACKET/SOCK_RAW socket for one ethertype, bound to one interface.
#[derive(Debug)]
pub(crate) struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
    ethertype: u16,
}

fn link_address(ifindex: i32, ethertype: u16, dest: Option<[u8; 6]>) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is a plain C struct of integers and byte arrays; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_protocol = ethertype.to_be();
    sll.sll_ifindex = ifindex;
    if let Some(mac) = dest {
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&mac);
    }
    sll
}

impl PacketSocket {
    /// Opens a raw packet socket for `ethertype` on interface `ifindex` (needs CAP_NET_RAW).
    pub(crate) fn open(ifindex: u32, ethertype: u16) -> io::Result<Self> {
        let ifindex = i32::try_from(ifindex)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index overflow"))?;
        // SAFETY: plain syscall with constant arguments; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(ethertype.to_be()),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sll = link_address(ifindex, ethertype, None);
        // SAFETY: `sll` is a valid sockaddr_ll that outlives the call; the length matches it.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const sll).cast::<libc::sockaddr>(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket {
            fd,
            ifindex,
            ethertype,
        })
    }

    /// Sends one complete Ethernet frame (header included) to `dest` on the bound interface.
    pub(crate) fn send(&self, frame: &[u8], dest: [u8; 6]) -> io::Result<()> {
        let sll = link_address(self.ifindex, self.ethertype, Some(dest));
        // SAFETY: `frame` and `sll` are valid for the given lengths for the duration of the call.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast::<libc::c_void>(),
                frame.len(),
                0,
                (&raw const sll).cast::<libc::sockaddr>(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        if usize::try_from(sent).ok() != Some(frame.len()) {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write on packet socket",
            ));
        }
        Ok(())
    }
}
