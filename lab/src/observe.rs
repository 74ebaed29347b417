//! What the lab observes, as an operator would: the router's forwarding table and sessions, what
//! the client gets from the VIP, and the logs to show when something did not happen in time.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::netns::{LabError, Result, wait_until};
use crate::topology::{Lab, Router};

impl Lab {
    /// The nodes the router's kernel currently forwards `vip` to (names, sorted).
    pub fn router_next_hops(&self, vip: IpAddr) -> Vec<String> {
        let family = if vip.is_ipv4() { "-4" } else { "-6" };
        let Ok(out) = self
            .rtr
            .exec(&["ip", family, "-j", "route", "show", &vip.to_string()])
        else {
            return Vec::new();
        };
        let mut hops: Vec<String> = self
            .plan
            .nodes
            .iter()
            .filter(|n| {
                let addr = if vip.is_ipv4() {
                    n.v4.to_string()
                } else {
                    n.v6.to_string()
                };
                out.contains(&format!("\"gateway\":\"{addr}\""))
            })
            .map(|n| n.name.clone())
            .collect();
        hops.sort();
        hops
    }

    /// Waits until the router forwards `vip` to exactly `expected` nodes (as a predicate on the
    /// sorted names) and returns them.
    pub fn wait_next_hops(
        &self,
        vip: IpAddr,
        timeout: Duration,
        expected: impl Fn(&[String]) -> bool,
    ) -> Result<Vec<String>> {
        let mut last = Vec::new();
        if wait_until(timeout, Duration::from_millis(10), || {
            last = self.router_next_hops(vip);
            expected(&last)
        }) {
            Ok(last)
        } else {
            Err(LabError::Timeout(
                timeout,
                format!(
                    "router next hops for {vip} stayed {last:?}\n{}",
                    self.diagnostics()
                ),
            ))
        }
    }

    /// Number of BGP sessions the router has Established.
    pub fn established_sessions(&self) -> usize {
        match &self.router {
            Some(Router::Bird(b)) => b
                .birdc("show protocols")
                .map(|out| {
                    out.lines()
                        .filter(|l| l.contains("BGP") && l.contains("Established"))
                        .count()
                })
                .unwrap_or(0),
            Some(Router::Frr(f)) => f
                .vtysh(&["show bgp summary json"])
                .map(|out| out.matches("\"state\":\"Established\"").count())
                .unwrap_or(0),
            None => 0,
        }
    }

    /// Runs `curl -sk` from the client against `https://[VIP]:port/path` and returns the body.
    pub fn client_curl(&self, vip: IpAddr, port: u16, path: &str) -> Result<String> {
        let host = match vip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        self.client.exec(&[
            "curl",
            "-sk",
            "--max-time",
            "3",
            &format!("https://{host}:{port}{path}"),
        ])
    }

    /// The tail of every node's cpvip log and the router's state, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        if let Some(Router::Bird(b)) = &self.router {
            out.push_str(&b.birdc("show protocols").unwrap_or_default());
        }
        if let Some(Router::Frr(f)) = &self.router {
            out.push_str(&f.vtysh(&["show bgp summary"]).unwrap_or_default());
        }
        for n in &self.nodes {
            let log = std::fs::read_to_string(n.dir.join("cpvip.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            out.push_str(&format!("--- {} cpvip.log (last lines)\n", n.plan.name));
            for l in tail.iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Waits for all `2 x nodes` BGP sessions to be Established.
    pub fn wait_sessions(&self, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        let want = 2 * self.nodes.len();
        if wait_until(timeout, Duration::from_millis(50), || {
            self.established_sessions() >= want
        }) {
            Ok(start.elapsed())
        } else {
            Err(LabError::Timeout(
                timeout,
                format!("BGP sessions not all up\n{}", self.diagnostics()),
            ))
        }
    }
}
