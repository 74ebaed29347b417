//! The real actuators behind the daemon's traits: the host VIP manager (`cpvip-netlink`), the BGP
//! speaker (`cpvip-bgp`) and the Lease election. Each adapter only translates; ordering, retries
//! and the decision stay in the reconciler and the lifecycle.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cpvip_bgp::{Route, SpeakerHandle};
use cpvip_netlink::{AnnounceConfig, VipManager};
use tokio::sync::watch;

use super::lifecycle::Election;
use super::reconcile::{ActuatorError, RouteActuator, VipActuator};
use crate::election::ElectionHandle;

/// Gratuitous ARP / NA on takeover: DESIGN's default of 3 announcements 200 ms apart.
const ANNOUNCE: AnnounceConfig = AnnounceConfig {
    count: 3,
    interval: Duration::from_millis(200),
};

/// Binds and unbinds the VIPs on the host.
pub struct HostVip {
    manager: Arc<VipManager>,
}

impl HostVip {
    /// Wraps a manager that has already cleaned up what a previous run left.
    pub fn new(manager: Arc<VipManager>) -> Self {
        Self { manager }
    }
}

impl VipActuator for HostVip {
    async fn bind(&self) -> Result<(), ActuatorError> {
        self.manager.bind().await.map_err(ActuatorError::new)
    }

    async fn unbind(&self) -> Result<(), ActuatorError> {
        self.manager.unbind().await.map_err(ActuatorError::new)
    }

    async fn announce_takeover(&self) -> Result<(), ActuatorError> {
        // The first round goes out before the BGP announcement; the repeats must not delay it.
        let first = self.manager.announcer(AnnounceConfig {
            count: 1,
            ..ANNOUNCE
        });
        let report = first.announce().await.map_err(ActuatorError::new)?;
        tracing::debug!(?report, "takeover announced on the segment");
        let rest = self.manager.announcer(AnnounceConfig {
            count: ANNOUNCE.count - 1,
            ..ANNOUNCE
        });
        tokio::spawn(async move {
            tokio::time::sleep(ANNOUNCE.interval).await;
            if let Err(error) = rest.announce().await {
                tracing::warn!(%error, "repeated gratuitous ARP / NA failed");
            }
        });
        Ok(())
    }
}

/// The speaker, shared between the route adapter and `/status`; `None` once it has shut down.
pub type SharedSpeaker = Arc<Mutex<Option<SpeakerHandle>>>;

/// Locks the shared speaker. Nothing panics while holding it, and a poisoned lock still holds a
/// valid handle, so poisoning is ignored.
pub fn lock_speaker(
    speaker: &Mutex<Option<SpeakerHandle>>,
) -> MutexGuard<'_, Option<SpeakerHandle>> {
    speaker
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Announces and withdraws the VIPs through the BGP speaker. Without peers there is no speaker,
/// and announcing is a no-op (a node that only binds the VIP).
pub struct Bgp {
    speaker: SharedSpeaker,
    configured: bool,
}

impl Bgp {
    /// Wraps the speaker (shared with `/status`, which reads its peers); `None` when no peer is
    /// configured.
    pub fn new(speaker: SharedSpeaker) -> Self {
        let configured = lock_speaker(&speaker).is_some();
        Self {
            speaker,
            configured,
        }
    }
}

impl RouteActuator for Bgp {
    async fn announce(&self, vips: &BTreeSet<IpAddr>) -> Result<(), ActuatorError> {
        match lock_speaker(&self.speaker).as_ref() {
            Some(speaker) => {
                speaker.set_routes(vips.iter().copied().map(Route::host).collect());
                Ok(())
            }
            None if !self.configured => Ok(()),
            None => Err(ActuatorError("the BGP speaker has stopped".into())),
        }
    }

    async fn withdraw(&self) -> Result<(), ActuatorError> {
        if let Some(speaker) = lock_speaker(&self.speaker).as_ref() {
            speaker.set_routes(BTreeSet::new());
        }
        Ok(())
    }

    async fn shutdown(&self, reason: &str, timeout: Duration) -> Result<(), ActuatorError> {
        let speaker = lock_speaker(&self.speaker).take();
        if let Some(speaker) = speaker {
            speaker.shutdown(reason, timeout).await;
        }
        Ok(())
    }
}

impl Election for ElectionHandle {
    fn leader(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    fn holder(&self) -> watch::Receiver<Option<String>> {
        self.holder.clone()
    }

    fn set_eligible(&self, eligible: bool) {
        ElectionHandle::set_eligible(self, eligible);
    }

    async fn release_and_wait_new_holder(&self, max: Duration) -> Option<String> {
        ElectionHandle::release_and_wait_new_holder(self, max).await
    }

    async fn shutdown(self) -> Result<(), ActuatorError> {
        ElectionHandle::shutdown(self).await;
        Ok(())
    }
}
