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
//!
//! How the daemon uses it (start serving: bind, announce, then BGP; stop: BGP withdraw, then
//! unbind):
//!
//! ```no_run
//! # async fn daemon() -> Result<(), cpvip_netlink::Error> {
//! use cpvip_netlink::{AnnounceConfig, VipManager};
//! let vips = ["192.0.2.10".parse().unwrap(), "2001:db8::10".parse().unwrap()];
//! let manager = VipManager::new("eth0", vips).await?; // Error::UnknownInterface names it
//! let report = manager.cleanup_stale().await?;          // once, before the first bind
//! manager.bind().await?;                                // idempotent
//! manager.announcer(AnnounceConfig::default()).announce().await?; // GARP / NA, no-op on lo
//! let restores = manager.stats().restores;              // for metrics
//! manager.unbind().await?;                              // idempotent
//! manager.shutdown().await;                             // stops the watcher
//! # let _ = (report, restores); Ok(()) }
//! ```
//!
//! On hosts with several interfaces in one subnet, the kernel answers ARP for the VIP on any of
//! them unless `net.ipv4.conf.all.arp_ignore=1` and `arp_announce=2` are set; that is host
//! configuration, not done here.

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

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>(_: &T) {}

    /// The daemon shares the manager across tasks and spawns its futures.
    #[test]
    fn manager_and_its_futures_can_cross_tasks() {
        assert_send_sync::<VipManager>();
        assert_send_sync::<Announcer>();
        assert_send_sync::<Error>();
    }

    #[allow(dead_code)]
    fn futures_are_send(m: &VipManager, a: &Announcer) {
        assert_send(&m.bind());
        assert_send(&m.unbind());
        assert_send(&m.cleanup_stale());
        assert_send(&m.present());
        assert_send(&m.shutdown());
        assert_send(&a.announce());
        assert_send(&VipManager::new("lo", []));
    }
}
