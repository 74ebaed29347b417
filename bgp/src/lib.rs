//! cpvip-bgp: the embedded BGP speaker and BFD.
//!
//! Owns: the BGP message facade over the codec crate (`wire`), the RFC 4271 session state machine
//! (pure, no I/O), the tokio driver with its sockets and timers (TCP MD5, GTSM, multihop TTL), and
//! BFD (RFC 5880/5881 asynchronous single-hop). It announces a set of local routes to its peers and
//! validates, counts and drops whatever they send.
//!
//! Does not own: anything about Kubernetes, VIP addresses on the host, or when to announce. The
//! caller decides the announced set; this crate carries it to every peer.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod bfd;
mod jitter;
mod peer;
pub mod session;
pub mod sockopt;
mod speaker;
mod transport;
pub mod wire;

pub use session::{DownReason, Negotiated, State};
pub use speaker::{
    AttributeConfig, PeerConfig, PeerDownSender, PeerStatus, Speaker, SpeakerConfig, SpeakerError,
    SpeakerHandle,
};
pub use wire::{Community, LargeCommunity, Route};
