//! Helpers shared by the integration tests: reading addresses and neighbours back with `ip -j`,
//! exactly as an operator would see them.

#![allow(dead_code)]

use std::net::IpAddr;
use std::time::Duration;

use cpvip_lab::netns::{Netns, wait_until};
use serde_json::Value;

/// The `addr_info` entries of `dev` in `ns`.
pub fn addr_info(ns: &Netns, dev: &str) -> Vec<Value> {
    let out = ns
        .exec(&["ip", "-j", "addr", "show", "dev", dev])
        .expect("ip -j addr show");
    let links: Vec<Value> = serde_json::from_str(&out).expect("ip -j output is JSON");
    links
        .first()
        .and_then(|l| l["addr_info"].as_array().cloned())
        .unwrap_or_default()
}

/// The `addr_info` entry for `ip` on `dev`, if present.
pub fn find_addr(ns: &Netns, dev: &str, ip: IpAddr) -> Option<Value> {
    addr_info(ns, dev)
        .into_iter()
        .find(|a| a["local"].as_str().and_then(|s| s.parse::<IpAddr>().ok()) == Some(ip))
}

/// Waits (generously) until `ip` is on `dev`.
pub fn wait_present(ns: &Netns, dev: &str, ip: IpAddr) -> bool {
    wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
        find_addr(ns, dev, ip).is_some()
    })
}

/// Parses an address literal.
pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// The MAC of `dev` in `ns`.
pub fn mac_of(ns: &Netns, dev: &str) -> [u8; 6] {
    let out = ns
        .exec(&["ip", "-j", "link", "show", "dev", dev])
        .expect("ip -j link show");
    let links: Vec<Value> = serde_json::from_str(&out).expect("ip -j output is JSON");
    parse_mac(links[0]["address"].as_str().expect("link has an address"))
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).expect("hex octet"))
        .collect();
    mac.copy_from_slice(&parts);
    mac
}

/// The MAC the neighbour table of `ns` holds for `ip` on `dev`.
pub fn neigh_mac(ns: &Netns, dev: &str, ip: IpAddr) -> Option<[u8; 6]> {
    let out = ns
        .exec(&["ip", "-j", "neigh", "show", "dev", dev])
        .expect("ip -j neigh show");
    let entries: Vec<Value> = serde_json::from_str(&out).expect("ip -j output is JSON");
    entries
        .iter()
        .find(|e| e["dst"].as_str().and_then(|s| s.parse::<IpAddr>().ok()) == Some(ip))
        .and_then(|e| e["lladdr"].as_str().map(parse_mac))
}
