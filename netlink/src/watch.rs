//! The watcher task: listens to rtnetlink multicast groups (link, IPv4 and IPv6 addresses) and
//! reconciles the interface after every event that may concern a VIP, after an overrun (ENOBUFS:
//! events were lost, so a full dump is the only truth) and every `resync_interval`.
//!
//! Events are only triggers: the reconcile step always works from a fresh dump taken under the
//! operation lock, so stale or duplicate events cannot cause a wrong action.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::AddressMessage;
use tokio::sync::watch;

use crate::link::LinkInfo;
use crate::shared::Shared;
use crate::vip;

/// The receiving end of a multicast rtnetlink connection (boxed: its concrete type lives in a
/// crate we do not depend on directly).
pub(crate) type Events = futures_util::stream::BoxStream<
    'static,
    (
        NetlinkMessage<RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    ),
>;

/// What an event asks the watcher to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Nothing,
    Reconcile(&'static str),
}

fn address_event(shared: &Shared, msg: &AddressMessage) -> Option<IpAddr> {
    (msg.header.index == shared.index())
        .then(|| vip::message_address(msg))
        .flatten()
        .filter(|a| shared.is_vip(*a))
}

/// Decides what one netlink event means for us.
fn classify(shared: &Shared, msg: NetlinkMessage<RouteNetlinkMessage>) -> Action {
    let bound = shared.is_bound();
    match msg.payload {
        NetlinkPayload::Overrun(_) => {
            shared.counters.overruns.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("netlink event socket overran (ENOBUFS); resynchronising from a dump");
            Action::Reconcile("netlink overrun")
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(a)) => {
            match address_event(shared, &a) {
                Some(_) if bound => Action::Reconcile("address deleted"),
                // Not bound: nothing to restore; a reported foreign VIP has gone.
                Some(vip) => {
                    shared.forget_foreign(vip);
                    Action::Nothing
                }
                None => Action::Nothing,
            }
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => {
            // While bound a new VIP address is our own bind; while not bound it is foreign.
            match address_event(shared, &a) {
                Some(_) if !bound => Action::Reconcile("address appeared"),
                _ => Action::Nothing,
            }
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
            let Some(info) = LinkInfo::from_message(&l) else {
                return Action::Nothing;
            };
            let current = shared.link();
            if info.index == current.index {
                // Link up/down: IPv6 addresses are flushed on down; reconcile restores them.
                shared.set_link(LinkInfo {
                    name: current.name,
                    ..info
                });
                if bound {
                    Action::Reconcile("link changed")
                } else {
                    Action::Nothing
                }
            } else if info.name == current.name {
                tracing::warn!(
                    interface = %info.name, old_index = current.index, new_index = info.index,
                    "interface was re-created; following the new index"
                );
                shared.set_link(info);
                Action::Reconcile("interface re-created")
            } else {
                Action::Nothing
            }
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l))
            if l.header.index == shared.index() =>
        {
            tracing::error!(
                interface = %shared.link().name,
                "interface was removed; VIPs cannot be restored until it comes back"
            );
            Action::Nothing
        }
        _ => Action::Nothing,
    }
}

/// Runs until `stop` turns true (or its sender is dropped).
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut events: Events,
    mut stop: watch::Receiver<bool>,
    resync_interval: Duration,
) {
    let mut ticker = tokio::time::interval(resync_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; start-up is the caller's business
    let mut events_alive = true;
    loop {
        let action = tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
                Action::Nothing
            }
            _ = ticker.tick() => Action::Reconcile("periodic check"),
            event = events.next(), if events_alive => match event {
                Some((msg, _)) => {
                    // Coalesce a burst (a link-down flushes several addresses at once).
                    let mut action = classify(&shared, msg);
                    while let Some(Some((msg, _))) = events.next().now_or_never() {
                        if let Action::Reconcile(r) = classify(&shared, msg) {
                            action = Action::Reconcile(r);
                        }
                    }
                    action
                }
                None => {
                    events_alive = false;
                    tracing::error!(
                        "netlink event socket closed; falling back to the periodic check only"
                    );
                    Action::Nothing
                }
            },
        };
        if let Action::Reconcile(reason) = action
            && let Err(e) = shared.reconcile(reason).await
        {
            tracing::warn!(error = %e, reason, "reconciling the VIPs failed; will retry");
        }
    }
    tracing::debug!("VIP watcher stopped");
}
