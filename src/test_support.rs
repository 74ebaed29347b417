//! Test-only: a realistic [`StatusReport`] shared by the metrics, HTTP and status tests.

use crate::daemon::Mode;
use crate::health::{CheckSnapshot, CheckState, ProbeResult};
use crate::http::{PeerStatus, StatusReport, VipStatus};

/// A leader serving one VIP, one check up and one down, two peers (one with BFD).
pub fn sample_report() -> StatusReport {
    let vip = "192.0.2.10".parse().expect("literal");
    StatusReport {
        version: "0.1.0".to_string(),
        mode: Mode::Leader,
        node: "cp-1".to_string(),
        phase: "running".to_string(),
        leader: true,
        holder: Some("cp-1".to_string()),
        lease_transitions: 3,
        healthy: Some(true),
        serving: true,
        vips: vec![VipStatus {
            address: vip,
            bound: true,
        }],
        announced: vec![vip],
        checks: vec![
            CheckSnapshot {
                name: "apiserver".to_string(),
                target: "https://127.0.0.1:6443/readyz".to_string(),
                state: CheckState::Up,
                last: Some(ProbeResult {
                    ok: true,
                    detail: "200 OK".to_string(),
                    latency_ms: 3,
                }),
                consecutive_ok: 12,
                consecutive_fail: 0,
            },
            CheckSnapshot {
                name: "supervisor".to_string(),
                target: "https://127.0.0.1:9345/ping".to_string(),
                state: CheckState::Down,
                last: Some(ProbeResult {
                    ok: false,
                    detail: "connect: Connection refused (os error 111)".to_string(),
                    latency_ms: 0,
                }),
                consecutive_ok: 0,
                consecutive_fail: 4,
            },
        ],
        peers: vec![
            PeerStatus {
                address: "10.0.0.1".to_string(),
                remote_as: 65000,
                state: "Established".to_string(),
                uptime_secs: Some(3723),
                flaps: 1,
                updates_received: 7,
                prefixes_sent: 1,
                prefixes_received: 0,
                bfd: Some("up".to_string()),
                last_error: None,
            },
            PeerStatus {
                address: "10.0.0.2".to_string(),
                remote_as: 4_200_000_001,
                state: "Active".to_string(),
                uptime_secs: None,
                flaps: 0,
                updates_received: 0,
                prefixes_sent: 0,
                prefixes_received: 0,
                bfd: None,
                last_error: Some("connect: Connection refused".to_string()),
            },
        ],
        last_error: None,
    }
}
