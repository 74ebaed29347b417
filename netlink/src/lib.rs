//! cpvip-netlink: the VIP on the host.
//!
//! Owns: binding and unbinding VIP addresses (IPv4 /32, IPv6 /128) on one interface through
//! rtnetlink, watching the kernel so that a bound VIP that disappears is restored, cleaning up what
//! a previous run left, and announcing a takeover with gratuitous ARP / unsolicited neighbour
//! advertisements.
//!
//! Does not own: when to bind (the daemon decides), routing protocols, or Kubernetes.
//!
//! Entry point: [`VipManager`] (bind/unbind, restoring watch, start-up clean-up, counters) and
//! [`Announcer`] (gratuitous ARP / unsolicited NA on takeover). All `unsafe` code lives in the
//! private `sys` module.
//!
//! Everything works in the network namespace of the thread that creates the [`VipManager`]: its
//! netlink sockets are opened there.

mod announce;
mod error;
mod frames;
mod link;
mod manager;
mod shared;
mod sys;
mod vip;
mod watch;

pub use announce::{AnnounceConfig, AnnounceReport, Announcer};
pub use error::{Capability, Error};
pub use frames::{GarpKind, garp_frame, unsolicited_na};
pub use link::LinkInfo;
pub use manager::{CleanupReport, VipManager, VipOptions, VipStats};
pub use vip::{LABEL_SUFFIX, label_for};
