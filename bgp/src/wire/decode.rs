//! Decoding of received bytes: the length-framed reader and the translation of the codec's
//! messages into ours, with RFC 7606 revised error handling for UPDATEs.
//!
//! Every decode error maps to the NOTIFICATION that RFC 4271 §6 / RFC 7606 require; the caller
//! sends it and closes the session. UPDATEs that RFC 7606 allows to survive come back as an
//! [`UpdateSummary`] with their disposition; their prefixes are counted and dropped here.

use bytes::{Bytes, BytesMut};
use rustbgpd_wire as codec;

use super::types::{
    Capabilities, Family, Message, Notification, Open, RouteRefresh, UpdateDisposition,
    UpdateSummary,
};

/// Session facts that decoding depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeContext {
    /// Both sides advertised the 4-octet AS capability: AS_PATH carries 4-octet ASNs.
    pub four_octet_as: bool,
    /// The peer is in our AS (changes some RFC 7606 dispositions).
    pub ibgp: bool,
    /// Largest acceptable message (4096, or 65535 after RFC 8654 negotiation).
    pub max_len: usize,
}

impl Default for DecodeContext {
    fn default() -> Self {
        Self {
            four_octet_as: false,
            ibgp: false,
            max_len: super::MAX_MESSAGE_LEN,
        }
    }
}

/// Human text for a NOTIFICATION code/subcode.
pub(super) fn describe(code: u8, subcode: u8) -> &'static str {
    codec::notification::description(codec::NotificationCode::from_u8(code), subcode)
}

fn notification_of(e: &codec::DecodeError) -> Notification {
    let (code, subcode, data) = e.to_notification();
    Notification {
        code: code.as_u8(),
        subcode,
        data: data.to_vec(),
    }
}

/// Splits a TCP byte stream into whole BGP messages without trusting the peer's lengths.
#[derive(Debug)]
pub struct FrameReader {
    buf: BytesMut,
    max_len: usize,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameReader {
    /// A reader accepting messages up to 4096 bytes.
    pub fn new() -> Self {
        Self {
            buf: BytesMut::with_capacity(2 * super::MAX_MESSAGE_LEN),
            max_len: super::MAX_MESSAGE_LEN,
        }
    }

    /// Raises (or lowers) the accepted message size, e.g. to 65535 after RFC 8654 negotiation.
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len.min(super::EXTENDED_MAX_MESSAGE_LEN);
    }

    /// The buffer to read into (e.g. with `AsyncReadExt::read_buf`), with room reserved.
    pub fn buffer(&mut self) -> &mut BytesMut {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8192);
        }
        &mut self.buf
    }

    /// Appends received bytes (for callers that do not read into [`Self::buffer`]).
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, `None` if more bytes are needed, or the NOTIFICATION to send
    /// when the header is bad (marker, length, type).
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, Notification> {
        let limit = u16::try_from(self.max_len).unwrap_or(u16::MAX);
        match codec::peek_message_length(&self.buf, limit) {
            Ok(None) => Ok(None),
            Ok(Some(len)) if self.buf.len() >= usize::from(len) => {
                Ok(Some(self.buf.split_to(usize::from(len)).freeze()))
            }
            Ok(Some(_)) => Ok(None),
            Err(e) => Err(notification_of(&e)),
        }
    }
}

/// Decodes one whole message (as returned by [`FrameReader::next_frame`]).
pub fn decode_message(mut frame: Bytes, ctx: &DecodeContext) -> Result<Message, Notification> {
    let limit = u16::try_from(ctx.max_len).unwrap_or(u16::MAX);
    let msg = codec::decode_message(&mut frame, limit).map_err(|e| notification_of(&e))?;
    Ok(match msg {
        codec::Message::Open(o) => Message::Open(open_of(o)),
        codec::Message::Update(u) => Message::Update(summarize(&u, ctx)?),
        codec::Message::Notification(n) => Message::Notification(Notification {
            code: n.code.as_u8(),
            subcode: n.subcode,
            data: n.data.to_vec(),
        }),
        codec::Message::Keepalive => Message::Keepalive,
        codec::Message::RouteRefresh(r) => Message::RouteRefresh(RouteRefresh {
            afi: r.afi_raw,
            safi: r.safi_raw,
        }),
        // The codec's Message is non-exhaustive; a type it learns later is one we do not speak.
        _ => return Err(Notification::new(Notification::HEADER, 3)),
    })
}

fn open_of(o: codec::OpenMessage) -> Open {
    let mut caps = Capabilities::default();
    for c in o.capabilities {
        match c {
            codec::Capability::MultiProtocol { afi, safi } => {
                caps.any_multiprotocol = true;
                match (afi, safi) {
                    (codec::Afi::Ipv4, codec::Safi::Unicast) => caps.ipv4_unicast = true,
                    (codec::Afi::Ipv6, codec::Safi::Unicast) => caps.ipv6_unicast = true,
                    _ => {}
                }
            }
            codec::Capability::RouteRefresh => caps.route_refresh = true,
            codec::Capability::ExtendedMessage => caps.extended_message = true,
            codec::Capability::FourOctetAs { asn } => caps.four_octet_as = Some(asn),
            codec::Capability::GracefulRestart { .. } => caps.graceful_restart = true,
            codec::Capability::Unknown { code, .. } => {
                // The codec keeps a multiprotocol capability of a family it does not know as
                // Unknown(1): it still means the peer does multiprotocol negotiation.
                if code == 1 {
                    caps.any_multiprotocol = true;
                }
                caps.other.push(code);
            }
            other => caps.other.push(other.code()),
        }
    }
    Open {
        my_as: o.my_as,
        hold_time: o.hold_time,
        router_id: o.bgp_identifier,
        capabilities: caps,
    }
}

fn summarize(u: &codec::UpdateMessage, ctx: &DecodeContext) -> Result<UpdateSummary, Notification> {
    if u.withdrawn_routes.is_empty() && u.path_attributes.is_empty() && u.nlri.is_empty() {
        return Ok(UpdateSummary {
            announced: 0,
            withdrawn: 0,
            end_of_rib: Some(Family::Ipv4Unicast),
            disposition: UpdateDisposition::Clean,
        });
    }
    let parsed = u
        .parse_revised_observed_with_error_context(ctx.four_octet_as, ctx.ibgp, false, &[])
        .map_err(|e| notification_of(&e.error))?
        .0;
    let mut disposition = UpdateDisposition::Clean;
    for m in &parsed.malformed {
        match m.disposition {
            codec::ErrorDisposition::SessionReset => return Err(notification_of(&m.error)),
            codec::ErrorDisposition::TreatAsWithdraw => {
                let (_, subcode, _) = m.error.to_notification();
                disposition = disposition.max(UpdateDisposition::TreatAsWithdraw { subcode });
            }
            codec::ErrorDisposition::AttributeDiscard => {
                disposition = disposition.max(UpdateDisposition::AttributeDiscard);
            }
        }
    }
    let attrs = &parsed.update.attributes;
    let (mut announced, mut withdrawn) =
        (parsed.update.announced.len(), parsed.update.withdrawn.len());
    let mut mp_unreach_families = Vec::new();
    let mut mp_reach_nlri = false;
    for a in attrs {
        match a {
            codec::PathAttribute::MpReachNlri(mp) => {
                announced += mp.announced.len();
                mp_reach_nlri |= !mp.announced.is_empty();
            }
            codec::PathAttribute::MpUnreachNlri(mp) => {
                withdrawn += mp.withdrawn.len();
                mp_unreach_families.push((mp.afi, mp.safi, mp.withdrawn.is_empty()));
            }
            _ => {}
        }
    }
    let has_body_nlri = !parsed.update.announced.is_empty();
    if !matches!(disposition, UpdateDisposition::TreatAsWithdraw { .. })
        && let Err(e) = codec::validate::validate_update_attributes(
            attrs,
            has_body_nlri || mp_reach_nlri,
            has_body_nlri,
            !ctx.ibgp,
        )
    {
        match e.disposition {
            codec::ErrorDisposition::SessionReset => {
                return Err(Notification {
                    code: Notification::UPDATE,
                    subcode: e.subcode,
                    data: e.data,
                });
            }
            codec::ErrorDisposition::TreatAsWithdraw => {
                disposition = UpdateDisposition::TreatAsWithdraw { subcode: e.subcode };
            }
            codec::ErrorDisposition::AttributeDiscard => {
                disposition = disposition.max(UpdateDisposition::AttributeDiscard);
            }
        }
    }
    let end_of_rib = match (attrs.as_slice(), mp_unreach_families.as_slice()) {
        ([_], [(codec::Afi::Ipv6, codec::Safi::Unicast, true)]) if u.nlri.is_empty() => {
            Some(Family::Ipv6Unicast)
        }
        ([_], [(codec::Afi::Ipv4, codec::Safi::Unicast, true)]) if u.nlri.is_empty() => {
            Some(Family::Ipv4Unicast)
        }
        _ => None,
    };
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(UpdateSummary {
        announced: count(announced),
        withdrawn: count(withdrawn),
        end_of_rib,
        disposition,
    })
}
