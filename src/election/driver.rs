//! The thin tokio driver around the election state machine: gets a client from the kubeconfig,
//! keeps a watch on the Lease (feeding observations in), runs the one request the machine asks
//! for, fires its timers, and publishes leader/holder/status.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use tokio::sync::{mpsc, watch};

use super::lease::{Action, Election, Failure, Input, Request, Timing, Write, build_lease};
use super::{Command, ElectionConfig, LeaderChange, Status, kubeconfig};

/// Where the driver publishes.
pub(super) struct Outputs {
    pub leader: watch::Sender<bool>,
    pub holder: watch::Sender<Option<String>>,
    pub status: Arc<Status>,
}

type Pending = Pin<Box<dyn Future<Output = Input> + Send>>;

/// Server-side length of one watch request.
const WATCH_SECONDS: u32 = 60;

/// Aborts the watch task when the driver ends or is aborted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) async fn run(
    cfg: ElectionConfig,
    out: Outputs,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let timing = cfg.timing();
    let mut eligible = true;
    // Waiting for the kubeconfig must not block a shutdown (nothing is held yet).
    let connect = kubeconfig::connect(&cfg.kubeconfig, timing.retry_period, timing.renew_deadline);
    tokio::pin!(connect);
    let client = loop {
        tokio::select! {
            c = &mut connect => break c,
            cmd = commands.recv() => match cmd {
                Some(Command::SetEligible(e)) => eligible = e,
                Some(Command::Shutdown) | None => return,
            },
        }
    };
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let (watch_tx, mut watched) = mpsc::channel(64);
    let _watch = AbortOnDrop(tokio::spawn(watch_lease(
        api.clone(),
        cfg.lease_name.clone(),
        timing,
        watch_tx,
    )));
    tracing::info!(
        identity = %cfg.identity, lease = %format!("{}/{}", cfg.namespace, cfg.lease_name),
        "leader election started"
    );

    let mut machine = Election::new(cfg.identity.clone(), timing, Instant::now());
    let mut pending: Option<Pending> = None;
    let mut actions = machine.step(Instant::now(), Input::SetEligible(eligible));
    let mut commands_open = true;
    loop {
        for action in actions.drain(..) {
            match action {
                Action::Send(req) => pending = Some(start_request(&api, &cfg, &timing, req)),
                Action::Cancel => pending = None,
                Action::SetLeader(leader, reason) => publish_leader(&out, &cfg, leader, reason),
                Action::SetHolder(h) => {
                    tracing::info!(holder = h.as_deref().unwrap_or("<none>"), "Lease holder");
                    out.holder.send_replace(h);
                }
                Action::Error(e) => record_error(&out, e),
                Action::Finished => {
                    tracing::info!("leader election stopped");
                    return;
                }
            }
        }
        let wake = machine.next_wake(Instant::now());
        let sleep = async {
            match wake {
                Some(w) => tokio::time::sleep_until(w.into()).await,
                None => std::future::pending().await,
            }
        };
        let input = tokio::select! {
            input = async { pending.as_mut().expect("guarded by is_some").await }, if pending.is_some() => {
                pending = None;
                input
            }
            Some(input) = watched.recv() => input,
            cmd = commands.recv(), if commands_open => match cmd {
                Some(Command::SetEligible(e)) => Input::SetEligible(e),
                Some(Command::Shutdown) => Input::Shutdown,
                None => {
                    commands_open = false;
                    Input::Tick
                }
            },
            () = sleep => Input::Tick,
        };
        actions = machine.step(Instant::now(), input);
    }
}

fn publish_leader(out: &Outputs, cfg: &ElectionConfig, leader: bool, reason: String) {
    // Recorded before it is published, so the record never postdates what others can see.
    let at = Instant::now();
    out.status
        .changes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(LeaderChange {
            at,
            leader,
            reason: reason.clone(),
        });
    if out.leader.send_replace(leader) != leader {
        out.status.transitions.fetch_add(1, Ordering::Relaxed);
    }
    if leader {
        tracing::info!(identity = %cfg.identity, %reason, "became leader");
    } else {
        tracing::warn!(identity = %cfg.identity, %reason, "stopped leading");
    }
}

fn record_error(out: &Outputs, e: String) {
    let mut last = out
        .status
        .last_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if last.as_deref() != Some(e.as_str()) {
        tracing::warn!(error = %e, "leader election: Kubernetes API request failed; retrying");
    }
    *last = Some(e);
}

fn wall_now(skew_ms: i64) -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
        .saturating_add(skew_ms.saturating_mul(1000));
    Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn failure(e: kube::Error) -> Failure {
    match &e {
        kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists" => {
            Failure::AlreadyExists
        }
        kube::Error::Api(s) if s.code == 409 => Failure::Conflict,
        kube::Error::Api(s) if s.code == 404 => Failure::NotFound,
        _ => Failure::Other(e.to_string()),
    }
}

fn start_request(api: &Api<Lease>, cfg: &ElectionConfig, timing: &Timing, req: Request) -> Pending {
    let api = api.clone();
    let name = cfg.lease_name.clone();
    match req {
        Request::Get => {
            Box::pin(async move { Input::GetDone(api.get_opt(&name).await.map_err(failure)) })
        }
        Request::Write(write) => {
            let lease = build_lease(
                &write,
                &cfg.identity,
                &cfg.lease_name,
                &cfg.namespace,
                timing,
                wall_now(cfg.wall_clock_skew_ms),
            );
            let pp = PostParams::default();
            Box::pin(async move {
                let result = match write {
                    Write::Create => api.create(&pp, &lease).await,
                    _ => api.replace(&name, &pp, &lease).await,
                };
                Input::WriteDone(result.map_err(failure))
            })
        }
    }
}

/// Keeps a watch on the one Lease (field selector on its name), resuming from the last
/// resourceVersion, and forwards what it sees. Errors back off like requests do.
async fn watch_lease(api: Api<Lease>, name: String, timing: Timing, tx: mpsc::Sender<Input>) {
    let mut rv = "0".to_string();
    let mut failures: u32 = 0;
    // The server ends each watch after WATCH_SECONDS; a stream silent for longer is on a dead
    // connection (peer gone without FIN) and is dropped. The GET safety net covers the gap.
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(WATCH_SECONDS);
    let silent_limit = Duration::from_secs(u64::from(WATCH_SECONDS) + 10);
    loop {
        let started = Instant::now();
        let mut events = 0u64;
        match api.watch(&params, &rv).await {
            Ok(stream) => {
                let mut stream = std::pin::pin!(stream);
                while let Ok(Some(ev)) = tokio::time::timeout(silent_limit, stream.next()).await {
                    let input = match ev {
                        Ok(WatchEvent::Added(l) | WatchEvent::Modified(l)) => {
                            if let Some(v) = &l.metadata.resource_version {
                                rv.clone_from(v);
                            }
                            Input::Watched(l)
                        }
                        Ok(WatchEvent::Deleted(l)) => {
                            if let Some(v) = &l.metadata.resource_version {
                                rv.clone_from(v);
                            }
                            Input::WatchedDeleted(l.metadata.resource_version)
                        }
                        Ok(WatchEvent::Bookmark(b)) => {
                            rv = b.metadata.resource_version;
                            continue;
                        }
                        Ok(WatchEvent::Error(status)) => {
                            if status.code == 410 {
                                // Too old: start over from the current state.
                                rv = "0".to_string();
                            }
                            tracing::debug!(?status, "lease watch error event");
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "lease watch stream ended with an error");
                            break;
                        }
                    };
                    events += 1;
                    failures = 0;
                    if tx.send(input).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "lease watch request failed"),
        }
        // A stream that ended quickly without events is a failure, not a normal timeout.
        if events == 0 && started.elapsed() < Duration::from_secs(1) {
            failures += 1;
            let factor = 1u32 << failures.saturating_sub(1).min(3);
            tokio::time::sleep(timing.retry_period * factor).await;
        }
    }
}
