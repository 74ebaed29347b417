//! Session demultiplexing: one receive socket per local address, shared by every session that
//! uses that address, and the table that routes each received packet to its session.
//!
//! Owns: discriminator allocation (random, non-zero, unique in this instance), the receive task
//! of each local address, and the RFC 5880 §6.8.6 selection rule (Your Discriminator when
//! non-zero, else the source address), with the source address checked in both cases.
//! Does not own: what a session does with its packets (`driver`).

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::BfdError;
use super::packet::ControlPacket;
use super::socket::ReceiveSocket;

/// Every local address in use and the sessions behind it.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    listeners: HashMap<IpAddr, Listener>,
}

#[derive(Debug)]
struct Listener {
    routes: HashMap<u32, Route>,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        // The receive task holds the bound socket; it must not outlive its registry entry, or a
        // later session on the same address could not bind 3784.
        self.task.abort();
    }
}

#[derive(Debug)]
struct Route {
    peer: IpAddr,
    packets: mpsc::Sender<ControlPacket>,
}

fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    // The registry holds no invariant that a panicking holder could break half-way.
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh random value; seeds discriminators and transmit jitter.
pub(crate) fn random_u64(salt: impl Hash) -> u64 {
    RandomState::new().hash_one((salt, Instant::now()))
}

/// Adds a session for `peer` behind `local`, opening `local`'s receive socket if it is the
/// first. Returns the session's discriminator and the guard that removes it again.
pub(crate) fn register(
    registry: &Arc<Mutex<Registry>>,
    local: IpAddr,
    peer: IpAddr,
    packets: mpsc::Sender<ControlPacket>,
) -> Result<(NonZeroU32, Deregister), BfdError> {
    let mut guard = lock(registry);
    let in_use = |registry: &Registry, discriminator: u32| {
        registry
            .listeners
            .values()
            .any(|l| l.routes.contains_key(&discriminator))
    };
    let mut seed = random_u64(peer);
    let discriminator = loop {
        match NonZeroU32::new(seed as u32).filter(|d| !in_use(&guard, d.get())) {
            Some(d) => break d,
            None => seed = seed.rotate_left(17).wrapping_add(0x9e37_79b9_7f4a_7c15),
        }
    };
    let listener = match guard.listeners.entry(local) {
        Entry::Occupied(occupied) => occupied.into_mut(),
        Entry::Vacant(vacant) => {
            let socket =
                ReceiveSocket::bind(local).map_err(|source| BfdError::Socket { local, source })?;
            let task = tokio::spawn(receive_loop(socket, local, Arc::downgrade(registry)));
            vacant.insert(Listener {
                routes: HashMap::new(),
                task,
            })
        }
    };
    if listener.routes.values().any(|r| r.peer == peer) {
        return Err(BfdError::Duplicate { local, peer });
    }
    listener
        .routes
        .insert(discriminator.get(), Route { peer, packets });
    let deregister = Deregister {
        registry: Arc::clone(registry),
        local,
        discriminator: discriminator.get(),
    };
    Ok((discriminator, deregister))
}

/// Reads one local address's socket and hands each packet to its session.
async fn receive_loop(socket: ReceiveSocket, local: IpAddr, registry: Weak<Mutex<Registry>>) {
    let mut buf = [0u8; 512];
    loop {
        let datagram = match socket.recv(&mut buf).await {
            Ok(datagram) => datagram,
            Err(error) => {
                tracing::warn!(%local, %error, "BFD receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let packet = match ControlPacket::decode(&buf[..datagram.len]) {
            Ok(packet) => packet,
            Err(error) => {
                tracing::debug!(source = %datagram.source, %error, "discarding BFD packet");
                continue;
            }
        };
        let Some(registry) = registry.upgrade() else {
            return;
        };
        let registry = lock(&registry);
        let Some(listener) = registry.listeners.get(&local) else {
            return;
        };
        let peer = datagram.source.ip();
        let route = if packet.your_discriminator != 0 {
            listener
                .routes
                .get(&packet.your_discriminator)
                .filter(|route| route.peer == peer)
        } else {
            listener.routes.values().find(|route| route.peer == peer)
        };
        match route {
            // A full queue means the session task is far behind; dropping is what a lossy
            // link would do, and the detection timer copes with it.
            Some(route) => {
                let _ = route.packets.try_send(packet);
            }
            None => tracing::debug!(
                source = %datagram.source,
                your_discriminator = packet.your_discriminator,
                "BFD packet for no session"
            ),
        }
    }
}

/// Removes a session from the registry when dropped (its task ended, however it ended); the
/// last session of a local address closes that address's receive socket.
pub(crate) struct Deregister {
    registry: Arc<Mutex<Registry>>,
    local: IpAddr,
    discriminator: u32,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        let mut registry = lock(&self.registry);
        let empty = registry.listeners.get_mut(&self.local).is_some_and(|l| {
            l.routes.remove(&self.discriminator);
            l.routes.is_empty()
        });
        if empty {
            // Dropping the listener stops its receive task and closes the socket.
            registry.listeners.remove(&self.local);
        }
    }
}
