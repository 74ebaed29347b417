//! The Lease store: what etcd plus the apiserver's registry do for `coordination.k8s.io/v1`
//! Leases. A global, monotonically increasing `resourceVersion`; optimistic concurrency on update;
//! validation as `ValidateLease` does it; a bounded event history for watches resumed from a
//! resourceVersion (older → 410 Expired, as after an etcd compaction). No I/O here.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// How many events a watch can resume from before it gets 410 Expired.
const HISTORY: usize = 1000;

/// Kind of change, as in the watch event `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted; the object is the last state with the deletion's resourceVersion.
    Deleted,
}

impl EventType {
    /// The watch wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Clone, Debug)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// The resourceVersion the change was committed at.
    pub rv: u64,
    /// The object after the change (before it, for deletions).
    pub object: Lease,
}

/// A committed write as the test log records it, with the instant it was committed.
#[derive(Clone, Debug)]
pub struct WriteRecord {
    /// When the store committed the write (monotonic, same clock as the tests).
    pub at: Instant,
    /// Which verb.
    pub kind: EventType,
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// `spec.holderIdentity` after the write (None when cleared or deleted).
    pub holder: Option<String>,
    /// `spec.leaseTransitions` after the write.
    pub transitions: Option<i32>,
    /// The resourceVersion of the write.
    pub rv: u64,
}

/// Why a request was refused; maps to a Kubernetes Status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// 404 NotFound.
    NotFound { name: String },
    /// 409 AlreadyExists.
    AlreadyExists { name: String },
    /// 409 Conflict.
    Conflict { name: String, message: String },
    /// 422 Invalid: (field, message) causes.
    Invalid {
        name: String,
        causes: Vec<(String, String)>,
    },
    /// 400 BadRequest.
    BadRequest { message: String },
    /// 410 Expired: a watch asked for history that was compacted.
    Expired { requested: u64, oldest: u64 },
}

/// In-memory Leases keyed by (namespace, name).
#[derive(Default)]
pub struct Store {
    rv: u64,
    leases: BTreeMap<(String, String), Lease>,
    history: VecDeque<Event>,
    compacted_through: u64,
    writes: Vec<WriteRecord>,
    uid_counter: u64,
}

impl Store {
    /// Current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// One Lease.
    pub fn get(&self, ns: &str, name: &str) -> Result<Lease, StoreError> {
        self.leases
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                name: name.to_string(),
            })
    }

    /// All Leases in `ns` (all namespaces when None), ordered by namespace and name.
    pub fn list(&self, ns: Option<&str>) -> Vec<Lease> {
        self.leases
            .iter()
            .filter(|((n, _), _)| ns.is_none_or(|want| want == n))
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// Events committed after `rv`, or Expired when they were compacted away.
    pub fn events_since(&self, rv: u64) -> Result<Vec<Event>, StoreError> {
        if rv < self.compacted_through {
            return Err(StoreError::Expired {
                requested: rv,
                oldest: self.compacted_through,
            });
        }
        Ok(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// The log of committed writes.
    pub fn writes(&self) -> &[WriteRecord] {
        &self.writes
    }

    /// POST: creates `lease` in `ns`.
    pub fn create(&mut self, ns: &str, mut lease: Lease) -> Result<Event, StoreError> {
        check_namespace(ns, &lease)?;
        let name = lease.metadata.name.clone().unwrap_or_default();
        validate(&name, &lease)?;
        let key = (ns.to_string(), name.clone());
        if self.leases.contains_key(&key) {
            return Err(StoreError::AlreadyExists { name });
        }
        self.uid_counter += 1;
        lease.metadata.namespace = Some(ns.to_string());
        lease.metadata.uid = Some(new_uid(self.uid_counter));
        lease.metadata.creation_timestamp = Some(Time(now_seconds()));
        Ok(self.commit(EventType::Added, key, lease))
    }

    /// PUT: replaces `name` in `ns`. The body must carry the current resourceVersion (Leases do not
    /// allow unconditional update); a missing Lease is created when the body carries none, as
    /// Leases allow create-on-update. A no-op update does not bump the resourceVersion.
    pub fn replace(&mut self, ns: &str, name: &str, mut lease: Lease) -> Result<Event, StoreError> {
        check_namespace(ns, &lease)?;
        let body_name = lease.metadata.name.clone().unwrap_or_default();
        if body_name != name {
            return Err(StoreError::BadRequest {
                message: format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                ),
            });
        }
        validate(name, &lease)?;
        let key = (ns.to_string(), name.to_string());
        let Some(current) = self.leases.get(&key) else {
            if lease.metadata.resource_version.is_some() {
                return Err(StoreError::NotFound {
                    name: name.to_string(),
                });
            }
            return self.create(ns, lease);
        };
        let conflict = |message: &str| StoreError::Conflict {
            name: name.to_string(),
            message: message.to_string(),
        };
        match lease.metadata.resource_version.as_deref() {
            None | Some("") => {
                return Err(conflict(
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
            Some(rv) if rv != current.metadata.resource_version.as_deref().unwrap_or("") => {
                return Err(conflict(
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
            Some(_) => {}
        }
        if let Some(uid) = &lease.metadata.uid
            && Some(uid) != current.metadata.uid.as_ref()
        {
            return Err(conflict(
                "Precondition failed: UID in precondition does not match",
            ));
        }
        lease.metadata.namespace = Some(ns.to_string());
        lease.metadata.uid = current.metadata.uid.clone();
        lease.metadata.creation_timestamp = current.metadata.creation_timestamp.clone();
        if lease.metadata == current.metadata && lease.spec == current.spec {
            return Ok(Event {
                kind: EventType::Modified,
                rv: self.rv,
                object: current.clone(),
            });
        }
        Ok(self.commit(EventType::Modified, key, lease))
    }

    /// DELETE.
    pub fn delete(&mut self, ns: &str, name: &str) -> Result<Event, StoreError> {
        let key = (ns.to_string(), name.to_string());
        let Some(lease) = self.leases.remove(&key) else {
            return Err(StoreError::NotFound {
                name: name.to_string(),
            });
        };
        Ok(self.commit(EventType::Deleted, key, lease))
    }

    fn commit(&mut self, kind: EventType, key: (String, String), mut lease: Lease) -> Event {
        self.rv += 1;
        lease.metadata.resource_version = Some(self.rv.to_string());
        if kind != EventType::Deleted {
            self.leases.insert(key.clone(), lease.clone());
        }
        let spec = lease.spec.clone().unwrap_or_default();
        self.writes.push(WriteRecord {
            at: Instant::now(),
            kind,
            namespace: key.0,
            name: key.1,
            holder: if kind == EventType::Deleted {
                None
            } else {
                spec.holder_identity.filter(|h| !h.is_empty())
            },
            transitions: spec.lease_transitions,
            rv: self.rv,
        });
        let event = Event {
            kind,
            rv: self.rv,
            object: lease,
        };
        self.history.push_back(event.clone());
        if self.history.len() > HISTORY
            && let Some(dropped) = self.history.pop_front()
        {
            self.compacted_through = dropped.rv;
        }
        event
    }
}

fn check_namespace(ns: &str, lease: &Lease) -> Result<(), StoreError> {
    match lease.metadata.namespace.as_deref() {
        Some(n) if !n.is_empty() && n != ns => Err(StoreError::BadRequest {
            message: "the namespace of the provided object does not match the namespace sent on the request".to_string(),
        }),
        _ => Ok(()),
    }
}

/// `ValidateLease`: object meta name + `ValidateLeaseSpec`.
fn validate(name: &str, lease: &Lease) -> Result<(), StoreError> {
    let mut causes = Vec::new();
    if name.is_empty() {
        causes.push((
            "metadata.name".to_string(),
            "Required value: name or generateName is required".to_string(),
        ));
    } else if !is_dns1123_subdomain(name) {
        causes.push((
            "metadata.name".to_string(),
            format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
    if let Some(spec) = &lease.spec {
        if let Some(d) = spec.lease_duration_seconds
            && d <= 0
        {
            causes.push((
                "spec.leaseDurationSeconds".to_string(),
                format!("Invalid value: {d}: must be greater than 0"),
            ));
        }
        if let Some(t) = spec.lease_transitions
            && t < 0
        {
            causes.push((
                "spec.leaseTransitions".to_string(),
                format!("Invalid value: {t}: must be greater than or equal to 0"),
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            name: name.to_string(),
            causes,
        })
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

fn now_seconds() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Timestamp::from_second(i64::try_from(secs).unwrap_or(0)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// 128 random bits as hex, for a default bearer token.
pub fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(0);
        h.finish()
    };
    format!("{:016x}{:016x}", word(), word())
}

/// A random-looking RFC 4122 v4 UID; `RandomState` is seeded from the OS, so no rand crate.
fn new_uid(counter: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(counter);
        h.write_usize(i);
        *w = h.finish();
    }
    let hi = (words[0] & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (words[1] & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn lease(name: &str, holder: &str, duration: i32) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_string()),
                lease_duration_seconds: Some(duration),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn optimistic_concurrency_and_global_rv() {
        let mut s = Store::default();
        let a = s.create("ns", lease("a", "x", 5)).expect("create");
        assert_eq!(a.rv, 1);
        assert!(matches!(
            s.create("ns", lease("a", "y", 5)),
            Err(StoreError::AlreadyExists { .. })
        ));
        s.create("other", lease("b", "x", 5)).expect("create b");
        let mut upd = a.object.clone();
        upd.spec.as_mut().expect("spec").holder_identity = Some("y".into());
        let e = s.replace("ns", "a", upd.clone()).expect("replace");
        assert_eq!(e.rv, 3, "resourceVersion is global");
        assert!(matches!(
            s.replace("ns", "a", upd),
            Err(StoreError::Conflict { .. })
        ));
        let same = s.replace("ns", "a", e.object.clone()).expect("no-op");
        assert_eq!(same.rv, 3, "no-op update keeps the resourceVersion");
        assert_eq!(s.events_since(1).expect("history").len(), 2);
    }

    #[test]
    fn validation() {
        let mut s = Store::default();
        assert!(matches!(
            s.create("ns", lease("a", "x", -1)),
            Err(StoreError::Invalid { .. })
        ));
        assert!(matches!(
            s.create("ns", lease("Bad_Name", "x", 1)),
            Err(StoreError::Invalid { .. })
        ));
        assert!(matches!(
            s.replace("ns", "a", lease("b", "x", 1)),
            Err(StoreError::BadRequest { .. })
        ));
    }

    #[test]
    fn uid_shape() {
        let u = new_uid(1);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, new_uid(1));
    }
}
