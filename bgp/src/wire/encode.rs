//! Encoding of every message we send. Large route sets are split into as many UPDATEs as the
//! negotiated maximum message size needs.
//!
//! UPDATE layout (RFC 4271 §4.3); IPv6 routes travel in MP_REACH_NLRI / MP_UNREACH_NLRI path
//! attributes (RFC 4760 §3, §4) instead of the two NLRI fields:
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! |   Withdrawn Routes (variable)                       |
//! |   Total Path Attribute Length (2 octets)            |
//! |   Path Attributes (variable)                        |
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```

use std::net::IpAddr;

use bytes::Bytes;
use rustbgpd_wire as codec;

use super::types::{Announcement, EncodeError, Family, Notification, Open, Route};

fn codec_err(e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Codec(e.to_string())
}

fn to_bytes(msg: &codec::Message, max_len: usize) -> Result<Bytes, EncodeError> {
    let limit = u16::try_from(max_len).unwrap_or(u16::MAX);
    codec::encode_message_with_limit(msg, limit)
        .map(bytes::BytesMut::freeze)
        .map_err(codec_err)
}

/// KEEPALIVE (RFC 4271 §4.4): the bare header.
pub fn keepalive() -> Bytes {
    let mut b = vec![0xff; 16];
    b.extend_from_slice(&[0, 19, 4]);
    Bytes::from(b)
}

/// OPEN with our capabilities, all in one Capabilities optional parameter.
pub fn open(open: &Open) -> Result<Bytes, EncodeError> {
    let c = &open.capabilities;
    let mut caps = Vec::new();
    if c.ipv4_unicast {
        caps.push(codec::Capability::MultiProtocol {
            afi: codec::Afi::Ipv4,
            safi: codec::Safi::Unicast,
        });
    }
    if c.ipv6_unicast {
        caps.push(codec::Capability::MultiProtocol {
            afi: codec::Afi::Ipv6,
            safi: codec::Safi::Unicast,
        });
    }
    if c.route_refresh {
        caps.push(codec::Capability::RouteRefresh);
    }
    if c.extended_message {
        caps.push(codec::Capability::ExtendedMessage);
    }
    if let Some(asn) = c.four_octet_as {
        caps.push(codec::Capability::FourOctetAs { asn });
    }
    let msg = codec::Message::Open(codec::OpenMessage {
        version: 4,
        my_as: open.my_as,
        hold_time: open.hold_time,
        bgp_identifier: open.router_id,
        capabilities: caps,
    });
    to_bytes(&msg, super::MAX_MESSAGE_LEN)
}

/// NOTIFICATION; data that would not fit in 4096 bytes is truncated.
pub fn notification(n: &Notification) -> Bytes {
    let room = super::MAX_MESSAGE_LEN - 21;
    let data = &n.data[..n.data.len().min(room)];
    let mut b = vec![0xff; 16];
    let len = u16::try_from(21 + data.len()).unwrap_or(u16::MAX);
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(&[3, n.code, n.subcode]);
    b.extend_from_slice(data);
    Bytes::from(b)
}

/// ROUTE-REFRESH (RFC 2918) for one family.
pub fn route_refresh(family: Family) -> Bytes {
    let (afi, safi) = family.afi_safi();
    let mut b = vec![0xff; 16];
    b.extend_from_slice(&[0, 23, 5]);
    b.extend_from_slice(&afi.to_be_bytes());
    b.extend_from_slice(&[0, safi]);
    Bytes::from(b)
}

/// End-of-RIB (RFC 4724 §2): an empty UPDATE for IPv4, an UPDATE with only an empty
/// MP_UNREACH_NLRI for IPv6.
pub fn end_of_rib(family: Family) -> Bytes {
    let mut b = vec![0xff; 16];
    match family {
        Family::Ipv4Unicast => b.extend_from_slice(&[0, 23, 2, 0, 0, 0, 0]),
        // attrs len 6: flags 0x80 (optional), type 15, len 3, AFI 2, SAFI 1.
        Family::Ipv6Unicast => b.extend_from_slice(&[0, 29, 2, 0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]),
    }
    Bytes::from(b)
}

fn nlri_cost(r: &Route) -> usize {
    1 + usize::from(r.len()).div_ceil(8)
}

/// Splits `routes` greedily so that `base + sum(cost) <= max_len` for each chunk.
fn chunks(routes: &[Route], base: usize, max_len: usize) -> Vec<&[Route]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = base;
    for (i, r) in routes.iter().enumerate() {
        let c = nlri_cost(r);
        if size + c > max_len && i > start {
            out.push(&routes[start..i]);
            start = i;
            size = base;
        }
        size += c;
    }
    if start < routes.len() {
        out.push(&routes[start..]);
    }
    out
}

fn v4_entries(routes: &[Route]) -> Vec<codec::Ipv4NlriEntry> {
    routes
        .iter()
        .filter_map(|r| match r.addr() {
            IpAddr::V4(a) => Some(codec::Ipv4NlriEntry {
                path_id: 0,
                prefix: codec::Ipv4Prefix::new(a, r.len()),
            }),
            IpAddr::V6(_) => None,
        })
        .collect()
}

fn mp_entries(routes: &[Route]) -> Vec<codec::NlriEntry> {
    routes
        .iter()
        .map(|r| codec::NlriEntry {
            path_id: 0,
            prefix: match r.addr() {
                IpAddr::V4(a) => codec::Prefix::V4(codec::Ipv4Prefix::new(a, r.len())),
                IpAddr::V6(a) => codec::Prefix::V6(codec::Ipv6Prefix::new(a, r.len())),
            },
        })
        .collect()
}

fn mp_reach(next_hop: IpAddr, routes: &[Route]) -> codec::PathAttribute {
    codec::PathAttribute::MpReachNlri(Box::new(codec::MpReachNlri {
        afi: codec::Afi::Ipv6,
        safi: codec::Safi::Unicast,
        next_hop,
        link_local_next_hop: None,
        announced: mp_entries(routes),
        flowspec_announced: vec![],
        evpn_announced: vec![],
        bgpls_announced: vec![],
        vpn_announced: vec![],
        labeled_announced: vec![],
        rtc_announced: vec![],
    }))
}

fn mp_unreach(routes: &[Route]) -> codec::PathAttribute {
    codec::PathAttribute::MpUnreachNlri(Box::new(codec::MpUnreachNlri {
        afi: codec::Afi::Ipv6,
        safi: codec::Safi::Unicast,
        withdrawn: mp_entries(routes),
        flowspec_withdrawn: vec![],
        evpn_withdrawn: vec![],
        bgpls_withdrawn: vec![],
        vpn_withdrawn: vec![],
        labeled_withdrawn: vec![],
        rtc_withdrawn: vec![],
    }))
}

/// Path attributes in type-code order; `mp` is inserted at its place (type 14).
fn attributes(a: &Announcement, mp: Option<codec::PathAttribute>) -> Vec<codec::PathAttribute> {
    use codec::PathAttribute as P;
    let mut v = vec![
        P::Origin(codec::Origin::Igp),
        P::AsPath(codec::AsPath {
            segments: if a.as_path.is_empty() {
                vec![]
            } else {
                vec![codec::AsPathSegment::AsSequence(a.as_path.clone())]
            },
        }),
    ];
    if let IpAddr::V4(nh) = a.next_hop {
        v.push(P::NextHop(nh));
    }
    if let Some(med) = a.med {
        v.push(P::Med(med));
    }
    if let Some(lp) = a.local_pref {
        v.push(P::LocalPref(lp));
    }
    if !a.communities.is_empty() {
        v.push(P::Communities(a.communities.iter().map(|c| c.0).collect()));
    }
    if let Some(mp) = mp {
        v.push(mp);
    }
    if !a.large_communities.is_empty() {
        v.push(P::LargeCommunities(
            a.large_communities
                .iter()
                .map(|l| codec::LargeCommunity::new(l.global, l.local1, l.local2))
                .collect(),
        ));
    }
    v
}

fn build_announce(
    routes: &[Route],
    a: &Announcement,
    four_octet_as: bool,
    max_len: usize,
) -> Result<Bytes, EncodeError> {
    let upd = match a.next_hop {
        IpAddr::V4(_) => codec::UpdateMessage::try_build(
            &v4_entries(routes),
            &[],
            &attributes(a, None),
            four_octet_as,
            false,
            codec::Ipv4UnicastMode::Body,
        ),
        IpAddr::V6(_) => codec::UpdateMessage::try_build(
            &[],
            &[],
            &attributes(a, Some(mp_reach(a.next_hop, routes))),
            four_octet_as,
            false,
            codec::Ipv4UnicastMode::Body,
        ),
    }
    .map_err(codec_err)?;
    to_bytes(&codec::Message::Update(upd), max_len)
}

/// UPDATEs announcing `routes` with attributes `a`: plain NLRI when the next hop is IPv4,
/// MP_REACH_NLRI when it is IPv6. Every route must be of the next hop's family.
pub fn announce(
    routes: &[Route],
    a: &Announcement,
    four_octet_as: bool,
    max_len: usize,
) -> Result<Vec<Bytes>, EncodeError> {
    let family = Family::of(a.next_hop);
    if let Some(r) = routes.iter().find(|r| r.family() != family) {
        return Err(EncodeError::NextHopFamily {
            next_hop: a.next_hop,
            family: r.family(),
        });
    }
    if routes.is_empty() {
        return Ok(Vec::new());
    }
    // One byte of slack: MP_REACH switches to a 2-octet attribute length past 255 bytes.
    let base = build_announce(&[], a, four_octet_as, max_len)?.len() + 1;
    chunks(routes, base, max_len)
        .into_iter()
        .map(|c| build_announce(c, a, four_octet_as, max_len))
        .collect()
}

/// UPDATEs withdrawing `routes`: withdrawn-routes field for IPv4, MP_UNREACH_NLRI for IPv6.
pub fn withdraw(routes: &[Route], max_len: usize) -> Result<Vec<Bytes>, EncodeError> {
    let (v4, v6): (Vec<Route>, Vec<Route>) = routes
        .iter()
        .partition(|r| r.family() == Family::Ipv4Unicast);
    let build = |chunk: &[Route], fam: Family| -> Result<Bytes, EncodeError> {
        let upd = match fam {
            Family::Ipv4Unicast => codec::UpdateMessage::try_build(
                &[],
                &v4_entries(chunk),
                &[],
                true,
                false,
                codec::Ipv4UnicastMode::Body,
            ),
            Family::Ipv6Unicast => codec::UpdateMessage::try_build(
                &[],
                &[],
                &[mp_unreach(chunk)],
                true,
                false,
                codec::Ipv4UnicastMode::Body,
            ),
        }
        .map_err(codec_err)?;
        to_bytes(&codec::Message::Update(upd), max_len)
    };
    let mut out = Vec::new();
    for (set, fam) in [(v4, Family::Ipv4Unicast), (v6, Family::Ipv6Unicast)] {
        if set.is_empty() {
            continue;
        }
        let base = build(&[], fam)?.len() + 1;
        for c in chunks(&set, base, max_len) {
            out.push(build(c, fam)?);
        }
    }
    Ok(out)
}
