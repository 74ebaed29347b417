//! cpvip-netlink: the VIP on the host.
//!
//! Owns: binding and unbinding VIP addresses (IPv4 /32, IPv6 /128) on one interface through
//! rtnetlink, watching the kernel so that a bound VIP that disappears is restored, cleaning up what
//! a previous run left, and announcing a takeover with gratuitous ARP / unsolicited neighbour
//! advertisements.
//!
//! Does not own: when to bind (the daemon decides), routing protocols, or Kubernetes.
