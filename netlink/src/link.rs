//! The interface a VIP lives on: resolving a name to its index, MAC and the flags that decide
//! whether announcements make sense there.

use futures_util::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage};

use crate::error::{self, Error};

/// A snapshot of an interface, as the kernel described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Kernel interface index.
    pub index: u32,
    /// Ethernet MAC address, if the interface has a 6-byte link-layer address.
    pub mac: Option<[u8; 6]>,
    /// Whether this is a loopback interface (`lo`): announcements are pointless there.
    pub loopback: bool,
    /// Whether the interface has IFF_NOARP (dummy, ifb, tunnels): no ARP / neighbour discovery.
    pub noarp: bool,
}

impl LinkInfo {
    /// Whether gratuitous ARP / unsolicited NA can mean anything on this interface.
    pub fn can_announce(&self) -> bool {
        !self.loopback && !self.noarp && self.mac.is_some()
    }

    pub(crate) fn from_message(msg: &LinkMessage) -> Option<Self> {
        let name = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })?;
        let mac = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
            _ => None,
        });
        let flags = msg.header.flags;
        Some(LinkInfo {
            name,
            index: msg.header.index,
            mac: mac.filter(|m| m.iter().any(|b| *b != 0)),
            loopback: flags.contains(LinkFlags::Loopback)
                || msg.header.link_layer_type == LinkLayerType::Loopback,
            noarp: flags.contains(LinkFlags::Noarp),
        })
    }
}

/// Looks an interface up by name (in the caller's network namespace).
pub(crate) async fn resolve(handle: &rtnetlink::Handle, name: &str) -> Result<LinkInfo, Error> {
    crate::vip::validate_interface_name(name)?;
    let found = handle
        .link()
        .get()
        .match_name(name.to_owned())
        .execute()
        .try_next()
        .await;
    match found {
        Ok(Some(msg)) => LinkInfo::from_message(&msg).ok_or_else(|| Error::UnknownInterface {
            name: name.to_owned(),
        }),
        Ok(None) => Err(Error::UnknownInterface {
            name: name.to_owned(),
        }),
        Err(e) if error::errno(&e) == Some(libc::ENODEV) => Err(Error::UnknownInterface {
            name: name.to_owned(),
        }),
        Err(e) => Err(Error::Netlink {
            action: format!("look up interface {name:?}"),
            source: error::to_io(e),
        }),
    }
}
