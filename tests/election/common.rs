//! Helpers shared by the election tests: a Lease test server per test, contenders in-process or
//! as child processes (this test binary re-executed), waiting, and safety checks.

// Shared by several test crates; each uses a subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cpvip::election::{ElectionConfig, ElectionHandle, LeaseElection};
use cpvip_lab::lease_server::{LeaseServer, LeaseServerConfig, WriteRecord};

pub const NS: &str = "kube-system";
pub const NAME: &str = "cpvip";
pub const LEASE: Duration = Duration::from_secs(2);
pub const RENEW: Duration = Duration::from_millis(1500);
pub const RETRY: Duration = Duration::from_millis(500);

/// A per-test directory under /tmp, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("cpvip-election-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Lease test server on 127.0.0.1 (random port) with its files in a temp dir.
pub async fn server(tag: &str) -> (LeaseServer, TempDir) {
    let dir = TempDir::new(tag);
    let server = LeaseServer::start(LeaseServerConfig::loopback(&dir.0))
        .await
        .expect("start the Lease test server");
    (server, dir)
}

pub fn config(identity: &str, kubeconfig: &Path) -> ElectionConfig {
    ElectionConfig {
        lease_name: NAME.into(),
        namespace: NS.into(),
        identity: identity.into(),
        lease_duration: LEASE,
        renew_deadline: RENEW,
        retry_period: RETRY,
        kubeconfig: kubeconfig.to_path_buf(),
        wall_clock_skew_ms: 0,
    }
}

pub fn start(cfg: ElectionConfig) -> ElectionHandle {
    LeaseElection::start(cfg).expect("valid election config")
}

/// Polls `f` every 10 ms until it returns Some, or panics after `max`.
pub async fn wait_for<T>(what: &str, max: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + max;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {max:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The current holder as the server stores it.
pub fn holder(server: &LeaseServer) -> Option<String> {
    server
        .lease(NS, NAME)
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

/// Writes to our Lease, in commit order.
pub fn writes(server: &LeaseServer) -> Vec<WriteRecord> {
    server
        .writes()
        .into_iter()
        .filter(|w| w.namespace == NS && w.name == NAME)
        .collect()
}

/// Handles currently leading.
pub fn leaders(handles: &[&ElectionHandle]) -> Vec<String> {
    handles
        .iter()
        .filter(|h| *h.leader.borrow())
        .map(|h| h.identity().to_string())
        .collect()
}

/// Leadership intervals of every handle never overlap (from their timestamped changes).
pub fn assert_never_two_leaders(handles: &[&ElectionHandle]) {
    let end = Instant::now();
    let mut intervals: Vec<(Instant, Instant, String)> = Vec::new();
    for h in handles {
        let mut since = None;
        for c in h.leader_changes() {
            match (c.leader, since) {
                (true, None) => since = Some(c.at),
                (false, Some(s)) => {
                    intervals.push((s, c.at, h.identity().to_string()));
                    since = None;
                }
                _ => {}
            }
        }
        if let Some(s) = since {
            intervals.push((s, end, h.identity().to_string()));
        }
    }
    intervals.sort_by_key(|i| i.0);
    for pair in intervals.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "two leaders at once: {} until {:?}, {} from {:?}",
            pair[0].2,
            pair[0].1,
            pair[1].2,
            pair[1].0
        );
    }
}

/// A contender running as a child process (this test binary, `contender_process` test).
pub struct ChildContender {
    pub identity: String,
    pub child: Child,
}

impl ChildContender {
    pub fn spawn(identity: &str, kubeconfig: &Path, timing_ms: [u64; 3]) -> Self {
        let exe = std::env::current_exe().expect("test binary path");
        let child = Command::new(exe)
            .args([
                "--exact",
                "contender_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CPVIP_TEST_CONTENDER", identity)
            .env("CPVIP_TEST_KUBECONFIG", kubeconfig)
            .env(
                "CPVIP_TEST_TIMING_MS",
                format!("{},{},{}", timing_ms[0], timing_ms[1], timing_ms[2]),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn contender process");
        Self {
            identity: identity.to_string(),
            child,
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    /// Sends SIGTERM by PID (SIGKILL is `child.kill()`).
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -TERM {}", self.pid());
    }
}

impl Drop for ChildContender {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
