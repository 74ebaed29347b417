//! [`VipManager`]: the public face of this crate. Binds and unbinds a fixed set of VIPs on one
//! interface, keeps them there while bound (through the watcher task) and cleans up after a
//! previous run.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use rtnetlink::MulticastGroup;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::announce::{AnnounceConfig, Announcer};
use crate::error::Error;
use crate::link::{self, LinkInfo};
use crate::shared::Shared;
use crate::vip;
use crate::watch as watcher;

/// Tunables of a [`VipManager`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipOptions {
    /// How often the watcher re-checks the interface from a full dump, to cover lost events.
    pub resync_interval: Duration,
}

impl Default for VipOptions {
    fn default() -> Self {
        VipOptions {
            resync_interval: Duration::from_secs(5),
        }
    }
}

/// Counters for metrics; all monotonic since the manager was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VipStats {
    /// VIP addresses re-added by the watcher after they disappeared while bound.
    pub restores: u64,
    /// Times a VIP was found on the interface while not bound (reported once per appearance).
    pub foreign_sightings: u64,
    /// Netlink event overruns (ENOBUFS) that forced a resynchronisation from a dump.
    pub overruns: u64,
}

/// What [`VipManager::cleanup_stale`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// VIPs left by a previous run of cpvip, now removed.
    pub removed: Vec<IpAddr>,
    /// VIPs present on the interface that cpvip did not add; left alone.
    pub conflicts: Vec<IpAddr>,
}

/// Manages a set of VIPs (IPv4 /32, IPv6 /128) on one interface.
///
/// Must be created inside a tokio runtime (it spawns its netlink connections and the watcher),
/// in the network namespace whose interface it manages. The watcher stops on
/// [`VipManager::shutdown`] or drop; neither removes the VIPs (call [`VipManager::unbind`]).
pub struct VipManager {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for VipManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VipManager")
            .field("link", &self.shared.link())
            .field("vips", &self.shared.vips)
            .field("bound", &self.shared.is_bound())
            .finish_non_exhaustive()
    }
}

fn io_error(action: &str, source: std::io::Error) -> Error {
    Error::Io {
        action: action.to_owned(),
        source,
    }
}

impl VipManager {
    /// Resolves `interface` and starts watching it, with default [`VipOptions`]. Duplicate VIPs
    /// are ignored. Nothing is added or removed until [`bind`](Self::bind) /
    /// [`cleanup_stale`](Self::cleanup_stale).
    pub async fn new(
        interface: &str,
        vips: impl IntoIterator<Item = IpAddr>,
    ) -> Result<Self, Error> {
        Self::with_options(interface, vips, VipOptions::default()).await
    }

    /// Like [`new`](Self::new) with explicit options.
    pub async fn with_options(
        interface: &str,
        vips: impl IntoIterator<Item = IpAddr>,
        options: VipOptions,
    ) -> Result<Self, Error> {
        let mut seen = HashSet::new();
        let mut unique = Vec::new();
        for vip in vips {
            vip::validate_vip(vip)?;
            if seen.insert(vip) {
                unique.push(vip);
            }
        }
        vip::validate_interface_name(interface)?;

        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| io_error("open an rtnetlink socket", e))?;
        let conn_task = tokio::spawn(conn);
        let link = match link::resolve(&handle, interface).await {
            Ok(link) => link,
            Err(e) => {
                conn_task.abort();
                return Err(e);
            }
        };

        // Subscribe before anyone can bind, so no deletion goes unseen.
        let groups = [
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ];
        let (mconn, _mhandle, events) = match rtnetlink::new_multicast_connection(&groups) {
            Ok(parts) => parts,
            Err(e) => {
                conn_task.abort();
                return Err(io_error("subscribe to rtnetlink link/address events", e));
            }
        };
        let mconn_task = tokio::spawn(mconn);

        let shared = Arc::new(Shared::new(link, unique, handle));
        let (stop, stop_rx) = watch::channel(false);
        let watch_task = tokio::spawn(watcher::run(
            Arc::clone(&shared),
            events.boxed(),
            stop_rx,
            options.resync_interval,
        ));
        Ok(VipManager {
            shared,
            stop,
            tasks: Mutex::new(vec![watch_task, mconn_task, conn_task]),
        })
    }

    /// Adds every VIP to the interface (replace semantics: already present is fine) and keeps
    /// them there until [`unbind`](Self::unbind). IPv6 VIPs are usable as soon as this returns
    /// (NODAD). If an add fails on the way from unbound to bound, the VIPs added by this call are
    /// removed again and the manager stays unbound.
    pub async fn bind(&self) -> Result<(), Error> {
        let _guard = self.shared.op_lock.lock().await;
        let was_bound = self.shared.is_bound();
        let index = self.shared.index();
        self.shared.bound.store(true, Ordering::Release);
        for (n, &vip) in self.shared.vips.iter().enumerate() {
            if let Err(e) = self.shared.add(index, vip).await {
                if !was_bound {
                    self.shared.bound.store(false, Ordering::Release);
                    for &added in &self.shared.vips[..n] {
                        if let Err(undo) = self.shared.del(index, added).await {
                            tracing::warn!(vip = %added, error = %undo, "rolling back bind failed");
                        }
                    }
                }
                return Err(e);
            }
        }
        if !was_bound {
            tracing::info!(interface = %self.shared.link().name, vips = ?self.shared.vips, "VIPs bound");
        }
        Ok(())
    }

    /// Removes every VIP from the interface (absent is fine) and stops restoring them. A VIP is
    /// removed whatever its label, so a VIP that `bind()` adopted goes too.
    pub async fn unbind(&self) -> Result<(), Error> {
        let _guard = self.shared.op_lock.lock().await;
        let was_bound = self.shared.is_bound();
        self.shared.bound.store(false, Ordering::Release);
        let index = self.shared.index();
        let mut first_error = None;
        for &vip in &self.shared.vips {
            if let Err(e) = self.shared.del(index, vip).await {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if was_bound {
            tracing::info!(interface = %self.shared.link().name, vips = ?self.shared.vips, "VIPs unbound");
        }
        Ok(())
    }

    /// Start-up clean-up, before the first `bind()`: removes VIPs a previous cpvip run left on
    /// the interface and reports the others as conflicts (left alone, logged). See the `vip`
    /// module for how "ours" is recognised (IPv4 label `<iface>:cpvip`; IPv6 /128 with
    /// NODAD|NOPREFIXROUTE, permanent). Does nothing while bound.
    pub async fn cleanup_stale(&self) -> Result<CleanupReport, Error> {
        let _guard = self.shared.op_lock.lock().await;
        let mut report = CleanupReport::default();
        if self.shared.is_bound() {
            return Ok(report);
        }
        let link = self.shared.link();
        for msg in self.shared.dump_vips(link.index).await? {
            let Some(address) = vip::message_address(&msg) else {
                continue;
            };
            if vip::is_ours(&msg, &link.name) {
                self.shared.del(link.index, address).await?;
                tracing::info!(vip = %address, interface = %link.name, "removed a VIP left by a previous run");
                report.removed.push(address);
            } else {
                tracing::warn!(
                    vip = %address, interface = %link.name, prefix_len = msg.header.prefix_len,
                    "VIP is already on the interface but was not added by cpvip \
                     (no cpvip label / flags); leaving it alone"
                );
                report.conflicts.push(address);
            }
        }
        Ok(report)
    }

    /// The VIPs currently on the interface, from a fresh kernel dump.
    pub async fn present(&self) -> Result<Vec<IpAddr>, Error> {
        let index = self.shared.index();
        Ok(self
            .shared
            .dump_vips(index)
            .await?
            .iter()
            .filter_map(vip::message_address)
            .collect())
    }

    /// Whether the VIPs are meant to be on the interface (between `bind()` and `unbind()`).
    pub fn is_bound(&self) -> bool {
        self.shared.is_bound()
    }

    /// The VIPs held on the interface: all of them while bound, none otherwise.
    pub fn bound_addresses(&self) -> Vec<IpAddr> {
        if self.is_bound() {
            self.shared.vips.clone()
        } else {
            Vec::new()
        }
    }

    /// The configured VIPs (deduplicated, in the order given).
    pub fn vips(&self) -> &[IpAddr] {
        &self.shared.vips
    }

    /// The interface as last seen (its index changes if it is re-created).
    pub fn link(&self) -> LinkInfo {
        self.shared.link()
    }

    /// Counters for metrics.
    pub fn stats(&self) -> VipStats {
        let c = &self.shared.counters;
        VipStats {
            restores: c.restores.load(Ordering::Relaxed),
            foreign_sightings: c.foreign_sightings.load(Ordering::Relaxed),
            overruns: c.overruns.load(Ordering::Relaxed),
        }
    }

    /// An announcer for these VIPs on this interface.
    pub fn announcer(&self, config: AnnounceConfig) -> Announcer {
        Announcer::new(self.shared.link(), self.shared.vips.clone(), config)
    }

    /// Stops the watcher and the netlink connections and waits for them. The VIPs stay as they
    /// are. After this, `bind()`/`unbind()` fail (their netlink connection is gone).
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let mut tasks = tasks.into_iter();
        if let Some(watch_task) = tasks.next() {
            let _ = watch_task.await;
        }
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for VipManager {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            task.abort();
        }
    }
}
