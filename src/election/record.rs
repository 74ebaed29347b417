//! The Lease object as this election writes and reads it: the client-go durations, the writes
//! (create, acquire, renew, release) turned into objects stamped with a wall-clock time that is
//! written for humans and other clients but never read back, the holder, and resourceVersion order.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;

/// The three client-go durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long a Lease not seen changing stays valid (written as leaseDurationSeconds).
    pub lease_duration: Duration,
    /// A leader that has not renewed for this long stops leading.
    pub renew_deadline: Duration,
    /// Renew interval of the leader; safety-net poll interval of standbys.
    pub retry_period: Duration,
}

/// client-go's `JitterFactor`: renew deadline must exceed retry period times this.
const JITTER_FACTOR: f64 = 1.2;

impl Timing {
    /// client-go's validation: duration > deadline > 1.2 × retry > 0.
    pub fn validate(&self) -> Result<(), String> {
        if self.retry_period.is_zero() {
            return Err("retry period must be greater than zero".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return Err("lease duration must be greater than renew deadline".into());
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            return Err("renew deadline must be greater than 1.2 × retry period".into());
        }
        Ok(())
    }

    /// `spec.leaseDurationSeconds` we write.
    /// Rounded up: others then wait at least our lease duration, which keeps the fencing rule
    /// (renew deadline < what others wait) true for fractional durations.
    pub fn lease_duration_seconds(&self) -> i32 {
        let secs =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
    }

    /// A request that has not answered by then is abandoned (counted as a failure).
    pub fn request_timeout(&self) -> Duration {
        self.retry_period.max(self.renew_deadline / 2)
    }

    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(3);
        (self.retry_period * factor).min(Duration::from_secs(30))
    }
}

/// A write we ask the driver to send; `build_lease` turns it into the object.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// POST a new Lease held by us.
    Create,
    /// PUT `base` (released, ours or expired) with us as holder.
    Acquire(Box<Lease>),
    /// PUT `base` (ours) with a fresh renewTime.
    Renew(Box<Lease>),
    /// PUT `base` with an empty holder and leaseDurationSeconds 1.
    Release(Box<Lease>),
}

/// Non-empty `spec.holderIdentity`.
pub fn holder_of(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

pub(crate) fn lease_duration(lease: &Lease, default: Duration) -> Duration {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_duration_seconds)
        .and_then(|s| u64::try_from(s).ok())
        .map_or(default, Duration::from_secs)
}

/// resourceVersions are opaque, but etcd-backed apiservers hand out increasing integers; compare
/// them as such so a late watch event never overrides a newer answer. Unparseable: never older.
pub fn is_older(new: &str, old: &str) -> bool {
    match (new.parse::<u64>(), old.parse::<u64>()) {
        (Ok(n), Ok(o)) => n < o,
        _ => false,
    }
}

/// The object to send for `write`, stamped with `wall_now` (acquireTime/renewTime are written
/// for humans and other clients; this election never reads them).
pub fn build_lease(
    write: &Write,
    identity: &str,
    name: &str,
    namespace: &str,
    timing: &Timing,
    wall_now: Timestamp,
) -> Lease {
    let now = MicroTime(wall_now);
    match write {
        Write::Create => Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(identity.to_string()),
                lease_duration_seconds: Some(timing.lease_duration_seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        },
        Write::Acquire(base) | Write::Renew(base) => {
            let mut lease = (**base).clone();
            let was_ours = holder_of(base) == Some(identity);
            let spec = lease.spec.get_or_insert_with(Default::default);
            if !was_ours {
                spec.acquire_time = Some(now.clone());
                spec.lease_transitions =
                    Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            } else if spec.acquire_time.is_none() {
                spec.acquire_time = Some(now.clone());
            }
            spec.holder_identity = Some(identity.to_string());
            spec.lease_duration_seconds = Some(timing.lease_duration_seconds());
            spec.renew_time = Some(now);
            lease
        }
        Write::Release(base) => {
            let mut lease = (**base).clone();
            let spec = lease.spec.get_or_insert_with(Default::default);
            spec.holder_identity = Some(String::new());
            spec.lease_duration_seconds = Some(1);
            spec.acquire_time = Some(now.clone());
            spec.renew_time = Some(now);
            lease
        }
    }
}
