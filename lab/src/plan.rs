//! The lab's addressing plan: ASNs, the segment, the VIPs, the client and each node's addresses.
//! Pure data, shared by the topology that builds the lab and the router configuration renderers.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The addressing plan (pure data, shared with the router configuration renderers).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Router's ASN.
    pub router_asn: u32,
    /// Nodes' ASN.
    pub node_asn: u32,
    /// Router's segment addresses.
    pub router_v4: Ipv4Addr,
    /// Router's segment IPv6 address.
    pub router_v6: Ipv6Addr,
    /// Router's interface on the segment.
    pub router_segment_if: String,
    /// Lease server address.
    pub lease_server: Ipv4Addr,
    /// The VIPs.
    pub vip_v4: Ipv4Addr,
    /// IPv6 VIP.
    pub vip_v6: Ipv6Addr,
    /// Ranges the router accepts host routes from.
    pub vip_range_v4: String,
    /// IPv6 range the router accepts.
    pub vip_range_v6: String,
    /// Client address.
    pub client_v4: Ipv4Addr,
    /// Client IPv6 address.
    pub client_v6: Ipv6Addr,
    /// BGP hold time.
    pub hold_secs: u16,
    /// The nodes.
    pub nodes: Vec<NodePlan>,
}

/// One node's name and addresses.
#[derive(Debug, Clone)]
pub struct NodePlan {
    /// `n1`, `n2`...
    pub name: String,
    /// Segment address.
    pub v4: Ipv4Addr,
    /// Segment IPv6 address.
    pub v6: Ipv6Addr,
}

impl Plan {
    /// The plan for `nodes` nodes.
    pub fn new(nodes: usize, hold_secs: u16) -> Self {
        let nodes = (1..=nodes.clamp(1, 9))
            .map(|i| NodePlan {
                name: format!("n{i}"),
                v4: Ipv4Addr::new(10, 99, 0, 10 + i as u8),
                v6: format!("fd99::{}", 10 + i)
                    .parse()
                    .unwrap_or(Ipv6Addr::LOCALHOST),
            })
            .collect();
        Self {
            router_asn: 65000,
            node_asn: 65001,
            router_v4: Ipv4Addr::new(10, 99, 0, 1),
            router_v6: "fd99::1".parse().unwrap_or(Ipv6Addr::LOCALHOST),
            router_segment_if: "eth0".into(),
            lease_server: Ipv4Addr::new(10, 99, 0, 2),
            vip_v4: Ipv4Addr::new(10, 99, 200, 1),
            vip_v6: "fd99:200::1".parse().unwrap_or(Ipv6Addr::LOCALHOST),
            vip_range_v4: "10.99.200.0/24".into(),
            vip_range_v6: "fd99:200::/64".into(),
            client_v4: Ipv4Addr::new(10, 98, 0, 2),
            client_v6: "fd98::2".parse().unwrap_or(Ipv6Addr::LOCALHOST),
            hold_secs,
            nodes,
        }
    }
}
