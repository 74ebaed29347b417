//! `cpvip-lab bench failover`: the outage a client sees for each kind of failure, measured over
//! several trials, for cpvip and (same lab, same probe) for keepalived's VRRP.
//!
//! A trial: steady state, start the probe, inject the failure at t0, wait until the router (or, for
//! VRRP, the client) has moved on, stop the probe, then repair and wait for steady state again.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::demo::{Narrator, client_probe};
use crate::netns::{LabError, Proc, Result, wait_until};
use crate::topology::{Lab, LabConfig};

/// A way to break a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Failure {
    /// The daemon is killed (SIGKILL): its sockets close at once.
    Sigkill,
    /// Every process of the node is frozen (SIGSTOP): the node goes silent.
    Freeze,
    /// The node's link goes down: the node is cut off.
    Cut,
    /// The daemon is stopped gracefully (SIGTERM): a planned hand-over.
    Sigterm,
}

impl Failure {
    /// Every kind, in the order the bench runs them.
    pub const ALL: [Failure; 4] = [
        Failure::Sigterm,
        Failure::Sigkill,
        Failure::Cut,
        Failure::Freeze,
    ];
}

/// One measured trial.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// What was done.
    pub failure: Failure,
    /// Which node was broken.
    pub node: String,
    /// Client-visible outage (longest gap on any flow), seconds.
    pub outage_s: f64,
    /// Probes lost after the failure.
    pub lost: usize,
    /// Probes sent in the trial.
    pub sent: usize,
}

/// Summary of one failure kind.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Which system.
    pub system: String,
    /// What was done.
    pub failure: Failure,
    /// Trials.
    pub n: usize,
    /// Outage, seconds.
    pub min_s: f64,
    /// Median outage, seconds.
    pub median_s: f64,
    /// Maximum outage, seconds.
    pub max_s: f64,
}

/// Summarises trials per failure kind.
pub fn summarise(system: &str, trials: &[Trial]) -> Vec<Summary> {
    Failure::ALL
        .iter()
        .filter_map(|&failure| {
            let mut v: Vec<f64> = trials
                .iter()
                .filter(|t| t.failure == failure)
                .map(|t| t.outage_s)
                .collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            let median = if v.len() % 2 == 1 {
                v[v.len() / 2]
            } else {
                (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
            };
            Some(Summary {
                system: system.to_owned(),
                failure,
                n: v.len(),
                min_s: v[0],
                median_s: median,
                max_s: v[v.len() - 1],
            })
        })
        .collect()
}

/// Prints summaries as a table.
pub fn print_table(rows: &[Summary]) {
    println!(
        "{:<34} {:<8} {:>3} {:>9} {:>9} {:>9}",
        "system", "failure", "n", "min s", "median s", "max s"
    );
    for r in rows {
        println!(
            "{:<34} {:<8} {:>3} {:>9.3} {:>9.3} {:>9.3}",
            r.system,
            format!("{:?}", r.failure).to_lowercase(),
            r.n,
            r.min_s,
            r.median_s,
            r.max_s
        );
    }
}

/// Runs the cpvip failover bench on a fresh lab and returns the trials.
pub fn cpvip_failover(
    config: LabConfig,
    failures: &[Failure],
    trials: usize,
    n: &Narrator,
) -> Result<Vec<Trial>> {
    let mut lab = Lab::up(config, &|l| n.say(l))?;
    let vip = IpAddr::V4(lab.plan.vip_v4);
    let anycast = lab.config.mode == "anycast";
    let all = lab.nodes.len();
    let steady = |lab: &Lab| -> Result<Vec<String>> {
        lab.wait_sessions(Duration::from_secs(30))?;
        lab.wait_next_hops(vip, Duration::from_secs(30), |h| {
            h.len() == if anycast { all } else { 1 }
        })
    };
    let mut out = Vec::new();
    for &failure in failures {
        for trial in 0..trials {
            let hops = steady(&lab)?;
            // Leader mode breaks the leader; anycast breaks n1 (flows hashed to it see the outage).
            let victim = if anycast {
                lab.nodes[0].plan.name.clone()
            } else {
                hops[0].clone()
            };
            let vi = lab
                .node_index(&victim)
                .ok_or_else(|| LabError::Timeout(Duration::ZERO, "victim".into()))?;
            // Spread the failure over the keepalive/renew phase.
            std::thread::sleep(Duration::from_millis(200 + (trial as u64 * 137) % 700));
            let probe = client_probe(&lab, vip)?;
            std::thread::sleep(Duration::from_millis(300));
            let t0 = Instant::now();
            inject(&lab, vi, failure)?;
            let moved = lab.wait_next_hops(vip, Duration::from_secs(40), |h| {
                !h.is_empty() && !h.contains(&victim) && (!anycast || h.len() == all - 1)
            });
            std::thread::sleep(Duration::from_millis(700));
            let report = probe.finish()?;
            moved?;
            let t = Trial {
                failure,
                node: victim.clone(),
                outage_s: report.outage_after(t0).as_secs_f64(),
                lost: report.lost_after(t0),
                sent: report.sent(),
            };
            n.say(&format!(
                "{failure:?} of {victim}: outage {:.3}s, {} probes lost",
                t.outage_s, t.lost
            ));
            out.push(t);
            repair(&mut lab, vi, failure)?;
        }
    }
    Ok(out)
}

fn inject(lab: &Lab, i: usize, failure: Failure) -> Result<()> {
    let node = &lab.nodes[i];
    match failure {
        Failure::Sigkill | Failure::Sigterm => {
            let signal = if failure == Failure::Sigkill {
                libc::SIGKILL
            } else {
                libc::SIGTERM
            };
            match &node.cpvip {
                Some(p) => p.signal(signal),
                None => Err(LabError::Timeout(
                    Duration::ZERO,
                    format!("cpvip not running on {}", node.plan.name),
                )),
            }
        }
        Failure::Freeze => {
            lab.freeze(i, true);
            Ok(())
        }
        Failure::Cut => lab.set_link(i, false),
    }
}

fn repair(lab: &mut Lab, i: usize, failure: Failure) -> Result<()> {
    match failure {
        Failure::Sigkill | Failure::Sigterm => {
            if let Some(mut p) = lab.nodes[i].cpvip.take() {
                p.stop(Duration::from_secs(3));
            }
            lab.start_cpvip(i)
        }
        Failure::Freeze => {
            lab.freeze(i, false);
            Ok(())
        }
        Failure::Cut => lab.set_link(i, true),
    }
}

/// keepalived VRRP on the same segment: VIP 10.99.0.200/24 on eth0 of the master, advert 1 s.
pub fn keepalived_failover(
    mut config: LabConfig,
    failures: &[Failure],
    trials: usize,
    n: &Narrator,
) -> Result<Vec<Trial>> {
    crate::netns::require_binary("keepalived", "apt-get install -y keepalived");
    config.start_cpvip = false;
    let lab = Lab::up(config, &|l| n.say(l))?;
    let vip: IpAddr = "10.99.0.200"
        .parse()
        .map_err(|_| LabError::Timeout(Duration::ZERO, "vip".into()))?;
    let mut daemons: Vec<Option<(Proc, std::path::PathBuf)>> = Vec::new();
    for i in 0..lab.nodes.len() {
        daemons.push(Some(start_keepalived(&lab, i)?));
    }
    let holder = |lab: &Lab| -> Option<usize> {
        (0..lab.nodes.len()).find(|&i| {
            lab.nodes[i]
                .ns
                .exec(&["ip", "-4", "addr", "show", "dev", "eth0"])
                .is_ok_and(|o| o.contains("10.99.0.200/"))
        })
    };
    let mut out = Vec::new();
    for &failure in failures {
        for trial in 0..trials {
            let mut master = None;
            if !wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
                master = holder(&lab);
                master.is_some()
            }) {
                return Err(LabError::Timeout(
                    Duration::from_secs(30),
                    "no VRRP master".into(),
                ));
            }
            let mi = master.unwrap_or(0);
            std::thread::sleep(Duration::from_millis(200 + (trial as u64 * 137) % 700));
            let probe = client_probe(&lab, vip)?;
            std::thread::sleep(Duration::from_millis(300));
            let t0 = Instant::now();
            match failure {
                Failure::Sigkill | Failure::Sigterm => {
                    if let Some((p, child_pidfile)) = &daemons[mi] {
                        let signal = if failure == Failure::Sigkill {
                            libc::SIGKILL
                        } else {
                            libc::SIGTERM
                        };
                        // keepalived's VRRP work happens in a child: a crash must kill it too.
                        if failure == Failure::Sigkill
                            && let Some(child) = std::fs::read_to_string(child_pidfile)
                                .ok()
                                .and_then(|s| s.trim().parse::<i32>().ok())
                        {
                            let _ = crate::netns::signal_pid(child, libc::SIGKILL);
                        }
                        p.signal(signal)?;
                    }
                }
                Failure::Freeze => lab.freeze(mi, true),
                Failure::Cut => lab.set_link(mi, false)?,
            }
            let moved = wait_until(Duration::from_secs(30), Duration::from_millis(5), || {
                (0..lab.nodes.len()).any(|i| {
                    i != mi
                        && lab.nodes[i]
                            .ns
                            .exec(&["ip", "-4", "addr", "show", "dev", "eth0"])
                            .is_ok_and(|o| o.contains("10.99.0.200/"))
                })
            });
            std::thread::sleep(Duration::from_millis(1500));
            let report = probe.finish()?;
            if !moved {
                return Err(LabError::Timeout(
                    Duration::from_secs(30),
                    "VRRP did not fail over".into(),
                ));
            }
            let t = Trial {
                failure,
                node: lab.nodes[mi].plan.name.clone(),
                outage_s: report.outage_after(t0).as_secs_f64(),
                lost: report.lost_after(t0),
                sent: report.sent(),
            };
            n.say(&format!(
                "keepalived {failure:?} of {}: outage {:.3}s, {} lost",
                t.node, t.outage_s, t.lost
            ));
            out.push(t);
            match failure {
                Failure::Sigkill | Failure::Sigterm => {
                    if let Some((mut p, _)) = daemons[mi].take() {
                        p.stop(Duration::from_secs(3));
                    }
                    // A killed keepalived leaves its VIP behind; remove it as an operator would.
                    let _ = lab.nodes[mi].ns.exec(&[
                        "ip",
                        "addr",
                        "del",
                        "10.99.0.200/24",
                        "dev",
                        "eth0",
                    ]);
                    daemons[mi] = Some(start_keepalived(&lab, mi)?);
                }
                Failure::Freeze => lab.freeze(mi, false),
                Failure::Cut => lab.set_link(mi, true)?,
            }
            std::thread::sleep(Duration::from_secs(4));
        }
    }
    drop(daemons);
    drop(lab);
    Ok(out)
}

fn start_keepalived(lab: &Lab, i: usize) -> Result<(Proc, std::path::PathBuf)> {
    let node = &lab.nodes[i];
    let dir = &node.dir;
    let priority = 150 - 10 * i;
    let conf = format!(
        "global_defs {{\n  router_id {name}\n  vrrp_garp_master_delay 1\n  script_user root\n}}\n\
         vrrp_instance cpvip_lab {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {priority}\n  \
         advert_int 1\n  virtual_ipaddress {{\n    10.99.0.200/24\n  }}\n}}\n",
        name = node.plan.name
    );
    let conf_path = dir.join("keepalived.conf");
    std::fs::write(&conf_path, conf)
        .map_err(|e| LabError::Io(conf_path.display().to_string(), e))?;
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let child_pidfile = dir.join("keepalived-vrrp.pid");
    let argv = [
        "keepalived".to_owned(),
        "-n".into(),
        "-P".into(),
        "-l".into(),
        "-D".into(),
        "-G".into(),
        "--dont-respawn".into(),
        "-f".into(),
        path("keepalived.conf"),
        "-p".into(),
        path("keepalived.pid"),
        "-r".into(),
        path("keepalived-vrrp.pid"),
    ];
    let proc = node
        .ns
        .spawn(&argv, Some(Path::new(&path("keepalived.log"))))?;
    Ok((proc, child_pidfile))
}
