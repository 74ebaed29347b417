//! Takeover announcements: gratuitous ARP (request and reply form) for IPv4 VIPs and unsolicited
//! neighbour advertisements to ff02::1 for IPv6 VIPs, so that hosts and routers on the segment
//! replace a cached MAC at once instead of waiting for their neighbour entry to expire.
//!
//! A no-op on interfaces without ARP/ND (loopback, IFF_NOARP, no Ethernet MAC): a VIP on `lo`
//! is reached through routing (BGP), not through the link layer.

use std::net::{IpAddr, Ipv6Addr, SocketAddrV6};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::{Error, socket_error};
use crate::frames::{self, ETHERTYPE_ARP, GarpKind};
use crate::link::LinkInfo;
use crate::sys::PacketSocket;

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// How often and how far apart announcements are repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceConfig {
    /// Rounds to send (each round: GARP request + reply per IPv4 VIP, one NA per IPv6 VIP).
    pub count: u32,
    /// Pause between rounds.
    pub interval: Duration,
}

impl Default for AnnounceConfig {
    fn default() -> Self {
        AnnounceConfig {
            count: 3,
            interval: Duration::from_millis(200),
        }
    }
}

/// What one [`Announcer::announce`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceReport {
    /// Gratuitous ARP frames sent (requests and replies).
    pub garp_sent: u32,
    /// Unsolicited neighbour advertisements sent.
    pub na_sent: u32,
    /// Sends that failed (each logged as a warning), e.g. ENETDOWN while the link is down.
    pub failed: u32,
    /// Set when nothing was sent on purpose, with the reason (loopback, NOARP, no MAC).
    pub skipped: Option<&'static str>,
}

/// Sends takeover announcements for a set of VIPs on one interface.
#[derive(Debug, Clone)]
pub struct Announcer {
    link: LinkInfo,
    vips: Vec<IpAddr>,
    config: AnnounceConfig,
}

impl Announcer {
    /// An announcer for `vips` on `link` (see [`crate::VipManager::announcer`]).
    pub fn new(link: LinkInfo, vips: Vec<IpAddr>, config: AnnounceConfig) -> Self {
        Announcer { link, vips, config }
    }

    /// The interface announcements go out on.
    pub fn link(&self) -> &LinkInfo {
        &self.link
    }

    /// Sends `count` rounds `interval` apart. Call after the VIPs are bound (the NA socket binds
    /// to the VIP as its source address). Fails only when the sockets cannot be set up (e.g.
    /// missing CAP_NET_RAW); individual send failures are counted and logged.
    pub async fn announce(&self) -> Result<AnnounceReport, Error> {
        let mut report = AnnounceReport::default();
        let mac = match self.link.mac {
            _ if self.link.loopback => None,
            _ if self.link.noarp => None,
            mac => mac,
        };
        let Some(mac) = mac else {
            let reason = if self.link.loopback {
                "loopback interface"
            } else if self.link.noarp {
                "interface has NOARP"
            } else {
                "interface has no Ethernet address"
            };
            tracing::debug!(interface = %self.link.name, reason, "no announcements");
            report.skipped = Some(reason);
            return Ok(report);
        };

        let v4: Vec<_> = self
            .vips
            .iter()
            .filter_map(|v| match v {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect();
        let arp = if v4.is_empty() {
            None
        } else {
            Some(
                PacketSocket::open(self.link.index, ETHERTYPE_ARP).map_err(|e| {
                    socket_error(
                        e,
                        format!(
                            "open an AF_PACKET socket for gratuitous ARP on {}",
                            self.link.name
                        ),
                    )
                })?,
            )
        };
        let mut na_sockets = Vec::new();
        for vip in &self.vips {
            if let IpAddr::V6(a) = vip {
                na_sockets.push((*a, self.na_socket(*a)?));
            }
        }
        let dest = SockAddr::from(SocketAddrV6::new(ALL_NODES, 0, 0, self.link.index));

        for round in 0..self.config.count {
            if round > 0 {
                tokio::time::sleep(self.config.interval).await;
            }
            if let Some(arp) = &arp {
                for ip in &v4 {
                    for kind in [GarpKind::Request, GarpKind::Reply] {
                        match arp.send(&frames::garp_frame(mac, *ip, kind), BROADCAST_MAC) {
                            Ok(()) => report.garp_sent += 1,
                            Err(e) => self.send_failed(&mut report, IpAddr::V4(*ip), &e),
                        }
                    }
                }
            }
            for (ip, sock) in &na_sockets {
                match sock.send_to(&frames::unsolicited_na(mac, *ip), &dest) {
                    Ok(_) => report.na_sent += 1,
                    Err(e) => self.send_failed(&mut report, IpAddr::V6(*ip), &e),
                }
            }
        }
        tracing::debug!(interface = %self.link.name, ?report, "announced VIPs");
        Ok(report)
    }

    fn na_socket(&self, vip: Ipv6Addr) -> Result<Socket, Error> {
        let action = |what: &str| format!("{what} for neighbour advertisements of {vip}");
        let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .map_err(|e| socket_error(e, action("open a raw ICMPv6 socket")))?;
        // RFC 4861 §7.1.2: receivers drop an NA whose hop limit is not 255.
        sock.set_multicast_hops_v6(255)
            .and_then(|()| sock.set_unicast_hops_v6(255))
            .and_then(|()| sock.set_multicast_if_v6(self.link.index))
            .and_then(|()| sock.set_multicast_loop_v6(false))
            .map_err(|e| socket_error(e, action("configure the ICMPv6 socket")))?;
        sock.bind(&SockAddr::from(SocketAddrV6::new(vip, 0, 0, 0)))
            .map_err(|e| socket_error(e, action("bind the ICMPv6 socket to the VIP")))?;
        Ok(sock)
    }

    fn send_failed(&self, report: &mut AnnounceReport, vip: IpAddr, e: &std::io::Error) {
        report.failed += 1;
        tracing::warn!(%vip, interface = %self.link.name, error = %e, "announcement not sent");
    }
}
