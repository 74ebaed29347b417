//! Router configurations the lab runs, rendered from the lab's addressing plan. The same texts are
//! shipped as examples in `manifests/` (a test keeps them in sync), so the examples are tested.

use std::fmt::Write;

use crate::plan::Plan;

/// Router-side session options beyond the addressing plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterOptions<'a> {
    /// BFD 100 ms x 3 on every session.
    pub bfd: bool,
    /// TCP-MD5 password (RFC 2385) on every session; the nodes need `password=` in `--bgp-peer`.
    /// One word without quotes: BIRD strings have no escapes, FRR takes one word.
    pub password: Option<&'a str>,
}

/// BIRD 2 router: one eBGP session per node and address family, VIP host routes only, ECMP into
/// the kernel, optional BFD 100 ms x 3.
pub fn bird(plan: &Plan, bfd: bool) -> String {
    bird_with(
        plan,
        &RouterOptions {
            bfd,
            password: None,
        },
    )
}

/// [`bird`] with every option: BFD and TCP-MD5.
pub fn bird_with(plan: &Plan, options: &RouterOptions<'_>) -> String {
    let bfd = options.bfd;
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# cpvip lab router (BIRD 2): AS {} peering with every control-plane node.",
        plan.router_asn
    );
    let _ = writeln!(
        c,
        "log stderr {{ info, remote, warning, error, auth, fatal, bug }};"
    );
    let _ = writeln!(c, "router id {};", plan.router_v4);
    let _ = writeln!(c, "protocol device {{ scan time 10; }}");
    for af in ["ipv4", "ipv6"] {
        // merge paths: one ECMP kernel route when several nodes announce (anycast mode).
        let _ = writeln!(
            c,
            "protocol kernel kernel_{af} {{ {af} {{ import none; export where source = RTS_BGP; }}; merge paths yes; }}"
        );
    }
    if bfd {
        let _ = writeln!(
            c,
            "protocol bfd {{ interface \"{}\" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }}; }}",
            plan.router_segment_if
        );
    }
    // Accept only host routes inside the VIP ranges: a node can never inject anything else.
    let _ = writeln!(
        c,
        "filter vip_v4 {{ if net ~ [ {}{{32,32}} ] then accept; reject; }}",
        plan.vip_range_v4
    );
    let _ = writeln!(
        c,
        "filter vip_v6 {{ if net ~ [ {}{{128,128}} ] then accept; reject; }}",
        plan.vip_range_v6
    );
    for (af, local, filter) in [
        ("ipv4", plan.router_v4.to_string(), "vip_v4"),
        ("ipv6", plan.router_v6.to_string(), "vip_v6"),
    ] {
        let _ = writeln!(c, "template bgp node_{af} {{");
        let _ = writeln!(c, "  local {local} as {};", plan.router_asn);
        let _ = writeln!(
            c,
            "  hold time {}; keepalive time {};",
            plan.hold_secs,
            (plan.hold_secs / 3).max(1)
        );
        let _ = writeln!(c, "  connect retry time 1; error wait time 1, 2;");
        let _ = writeln!(
            c,
            "  {af} {{ import filter {filter}; export none; import limit 100 action restart; }};"
        );
        if bfd {
            let _ = writeln!(c, "  bfd on;");
        }
        if let Some(password) = options.password {
            let _ = writeln!(c, "  password \"{password}\";");
        }
        let _ = writeln!(c, "}}");
    }
    for node in &plan.nodes {
        let _ = writeln!(
            c,
            "protocol bgp {}_v4 from node_ipv4 {{ neighbor {} as {}; }}",
            node.name, node.v4, plan.node_asn
        );
        let _ = writeln!(
            c,
            "protocol bgp {}_v6 from node_ipv6 {{ neighbor {} as {}; }}",
            node.name, node.v6, plan.node_asn
        );
    }
    c
}

/// FRR router: zebra + bgpd (+ bfdd), the same policy as the BIRD router.
pub fn frr_bgpd(plan: &Plan, bfd: bool) -> String {
    frr_bgpd_with(
        plan,
        &RouterOptions {
            bfd,
            password: None,
        },
    )
}

/// [`frr_bgpd`] with every option: BFD and TCP-MD5 (FRR takes the password as one word).
pub fn frr_bgpd_with(plan: &Plan, options: &RouterOptions<'_>) -> String {
    let bfd = options.bfd;
    let mut c = String::new();
    let _ = writeln!(
        c,
        "! cpvip lab router (FRR): AS {} peering with every control-plane node.",
        plan.router_asn
    );
    let _ = writeln!(c, "hostname lab-router");
    let _ = writeln!(
        c,
        "ip prefix-list VIP4 seq 10 permit {} ge 32 le 32",
        plan.vip_range_v4
    );
    let _ = writeln!(
        c,
        "ipv6 prefix-list VIP6 seq 10 permit {} ge 128 le 128",
        plan.vip_range_v6
    );
    let _ = writeln!(
        c,
        "route-map VIPS4 permit 10\n match ip address prefix-list VIP4\n!"
    );
    let _ = writeln!(
        c,
        "route-map VIPS6 permit 10\n match ipv6 address prefix-list VIP6\n!"
    );
    let _ = writeln!(c, "router bgp {}", plan.router_asn);
    let _ = writeln!(c, " bgp router-id {}", plan.router_v4);
    let _ = writeln!(c, " no bgp ebgp-requires-policy");
    let _ = writeln!(c, " bgp bestpath as-path multipath-relax");
    let _ = writeln!(
        c,
        " timers bgp {} {}",
        (plan.hold_secs / 3).max(1),
        plan.hold_secs
    );
    for node in &plan.nodes {
        for addr in [node.v4.to_string(), node.v6.to_string()] {
            let _ = writeln!(c, " neighbor {addr} remote-as {}", plan.node_asn);
            let _ = writeln!(c, " neighbor {addr} timers connect 1");
            if bfd {
                let _ = writeln!(c, " neighbor {addr} bfd");
            }
            if let Some(password) = options.password {
                let _ = writeln!(c, " neighbor {addr} password {password}");
            }
        }
    }
    for (af, list, rmap, v6) in [
        ("ipv4", "VIPS4", "VIPS4", false),
        ("ipv6", "VIPS6", "VIPS6", true),
    ] {
        let _ = list;
        let _ = writeln!(c, " address-family {af} unicast");
        let _ = writeln!(c, "  maximum-paths 8");
        for node in &plan.nodes {
            let addr = if v6 {
                node.v6.to_string()
            } else {
                node.v4.to_string()
            };
            let _ = writeln!(c, "  neighbor {addr} activate");
            let _ = writeln!(c, "  neighbor {addr} route-map {rmap} in");
            let _ = writeln!(c, "  neighbor {addr} maximum-prefix 100");
        }
        let _ = writeln!(c, " exit-address-family");
    }
    c
}

/// FRR bfdd configuration: BFD 100 ms x 3 towards every node.
pub fn frr_bfdd(plan: &Plan) -> String {
    let mut c = String::from("bfd\n");
    for node in &plan.nodes {
        for addr in [node.v4.to_string(), node.v6.to_string()] {
            let _ = writeln!(
                c,
                " peer {addr}\n  receive-interval 100\n  transmit-interval 100\n  detect-multiplier 3\n !"
            );
        }
    }
    c
}
