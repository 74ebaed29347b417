//! BGP message facade: our own small types, and the only module that touches the codec crate
//! (`rustbgpd-wire`, pinned), so that the codec can be swapped without touching the FSM or the
//! driver.
//!
//! Owns: [`Route`] and the attributes we announce ([`Announcement`]), OPEN parameters
//! ([`Open`], [`Capabilities`]), [`Notification`], encoding of every message we send
//! ([`encode`]), the length-framed reader and the decoding of every message we receive into
//! [`Message`], with the RFC 7606 disposition of each UPDATE ([`UpdateSummary`]).
//!
//! Does not own: what to send when (the session FSM) or sockets (the driver).
//!
//! Every BGP message starts with this header (RFC 4271 §4.1):
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           Marker (16 x 0xff)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

mod decode;
pub mod encode;
mod types;

#[cfg(test)]
mod tests;

pub use decode::{DecodeContext, FrameReader, decode_message};
pub use types::*;

/// Largest message before RFC 8654 extended messages are negotiated.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest message once both sides advertised the extended message capability.
pub const EXTENDED_MAX_MESSAGE_LEN: usize = 65535;
/// The 2-octet stand-in for a 4-octet ASN in OPEN's My Autonomous System (RFC 6793).
pub const AS_TRANS: u16 = 23456;
