//! OPEN validation and capability negotiation (RFC 4271 §6.2, RFC 5492, RFC 6793, RFC 8654),
//! and connection collision resolution (RFC 4271 §6.8). Pure functions.

use std::net::Ipv4Addr;

use crate::wire::{Family, Notification, Open};

/// What one session agreed on, from our OPEN and the peer's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Hold time in seconds: the smaller of both proposals; 0 = no hold timer, no keepalives.
    pub hold_time: u16,
    /// Keepalive interval in seconds: hold time / 3 (0 when the hold time is 0).
    pub keepalive: u16,
    /// The peer's ASN (4-octet capable).
    pub peer_asn: u32,
    /// The peer's BGP identifier.
    pub peer_router_id: Ipv4Addr,
    /// Both sides support 4-octet ASNs: AS_PATH uses 4 octets per ASN.
    pub four_octet_as: bool,
    /// Both sides can exchange IPv4 unicast routes.
    pub ipv4_unicast: bool,
    /// Both sides can exchange IPv6 unicast routes.
    pub ipv6_unicast: bool,
    /// The peer can ask us to re-send our routes (RFC 2918).
    pub route_refresh: bool,
    /// Both sides accept messages up to 65535 bytes (RFC 8654).
    pub extended_message: bool,
}

impl Negotiated {
    /// Largest message we may send and must accept.
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            crate::wire::EXTENDED_MAX_MESSAGE_LEN
        } else {
            crate::wire::MAX_MESSAGE_LEN
        }
    }

    /// Whether `family` was negotiated.
    pub fn has_family(&self, family: Family) -> bool {
        match family {
            Family::Ipv4Unicast => self.ipv4_unicast,
            Family::Ipv6Unicast => self.ipv6_unicast,
        }
    }
}

fn open_error(subcode: u8, data: Vec<u8>) -> Notification {
    Notification {
        code: Notification::OPEN,
        subcode,
        data,
    }
}

/// Checks the peer's OPEN against our configuration and our own OPEN; on success returns what
/// was negotiated, otherwise the NOTIFICATION to send (OPEN Message Error with its subcode).
///
/// The version was already checked by the decoder (2/1).
pub fn negotiate(
    ours: &Open,
    peer: &Open,
    expected_peer_asn: u32,
) -> Result<Negotiated, Notification> {
    // RFC 6793 §4.2.1: a 4-octet ASN rides in the capability; my_as must then be AS_TRANS or
    // the same 2-octet value.
    let peer_asn = peer.asn();
    if peer_asn != expected_peer_asn || peer_asn == 0 {
        return Err(open_error(
            Notification::OPEN_BAD_PEER_AS,
            peer.my_as.to_be_bytes().to_vec(),
        ));
    }
    let ibgp = peer_asn == ours.asn();
    // RFC 6286 §2.2: a zero identifier is never valid; within an AS it must differ from ours.
    if peer.router_id.is_unspecified() || (ibgp && peer.router_id == ours.router_id) {
        return Err(open_error(
            Notification::OPEN_BAD_BGP_ID,
            peer.router_id.octets().to_vec(),
        ));
    }
    // RFC 4271 §6.2: a hold time of one or two seconds MUST be rejected.
    if matches!(peer.hold_time, 1 | 2) {
        return Err(open_error(
            Notification::OPEN_UNACCEPTABLE_HOLD_TIME,
            Vec::new(),
        ));
    }
    let hold_time = ours.hold_time.min(peer.hold_time);
    let pc = &peer.capabilities;
    let oc = &ours.capabilities;
    // RFC 4760 §8: a peer without any multiprotocol capability speaks IPv4 unicast only.
    let (peer_v4, peer_v6) = if pc.any_multiprotocol {
        (pc.ipv4_unicast, pc.ipv6_unicast)
    } else {
        (true, false)
    };
    let ipv4_unicast = oc.ipv4_unicast && peer_v4;
    let ipv6_unicast = oc.ipv6_unicast && peer_v6;
    if !ipv4_unicast && !ipv6_unicast {
        // Nothing to exchange: report the multiprotocol capability we need (RFC 5492 §5).
        let mut data = Vec::new();
        for (on, afi) in [(oc.ipv4_unicast, 1u8), (oc.ipv6_unicast, 2u8)] {
            if on {
                data.extend_from_slice(&[1, 4, 0, afi, 0, 1]);
            }
        }
        return Err(open_error(Notification::OPEN_UNSUPPORTED_CAPABILITY, data));
    }
    Ok(Negotiated {
        hold_time,
        keepalive: hold_time / 3,
        peer_asn,
        peer_router_id: peer.router_id,
        four_octet_as: oc.four_octet_as.is_some() && pc.four_octet_as.is_some(),
        ipv4_unicast,
        ipv6_unicast,
        route_refresh: pc.route_refresh,
        extended_message: oc.extended_message && pc.extended_message,
    })
}

/// Which of two connections to the same peer survives a collision (RFC 4271 §6.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CollisionWinner {
    /// Keep the connection we already have; close the new one.
    Existing,
    /// Close the existing connection (Cease 7) and continue on the new one.
    New,
}

/// RFC 4271 §6.8: the connection initiated by the side with the higher BGP identifier (compared
/// as unsigned 32-bit integers) survives. `existing_is_ours` says whether the existing
/// connection was initiated by us. With equal identifiers (only possible between ASes, RFC 6286
/// §2.3) the side with the larger ASN wins.
pub fn resolve_collision(
    local_id: Ipv4Addr,
    local_asn: u32,
    remote_id: Ipv4Addr,
    remote_asn: u32,
    existing_is_ours: bool,
) -> CollisionWinner {
    let local_wins = (u32::from(local_id), local_asn) > (u32::from(remote_id), remote_asn);
    // The winner's connection is the one it initiated.
    if local_wins == existing_is_ours {
        CollisionWinner::Existing
    } else {
        CollisionWinner::New
    }
}
