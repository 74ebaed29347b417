//! The client's view of the VIP: many flows probing it every few milliseconds, recording which
//! node answered each probe, so that an outage is measured as a client sees it.
//!
//! UDP flows each use their own source port (so ECMP spreads them over nodes) and send a sequence
//! number every interval to the stand-ins' echo port. TCP flows open a new connection per probe to
//! the stand-ins' hello port (a dead node shows as connect time-outs). The probe runs on its own
//! thread inside the client namespace while the caller injects failures.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Mutex;

use crate::netns::{LabError, Netns, Result};

/// What to probe and how often.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// The VIP.
    pub target: IpAddr,
    /// Stand-in UDP echo port.
    pub udp_port: u16,
    /// Stand-in TCP hello port.
    pub tcp_port: u16,
    /// Number of UDP flows.
    pub udp_flows: usize,
    /// Number of TCP flows.
    pub tcp_flows: usize,
    /// Time between two probes of one flow.
    pub interval: Duration,
}

/// One probe: when it was sent and who answered (None: lost).
#[derive(Debug, Clone)]
pub struct Sample {
    /// Flow index (UDP flows first, then TCP).
    pub flow: usize,
    /// When the probe was sent.
    pub sent: Instant,
    /// The answering node, if any answered.
    pub node: Option<String>,
}

/// A running probe; [`Probe::finish`] stops it and returns every sample.
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<Result<Vec<Sample>>>>,
    interval: Duration,
}

impl Probe {
    /// Starts probing from namespace `ns`.
    pub fn start(ns: &Netns, config: ProbeConfig) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let interval = config.interval;
        let thread = ns.spawn_thread(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| LabError::Io("probe runtime".into(), e))?;
            runtime.block_on(run(config, flag))
        })?;
        Ok(Self {
            stop,
            thread,
            interval,
        })
    }

    /// Stops probing and returns the report.
    pub fn finish(self) -> Result<ProbeReport> {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self
            .thread
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))??;
        Ok(ProbeReport {
            samples,
            interval: self.interval,
        })
    }
}

async fn run(config: ProbeConfig, stop: Arc<AtomicBool>) -> Result<Vec<Sample>> {
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let mut sockets = Vec::new();
    for _ in 0..config.udp_flows {
        let bind: SocketAddr = if config.target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .map_err(|e| LabError::Io("bind address".into(), std::io::Error::other(e)))?;
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| LabError::Io("udp bind".into(), e))?;
        socket
            .connect((config.target, config.udp_port))
            .await
            .map_err(|e| LabError::Io("udp connect".into(), e))?;
        sockets.push(Arc::new(socket));
    }
    // Each UDP flow: a receiver task matching replies to the send time of their sequence number.
    let mut pending: Vec<Arc<Mutex<HashMap<u64, Instant>>>> = Vec::new();
    let mut receivers = Vec::new();
    for (flow, socket) in sockets.iter().enumerate() {
        let table = Arc::new(Mutex::new(HashMap::new()));
        pending.push(table.clone());
        let (socket, samples) = (socket.clone(), samples.clone());
        receivers.push(tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok(n) = socket.recv(&mut buf).await {
                let text = String::from_utf8_lossy(&buf[..n]);
                let mut words = text.split_whitespace();
                let (Some(node), Some(seq)) = (
                    words.next(),
                    words.next().and_then(|s| s.parse::<u64>().ok()),
                ) else {
                    continue;
                };
                if let Some(sent) = table.lock().await.remove(&seq) {
                    samples.lock().await.push(Sample {
                        flow,
                        sent,
                        node: Some(node.to_owned()),
                    });
                }
            }
        }));
    }
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seq: u64 = 0;
    let mut tcp_tasks = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let now = Instant::now();
        for (flow, socket) in sockets.iter().enumerate() {
            pending[flow].lock().await.insert(seq, now);
            let _ = socket.send(seq.to_string().as_bytes()).await;
        }
        for t in 0..config.tcp_flows {
            let flow = config.udp_flows + t;
            let (samples, target) = (
                samples.clone(),
                SocketAddr::new(config.target, config.tcp_port),
            );
            tcp_tasks.spawn(async move {
                let node = tokio::time::timeout(Duration::from_secs(1), async {
                    let mut stream = TcpStream::connect(target).await.ok()?;
                    let mut line = String::new();
                    stream.read_to_string(&mut line).await.ok()?;
                    Some(line.trim().to_owned()).filter(|l| !l.is_empty())
                })
                .await
                .ok()
                .flatten();
                samples.lock().await.push(Sample {
                    flow,
                    sent: now,
                    node,
                });
            });
        }
        while tcp_tasks.try_join_next().is_some() {}
        seq += 1;
    }
    // Late answers get one last chance, then every unanswered UDP probe is recorded as lost.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while tcp_tasks.join_next().await.is_some() {}
    for receiver in receivers {
        receiver.abort();
    }
    let mut all = samples.lock().await.clone();
    for (flow, table) in pending.iter().enumerate() {
        all.extend(table.lock().await.values().map(|&sent| Sample {
            flow,
            sent,
            node: None,
        }));
    }
    all.sort_by_key(|s| (s.flow, s.sent));
    Ok(all)
}

/// Every sample of a probe run, with the measures computed from them.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// All probes, sorted by flow then send time.
    pub samples: Vec<Sample>,
    /// The probe interval.
    pub interval: Duration,
}

impl ProbeReport {
    /// The client-visible outage after `t0`: the longest time any flow went without an answered
    /// probe, counted from its last answer at or before the gap to its next answer, less one
    /// interval (so a run with no probe lost reports zero).
    pub fn outage_after(&self, t0: Instant) -> Duration {
        let mut worst = Duration::ZERO;
        let flows: std::collections::BTreeSet<usize> =
            self.samples.iter().map(|s| s.flow).collect();
        for flow in flows {
            let answered: Vec<Instant> = self
                .samples
                .iter()
                .filter(|s| s.flow == flow && s.node.is_some())
                .map(|s| s.sent)
                .collect();
            let lost_after_t0 = self
                .samples
                .iter()
                .any(|s| s.flow == flow && s.node.is_none() && s.sent >= t0);
            if !lost_after_t0 {
                continue;
            }
            for pair in answered.windows(2) {
                if pair[1] >= t0 {
                    worst = worst.max(
                        pair[1]
                            .duration_since(pair[0])
                            .saturating_sub(self.interval),
                    );
                }
            }
            // A flow with no answer at all was out for its whole run.
            if answered.is_empty() {
                let sent = self
                    .samples
                    .iter()
                    .filter(|s| s.flow == flow)
                    .map(|s| s.sent);
                if let (Some(first), Some(last)) = (sent.clone().min(), sent.max()) {
                    worst = worst.max(last.duration_since(first) + self.interval);
                }
                continue;
            }
            // A flow that never recovered: the outage runs to its last probe.
            if let (Some(last_ok), Some(last)) = (
                answered.last(),
                self.samples
                    .iter()
                    .filter(|s| s.flow == flow)
                    .map(|s| s.sent)
                    .max(),
            ) && last > *last_ok
                && last >= t0
            {
                worst = worst.max(last.duration_since(*last_ok));
            }
        }
        worst
    }

    /// Probes lost after `t0`.
    pub fn lost_after(&self, t0: Instant) -> usize {
        self.samples
            .iter()
            .filter(|s| s.sent >= t0 && s.node.is_none())
            .count()
    }

    /// Per flow: (answered, lost), for a quick look at how traffic spread.
    pub fn per_flow(&self) -> Vec<(usize, usize)> {
        let flows = self.samples.iter().map(|s| s.flow + 1).max().unwrap_or(0);
        let mut out = vec![(0, 0); flows];
        for s in &self.samples {
            if s.node.is_some() {
                out[s.flow].0 += 1
            } else {
                out[s.flow].1 += 1
            }
        }
        out
    }

    /// Probes sent in all.
    pub fn sent(&self) -> usize {
        self.samples.len()
    }

    /// The nodes that answered probes sent after `t`, with counts.
    pub fn answered_by_after(&self, t: Instant) -> std::collections::BTreeMap<String, usize> {
        let mut by = std::collections::BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.sent >= t) {
            if let Some(node) = &s.node {
                *by.entry(node.clone()).or_insert(0) += 1;
            }
        }
        by
    }
}
