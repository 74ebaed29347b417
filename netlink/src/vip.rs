//! What a VIP address looks like in rtnetlink: the messages that add and delete it, and how an
//! address found on the interface is recognised as one of ours (pure functions, no I/O).
//!
//! Ownership rule (used by the start-up clean-up):
//! - IPv4: a VIP is ours when it is a /32 carrying the label `<iface>:cpvip`. The label exists only
//!   when `<iface>:cpvip` fits in 15 bytes (IFNAMSIZ - 1), i.e. for interface names of at most 9
//!   bytes; on longer names no IPv4 VIP can be recognised as ours and every one is a conflict.
//! - IPv6 has no labels. A VIP is ours when it is a /128 whose flags include both NODAD and
//!   NOPREFIXROUTE and that is permanent (no lifetime). An operator's `ip addr add VIP/128` or
//!   SLAAC/DHCPv6 does not set that combination; only a deliberate `nodad noprefixroute` does, and
//!   whoever does that by hand for the same VIP on the same interface is effectively doing what we
//!   do.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::AddressMessageBuilder;

use crate::error::Error;

/// Suffix of the IPv4 label marking a VIP as cpvip's.
pub const LABEL_SUFFIX: &str = ":cpvip";

/// Linux IFNAMSIZ minus the terminating NUL: the longest interface name or address label.
pub const MAX_NAME_LEN: usize = 15;

/// Prefix length of a VIP: a host route, /32 or /128.
pub fn host_prefix_len(vip: IpAddr) -> u8 {
    match vip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The IPv4 label `<iface>:cpvip`, or `None` when it would not fit in 15 bytes.
pub fn label_for(interface: &str) -> Option<String> {
    let label = format!("{interface}{LABEL_SUFFIX}");
    (label.len() <= MAX_NAME_LEN).then_some(label)
}

/// Rejects addresses that cannot serve as a VIP.
pub fn validate_vip(vip: IpAddr) -> Result<(), Error> {
    let reason = match vip {
        IpAddr::V4(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V4(a) if a.is_broadcast() => Some("the broadcast address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V6(a) if a.is_unicast_link_local() => {
            Some("a link-local address (it would need a zone)")
        }
        _ => None,
    };
    match reason {
        Some(reason) => Err(Error::InvalidVip { vip, reason }),
        None => Ok(()),
    }
}

/// Checks an interface name the way the kernel will (so the error names the real problem).
pub fn validate_interface_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("longer than 15 bytes")
    } else if name.contains(['/', ':']) || name.chars().any(char::is_whitespace) {
        Some("contains '/', ':' or whitespace")
    } else if name == "." || name == ".." {
        Some("not a name")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidInterfaceName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The RTM_NEWADDR message binding `vip` on interface `index`.
pub fn add_message(index: u32, vip: IpAddr, label: Option<&str>) -> AddressMessage {
    match vip {
        IpAddr::V4(v4) => {
            let mut msg = AddressMessageBuilder::<Ipv4Addr>::new()
                .index(index)
                .address(v4, 32)
                .build();
            if let Some(label) = label {
                msg.attributes
                    .push(AddressAttribute::Label(label.to_owned()));
            }
            msg
        }
        IpAddr::V6(v6) => {
            let mut msg = AddressMessageBuilder::<Ipv6Addr>::new()
                .index(index)
                .address(v6, 128)
                .build();
            // NODAD: usable at once, no tentative phase. NOPREFIXROUTE: a /128 needs no route.
            msg.attributes.push(AddressAttribute::Flags(
                AddressFlags::Nodad | AddressFlags::Noprefixroute,
            ));
            msg
        }
    }
}

/// The RTM_DELADDR message removing `vip` (whatever its label) from interface `index`.
pub fn del_message(index: u32, vip: IpAddr) -> AddressMessage {
    match vip {
        IpAddr::V4(v4) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(v4, 32)
            .build(),
        IpAddr::V6(v6) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(v6, 128)
            .build(),
    }
}

/// The host address an RTM_NEWADDR/RTM_DELADDR message is about (IFA_LOCAL, else IFA_ADDRESS).
pub fn message_address(msg: &AddressMessage) -> Option<IpAddr> {
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => return Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            _ => {}
        }
    }
    address
}

fn message_label(msg: &AddressMessage) -> Option<&str> {
    msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Label(l) => Some(l.as_str()),
        _ => None,
    })
}

fn message_flags(msg: &AddressMessage) -> AddressFlags {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        })
        .unwrap_or_else(|| AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits())))
}

/// Whether an address found on `interface` was put there by cpvip (see the module doc).
pub fn is_ours(msg: &AddressMessage, interface: &str) -> bool {
    let Some(address) = message_address(msg) else {
        return false;
    };
    if msg.header.prefix_len != host_prefix_len(address) {
        return false;
    }
    match address {
        IpAddr::V4(_) => match (label_for(interface), message_label(msg)) {
            (Some(ours), Some(found)) => ours == found,
            _ => false,
        },
        IpAddr::V6(_) => message_flags(msg)
            .contains(AddressFlags::Nodad | AddressFlags::Noprefixroute | AddressFlags::Permanent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().expect("literal"))
    }
    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().expect("literal"))
    }

    #[test]
    fn label_fits_only_short_interface_names() {
        assert_eq!(label_for("lo").as_deref(), Some("lo:cpvip"));
        assert_eq!(label_for("eth0123456").as_deref(), None); // 10 + 6 = 16 bytes
        assert_eq!(label_for("eth012345").as_deref(), Some("eth012345:cpvip")); // 15 bytes
    }

    #[test]
    fn rejects_addresses_that_cannot_be_vips() {
        for bad in [
            v4("0.0.0.0"),
            v4("224.0.0.1"),
            v4("255.255.255.255"),
            v6("::"),
            v6("ff02::1"),
        ] {
            assert!(validate_vip(bad).is_err(), "{bad}");
        }
        assert!(validate_vip(v6("fe80::1")).is_err());
        assert!(validate_vip(v4("192.0.2.10")).is_ok());
        assert!(validate_vip(v6("2001:db8::10")).is_ok());
    }

    #[test]
    fn rejects_impossible_interface_names() {
        for bad in ["", "a/b", "eth0:1", "0123456789abcdef", "a b", ".."] {
            assert!(validate_interface_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_interface_name("eth0").is_ok());
    }

    #[test]
    fn ipv4_add_message_carries_label_and_host_prefix() {
        let msg = add_message(7, v4("192.0.2.10"), Some("eth0:cpvip"));
        assert_eq!(msg.header.index, 7);
        assert_eq!(msg.header.prefix_len, 32);
        assert_eq!(message_address(&msg), Some(v4("192.0.2.10")));
        assert!(is_ours(&msg, "eth0"));
        assert!(!is_ours(&msg, "eth1"));
    }

    #[test]
    fn ipv6_add_message_is_nodad_noprefixroute() {
        let msg = add_message(3, v6("2001:db8::10"), None);
        assert_eq!(msg.header.prefix_len, 128);
        let flags = message_flags(&msg);
        assert!(flags.contains(AddressFlags::Nodad | AddressFlags::Noprefixroute));
    }

    #[test]
    fn ipv6_is_ours_needs_nodad_noprefixroute_permanent_and_128() {
        let mut msg = add_message(3, v6("2001:db8::10"), None);
        assert!(
            !is_ours(&msg, "eth0"),
            "the kernel adds Permanent; our request lacks it"
        );
        msg.attributes
            .retain(|a| !matches!(a, AddressAttribute::Flags(_)));
        msg.attributes.push(AddressAttribute::Flags(
            AddressFlags::Nodad | AddressFlags::Noprefixroute | AddressFlags::Permanent,
        ));
        assert!(is_ours(&msg, "eth0"));
        msg.header.prefix_len = 64;
        assert!(!is_ours(&msg, "eth0"));
    }

    #[test]
    fn unlabelled_ipv4_is_not_ours() {
        let msg = del_message(7, v4("192.0.2.10"));
        assert!(!is_ours(&msg, "eth0"));
    }
}
