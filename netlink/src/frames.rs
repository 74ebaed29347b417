//! Bytes on the wire for takeover announcements: the gratuitous ARP Ethernet frame (RFC 826,
//! RFC 5227 §3 "ARP Announcement") and the unsolicited neighbour advertisement ICMPv6 message
//! (RFC 4861 §4.4, §7.2.6). Pure builders, no I/O.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Length of an Ethernet frame carrying an ARP packet for IPv4 (without FCS/padding).
pub const ARP_FRAME_LEN: usize = 42;

/// Ethertype of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// Length of the unsolicited NA: 24-byte message + 8-byte target link-layer address option.
pub const NA_LEN: usize = 32;

/// ICMPv6 type of a neighbour advertisement.
pub const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;

/// NA flags word, override bit (O).
const NA_FLAG_OVERRIDE: u8 = 0x20;

/// Neighbour discovery option type "target link-layer address".
const ND_OPT_TARGET_LINK_LAYER_ADDRESS: u8 = 2;

const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// Which ARP operation a gratuitous ARP uses. Both are sent: hosts differ in which they honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GarpKind {
    /// "who-has VIP tell VIP" (operation 1), target hardware address zero (RFC 5227).
    Request,
    /// "VIP is-at MAC" (operation 2), target hardware address = sender's, as Linux requires
    /// to treat a reply as gratuitous (`arp_is_garp`) and as `arping -A` sends it.
    Reply,
}

/// Builds a broadcast gratuitous ARP frame announcing that `ip` is at `mac`.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-------------------------------------------------------------+ Ethernet
/// |          destination MAC ff:ff:ff:ff:ff:ff (6)              |
/// |          source MAC (6)                                     |
/// |          ethertype 0x0806 (2)                               |
/// +-------------------------------+-----------------------------+ ARP
/// |  hardware type 1 (Ethernet)   |  protocol type 0x0800       |
/// |  hlen 6       |  plen 4       |  operation 1 / 2            |
/// |  sender hardware address (6) = MAC                          |
/// |  sender protocol address (4) = VIP                          |
/// |  target hardware address (6) = 0 (request) / MAC (reply)    |
/// |  target protocol address (4) = VIP                          |
/// +-------------------------------------------------------------+
/// ```
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr, kind: GarpKind) -> [u8; ARP_FRAME_LEN] {
    let mut f = [0u8; ARP_FRAME_LEN];
    f[0..6].copy_from_slice(&BROADCAST_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[18] = 6;
    f[19] = 4;
    let (operation, target_mac) = match kind {
        GarpKind::Request => (1u16, [0u8; 6]),
        GarpKind::Reply => (2u16, mac),
    };
    f[20..22].copy_from_slice(&operation.to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    f[32..38].copy_from_slice(&target_mac);
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// Builds an unsolicited neighbour advertisement for `target` at `mac` (override set, solicited
/// and router clear). The checksum is left zero: the kernel fills it for raw ICMPv6 sockets.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Type 136  |     Code 0    |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |R|S|O|                     Reserved                            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Target Address (16)                     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Type 2       |  Length 1     |  Link-layer address (6)  ...  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
pub fn unsolicited_na(mac: [u8; 6], target: Ipv6Addr) -> [u8; NA_LEN] {
    let mut m = [0u8; NA_LEN];
    m[0] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
    m[4] = NA_FLAG_OVERRIDE;
    m[8..24].copy_from_slice(&target.octets());
    m[24] = ND_OPT_TARGET_LINK_LAYER_ADDRESS;
    m[25] = 1; // in units of 8 octets
    m[26..32].copy_from_slice(&mac);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

    #[test]
    fn garp_request_bytes() {
        let f = garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 10), GarpKind::Request);
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 192, 0, 2, 10,
            0, 0, 0, 0, 0, 0, 192, 0, 2, 10,
        ];
        assert_eq!(f, expected);
    }

    #[test]
    fn garp_reply_has_own_mac_as_target() {
        let f = garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 10), GarpKind::Reply);
        assert_eq!(&f[20..22], &[0, 2]);
        assert_eq!(&f[32..38], &MAC);
        assert_eq!(&f[22..28], &MAC);
        assert_eq!(&f[28..32], &f[38..42]);
    }

    #[test]
    fn na_bytes() {
        let target: Ipv6Addr = "2001:db8::10".parse().expect("literal");
        let m = unsolicited_na(MAC, target);
        #[rustfmt::skip]
        let expected: [u8; 32] = [
            136, 0, 0, 0, 0x20, 0, 0, 0,
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            2, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
        ];
        assert_eq!(m, expected);
    }
}
