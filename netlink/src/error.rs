//! Errors of this crate, and the translation of kernel errno values into messages an operator can
//! act on (which capability is missing, which sysctl disables IPv6).

use std::fmt;
use std::io;
use std::net::IpAddr;

/// A Linux capability this crate needs for some operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Needed to add and remove addresses (rtnetlink RTM_NEWADDR / RTM_DELADDR).
    NetAdmin,
    /// Needed to open the AF_PACKET and raw ICMPv6 sockets of the announcer.
    NetRaw,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::NetRaw => "CAP_NET_RAW",
        })
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The interface does not exist (in this network namespace).
    #[error("interface {name:?} does not exist")]
    UnknownInterface {
        /// The name that was looked up.
        name: String,
    },

    /// The interface name cannot be a Linux interface name.
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidInterfaceName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A VIP that cannot be bound as a host address.
    #[error("invalid VIP {vip}: {reason}")]
    InvalidVip {
        /// The rejected address.
        vip: IpAddr,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// The kernel answered EPERM: the process lacks a capability.
    #[error("cannot {action}: operation not permitted, the process lacks {capability}")]
    MissingCapability {
        /// The capability that is missing.
        capability: Capability,
        /// What was attempted, e.g. `add 192.0.2.10/32 to eth0`.
        action: String,
    },

    /// IPv6 is disabled on the interface (or in the whole kernel).
    #[error(
        "cannot add IPv6 VIP {vip} to {interface}: IPv6 is disabled on this interface \
         (sysctl net.ipv6.conf.{interface}.disable_ipv6 = 1, or net.ipv6.conf.all.disable_ipv6, \
         or the kernel was booted with ipv6.disable=1)"
    )]
    Ipv6Disabled {
        /// The IPv6 VIP.
        vip: IpAddr,
        /// The interface.
        interface: String,
    },

    /// Any other failure reported by the kernel over rtnetlink.
    #[error("cannot {action}: {source}")]
    Netlink {
        /// What was attempted.
        action: String,
        /// The kernel's error (errno) or the netlink library's.
        #[source]
        source: io::Error,
    },

    /// Any other I/O failure (sockets of the announcer).
    #[error("cannot {action}: {source}")]
    Io {
        /// What was attempted.
        action: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// The errno carried by an rtnetlink error, if it is a kernel error message.
pub(crate) fn errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => Some(msg.raw_code().abs()),
        _ => None,
    }
}

/// Turns an rtnetlink error into an `io::Error` (keeping the errno when there is one).
pub(crate) fn to_io(err: rtnetlink::Error) -> io::Error {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io(),
        other => io::Error::other(other),
    }
}

/// Classifies a failed address add/delete.
pub(crate) fn address_error(
    err: rtnetlink::Error,
    action: String,
    vip: IpAddr,
    interface: &str,
) -> Error {
    match errno(&err) {
        Some(libc::EPERM) => Error::MissingCapability {
            capability: Capability::NetAdmin,
            action,
        },
        Some(libc::EACCES | libc::EAFNOSUPPORT) if vip.is_ipv6() => Error::Ipv6Disabled {
            vip,
            interface: interface.to_owned(),
        },
        _ => Error::Netlink {
            action,
            source: to_io(err),
        },
    }
}

/// Classifies a failed socket operation of the announcer.
pub(crate) fn socket_error(err: io::Error, action: String) -> Error {
    match err.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => Error::MissingCapability {
            capability: Capability::NetRaw,
            action,
        },
        _ => Error::Io {
            action,
            source: err,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::ErrorMessage;
    use std::num::NonZeroI32;

    fn nl_err(code: i32) -> rtnetlink::Error {
        let mut msg = ErrorMessage::default();
        msg.code = NonZeroI32::new(-code);
        rtnetlink::Error::NetlinkError(msg)
    }

    #[test]
    fn eperm_on_address_add_names_cap_net_admin() {
        let vip: IpAddr = "192.0.2.10".parse().expect("literal");
        let e = address_error(
            nl_err(libc::EPERM),
            "add 192.0.2.10/32 to eth0".into(),
            vip,
            "eth0",
        );
        assert!(matches!(
            e,
            Error::MissingCapability {
                capability: Capability::NetAdmin,
                ..
            }
        ));
        assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
    }

    #[test]
    fn eacces_on_ipv6_add_names_the_sysctl() {
        let vip: IpAddr = "2001:db8::10".parse().expect("literal");
        let e = address_error(nl_err(libc::EACCES), "add".into(), vip, "eth0");
        assert!(
            e.to_string().contains("net.ipv6.conf.eth0.disable_ipv6"),
            "{e}"
        );
    }

    #[test]
    fn eacces_on_ipv4_is_a_plain_netlink_error() {
        let vip: IpAddr = "192.0.2.10".parse().expect("literal");
        let e = address_error(nl_err(libc::EACCES), "add".into(), vip, "eth0");
        assert!(matches!(e, Error::Netlink { .. }));
    }

    #[test]
    fn eperm_on_raw_socket_names_cap_net_raw() {
        let e = socket_error(io::Error::from_raw_os_error(libc::EPERM), "open".into());
        assert!(e.to_string().contains("CAP_NET_RAW"), "{e}");
    }
}
