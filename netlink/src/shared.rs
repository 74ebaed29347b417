//! State shared by [`crate::VipManager`] and its watcher task, and the kernel operations both use.
//!
//! Every change to the interface's VIPs (bind, unbind, restore, clean-up) happens while holding
//! `op_lock`, and `bound` is only written under it: so a restore can never re-add an address that
//! a concurrent `unbind()` has just removed, and a "foreign VIP" report is always checked against
//! a dump taken after any in-flight bind/unbind finished.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use futures_util::TryStreamExt;
use netlink_packet_route::address::AddressMessage;

use crate::error::{self, Error};
use crate::link::LinkInfo;
use crate::vip;

/// Counters exposed to the daemon (metrics).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub restores: AtomicU64,
    pub foreign_sightings: AtomicU64,
    pub overruns: AtomicU64,
}

pub(crate) struct Shared {
    pub vips: Vec<IpAddr>,
    pub label: Option<String>,
    pub handle: rtnetlink::Handle,
    link: Mutex<LinkInfo>,
    pub bound: AtomicBool,
    pub op_lock: tokio::sync::Mutex<()>,
    pub counters: Counters,
    reported_foreign: Mutex<HashSet<IpAddr>>,
}

/// Locks a std mutex, ignoring poisoning (the data are plain values that stay consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(link: LinkInfo, vips: Vec<IpAddr>, handle: rtnetlink::Handle) -> Self {
        Shared {
            label: vip::label_for(&link.name),
            vips,
            handle,
            link: Mutex::new(link),
            bound: AtomicBool::new(false),
            op_lock: tokio::sync::Mutex::new(()),
            counters: Counters::default(),
            reported_foreign: Mutex::new(HashSet::new()),
        }
    }

    pub fn link(&self) -> LinkInfo {
        lock(&self.link).clone()
    }

    pub fn set_link(&self, link: LinkInfo) {
        *lock(&self.link) = link;
    }

    pub fn index(&self) -> u32 {
        lock(&self.link).index
    }

    pub fn is_bound(&self) -> bool {
        self.bound.load(Ordering::Acquire)
    }

    pub fn is_vip(&self, address: IpAddr) -> bool {
        self.vips.contains(&address)
    }

    /// Forgets that `vip` was reported as foreign (it has gone), so a return is reported again.
    pub fn forget_foreign(&self, vip: IpAddr) {
        lock(&self.reported_foreign).remove(&vip);
    }

    /// Adds (or replaces) one VIP on the interface. Caller holds `op_lock`.
    pub async fn add(&self, index: u32, vip: IpAddr) -> Result<(), Error> {
        let mut req = self
            .handle
            .address()
            .add(index, vip, vip::host_prefix_len(vip))
            .replace();
        *req.message_mut() = vip::add_message(index, vip, self.label.as_deref());
        req.execute().await.map_err(|e| {
            let iface = self.link().name;
            let action = format!("add {vip}/{} to {iface}", vip::host_prefix_len(vip));
            error::address_error(e, action, vip, &iface)
        })
    }

    /// Removes one VIP; `Ok(false)` when it was not there. Caller holds `op_lock`.
    pub async fn del(&self, index: u32, vip: IpAddr) -> Result<bool, Error> {
        let result = self
            .handle
            .address()
            .del(vip::del_message(index, vip))
            .execute()
            .await;
        match result {
            Ok(()) => Ok(true),
            // Not there, or the interface itself is gone (and its addresses with it).
            Err(e) if matches!(error::errno(&e), Some(libc::EADDRNOTAVAIL | libc::ENODEV)) => {
                Ok(false)
            }
            Err(e) => {
                let iface = self.link().name;
                let action = format!("remove {vip}/{} from {iface}", vip::host_prefix_len(vip));
                Err(error::address_error(e, action, vip, &iface))
            }
        }
    }

    /// The addresses on interface `index` that are one of our VIPs (whatever their prefix length).
    pub async fn dump_vips(&self, index: u32) -> Result<Vec<AddressMessage>, Error> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::Netlink {
                action: format!("list the addresses of interface index {index}"),
                source: error::to_io(e),
            })?;
        Ok(messages
            .into_iter()
            .filter(|m| vip::message_address(m).is_some_and(|a| self.is_vip(a)))
            .collect())
    }

    /// Brings the interface in line with the desired state after an event, a lost-event overrun
    /// or a periodic tick: while bound, re-adds missing VIPs; while not bound, reports VIPs that
    /// are present anyway (once per appearance).
    pub async fn reconcile(&self, reason: &str) -> Result<(), Error> {
        let _guard = self.op_lock.lock().await;
        let link = self.link();
        let present: HashSet<IpAddr> = self
            .dump_vips(link.index)
            .await?
            .iter()
            .filter_map(vip::message_address)
            .collect();
        if self.is_bound() {
            lock(&self.reported_foreign).clear();
            for &vip in self.vips.iter().filter(|v| !present.contains(v)) {
                self.add(link.index, vip).await?;
                self.counters.restores.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    %vip, interface = %link.name, reason,
                    "VIP disappeared from the interface while bound; restored it"
                );
            }
        } else {
            let mut reported = lock(&self.reported_foreign);
            reported.retain(|v| present.contains(v));
            for &vip in self.vips.iter().filter(|v| present.contains(v)) {
                if reported.insert(vip) {
                    self.counters
                        .foreign_sightings
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        %vip, interface = %link.name, reason,
                        "VIP is on the interface although this node does not serve it \
                         (another owner, or a stale address?); leaving it alone"
                    );
                }
            }
        }
        Ok(())
    }
}
