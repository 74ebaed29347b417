//! cpvip-bgp: the embedded BGP speaker and BFD.
//!
//! Owns: the BGP message facade over the codec crate (`wire`), the RFC 4271 session state machine
//! (pure, no I/O), the tokio driver with its sockets and timers (TCP MD5, GTSM, multihop TTL), and
//! BFD (RFC 5880/5881 asynchronous single-hop). It announces a set of local routes to its peers and
//! validates, counts and drops whatever they send.
//!
//! Does not own: anything about Kubernetes, VIP addresses on the host, or when to announce. The
//! caller decides the announced set; this crate carries it to every peer.

pub mod bfd;
