//! Our own BGP value types: what the rest of the crate (and its users) see instead of the codec
//! crate's types.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address family we speak: IPv4 or IPv6 unicast (AFI 1/2, SAFI 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// AFI 1, SAFI 1.
    Ipv4Unicast,
    /// AFI 2, SAFI 1.
    Ipv6Unicast,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Ipv4Unicast,
            IpAddr::V6(_) => Self::Ipv6Unicast,
        }
    }

    /// RFC 4760 (AFI, SAFI) numbers.
    pub fn afi_safi(self) -> (u16, u8) {
        match self {
            Self::Ipv4Unicast => (1, 1),
            Self::Ipv6Unicast => (2, 1),
        }
    }
}

/// One announced prefix: an address and a prefix length, host bits cleared.
///
/// Ordered (IPv4 before IPv6, then by address and length) so that sets of routes are
/// `BTreeSet<Route>` and diffs are deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    addr: IpAddr,
    len: u8,
}

/// A prefix that cannot be a [`Route`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The prefix length exceeds the address width.
    #[error("prefix length {len} is longer than {max} for {addr}")]
    LengthTooLong {
        /// The address given.
        addr: IpAddr,
        /// The length given.
        len: u8,
        /// 32 or 128.
        max: u8,
    },
    /// Text that is neither `ADDR` nor `ADDR/LEN`.
    #[error("not a prefix (ADDR or ADDR/LEN): {0:?}")]
    Syntax(String),
}

impl Route {
    /// A prefix; host bits beyond `len` are cleared.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, RouteError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(RouteError::LengthTooLong { addr, len, max });
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(u32::from(32 - len)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(u32::from(128 - len)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Ok(Self { addr, len })
    }

    /// A host route: /32 or /128.
    pub fn host(addr: IpAddr) -> Self {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, len }
    }

    /// The (masked) network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// True for a default route (length 0); there is no empty prefix otherwise.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The route's address family.
    pub fn family(&self) -> Family {
        Family::of(self.addr)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Route {
    type Err = RouteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || RouteError::Syntax(s.to_string());
        match s.split_once('/') {
            None => s.parse().map(Self::host).map_err(|_| syntax()),
            Some((a, l)) => {
                let addr: IpAddr = a.parse().map_err(|_| syntax())?;
                let len: u8 = l.parse().map_err(|_| syntax())?;
                Self::new(addr, len)
            }
        }
    }
}

/// An RFC 1997 community, `ASN:VALUE` with 16 bits each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Community(pub u32);

impl Community {
    /// `asn:value`.
    pub fn new(asn: u16, value: u16) -> Self {
        Self((u32::from(asn) << 16) | u32::from(value))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff)
    }
}

/// Text that is not a community or a large community.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a {kind} ({expected}): {text:?}")]
pub struct CommunityParseError {
    kind: &'static str,
    expected: &'static str,
    text: String,
}

impl FromStr for Community {
    type Err = CommunityParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CommunityParseError {
            kind: "community",
            expected: "ASN:VALUE, each 0-65535",
            text: s.to_string(),
        };
        let (a, v) = s.split_once(':').ok_or_else(err)?;
        Ok(Self::new(
            a.parse().map_err(|_| err())?,
            v.parse().map_err(|_| err())?,
        ))
    }
}

/// An RFC 8092 large community, `GLOBAL:LOCAL1:LOCAL2` with 32 bits each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity {
    /// Global administrator (an ASN).
    pub global: u32,
    /// First local data part.
    pub local1: u32,
    /// Second local data part.
    pub local2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

impl FromStr for LargeCommunity {
    type Err = CommunityParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CommunityParseError {
            kind: "large community",
            expected: "GLOBAL:LOCAL1:LOCAL2, each 0-4294967295",
            text: s.to_string(),
        };
        let mut parts = s.split(':').map(|p| p.parse::<u32>().map_err(|_| err()));
        let global = parts.next().ok_or_else(err)??;
        let local1 = parts.next().ok_or_else(err)??;
        let local2 = parts.next().ok_or_else(err)??;
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Self {
            global,
            local1,
            local2,
        })
    }
}

/// The path attributes attached to every route we announce on one session.
///
/// ORIGIN is always IGP. `next_hop` goes into NEXT_HOP (IPv4) or MP_REACH_NLRI (IPv6) and must
/// be of the routes' family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// AS_PATH as one AS_SEQUENCE: `[local AS]` for eBGP, empty for iBGP.
    pub as_path: Vec<u32>,
    /// NEXT_HOP (IPv4 routes) or the MP_REACH_NLRI next hop (IPv6 routes).
    pub next_hop: IpAddr,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF (iBGP only; RFC 4271 §5.1.5).
    pub local_pref: Option<u32>,
    /// COMMUNITIES.
    pub communities: Vec<Community>,
    /// LARGE_COMMUNITY.
    pub large_communities: Vec<LargeCommunity>,
}

/// Capabilities (RFC 5492) that we understand, as advertised in one OPEN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Multiprotocol IPv4 unicast (RFC 4760).
    pub ipv4_unicast: bool,
    /// Multiprotocol IPv6 unicast (RFC 4760).
    pub ipv6_unicast: bool,
    /// Route refresh (RFC 2918).
    pub route_refresh: bool,
    /// Extended messages up to 65535 bytes (RFC 8654).
    pub extended_message: bool,
    /// 4-octet AS number (RFC 6793): the sender's real ASN.
    pub four_octet_as: Option<u32>,
    /// Graceful restart (RFC 4724); we never advertise it, we only note the peer's.
    pub graceful_restart: bool,
    /// Whether the OPEN carried any multiprotocol capability at all (RFC 4760 §8: none means
    /// IPv4 unicast only).
    pub any_multiprotocol: bool,
    /// Codes of other capabilities, for logs.
    pub other: Vec<u8>,
}

/// An OPEN message (RFC 4271 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// My Autonomous System field: the ASN, or [`super::AS_TRANS`] for a 4-octet ASN.
    pub my_as: u16,
    /// Proposed hold time in seconds.
    pub hold_time: u16,
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    /// Capabilities carried.
    pub capabilities: Capabilities,
}

impl Open {
    /// The OPEN we send: `my_as` is filled from `asn` (AS_TRANS when it needs 4 octets) and the
    /// 4-octet AS capability always carries the real ASN.
    pub fn ours(asn: u32, hold_time: u16, router_id: Ipv4Addr, ipv4: bool, ipv6: bool) -> Self {
        Self {
            my_as: u16::try_from(asn).unwrap_or(super::AS_TRANS),
            hold_time,
            router_id,
            capabilities: Capabilities {
                ipv4_unicast: ipv4,
                ipv6_unicast: ipv6,
                route_refresh: true,
                extended_message: true,
                four_octet_as: Some(asn),
                graceful_restart: false,
                any_multiprotocol: ipv4 || ipv6,
                other: Vec::new(),
            },
        }
    }

    /// The sender's ASN: from the 4-octet AS capability when present, else `my_as`.
    pub fn asn(&self) -> u32 {
        self.capabilities
            .four_octet_as
            .unwrap_or(u32::from(self.my_as))
    }
}

/// A NOTIFICATION message (RFC 4271 §4.5): error code, subcode and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Error code (1 header, 2 OPEN, 3 UPDATE, 4 hold timer, 5 FSM, 6 Cease, 7 route refresh).
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Data (meaning depends on code and subcode).
    pub data: Vec<u8>,
}

impl Notification {
    /// Message Header Error.
    pub const HEADER: u8 = 1;
    /// OPEN Message Error.
    pub const OPEN: u8 = 2;
    /// UPDATE Message Error.
    pub const UPDATE: u8 = 3;
    /// Hold Timer Expired.
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// Finite State Machine Error.
    pub const FSM: u8 = 5;
    /// Cease.
    pub const CEASE: u8 = 6;

    /// OPEN subcode: unsupported version number.
    pub const OPEN_UNSUPPORTED_VERSION: u8 = 1;
    /// OPEN subcode: bad peer AS.
    pub const OPEN_BAD_PEER_AS: u8 = 2;
    /// OPEN subcode: bad BGP identifier.
    pub const OPEN_BAD_BGP_ID: u8 = 3;
    /// OPEN subcode: unacceptable hold time.
    pub const OPEN_UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// OPEN subcode: unsupported capability (RFC 5492).
    pub const OPEN_UNSUPPORTED_CAPABILITY: u8 = 7;
    /// Cease subcode: administrative shutdown (RFC 4486).
    pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
    /// Cease subcode: peer de-configured.
    pub const CEASE_PEER_DECONFIGURED: u8 = 3;
    /// Cease subcode: connection rejected.
    pub const CEASE_CONNECTION_REJECTED: u8 = 5;
    /// Cease subcode: connection collision resolution.
    pub const CEASE_COLLISION: u8 = 7;
    /// Cease subcode: BFD down (RFC 9384).
    pub const CEASE_BFD_DOWN: u8 = 10;

    /// A notification without data.
    pub fn new(code: u8, subcode: u8) -> Self {
        Self {
            code,
            subcode,
            data: Vec::new(),
        }
    }

    /// Cease / Administrative Shutdown carrying an RFC 9003 shutdown communication (UTF-8,
    /// truncated at a character boundary to 255 octets).
    pub fn admin_shutdown(reason: &str) -> Self {
        let mut end = reason.len().min(255);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let text = &reason[..end];
        let mut data = Vec::with_capacity(1 + text.len());
        data.push(u8::try_from(text.len()).unwrap_or(u8::MAX));
        data.extend_from_slice(text.as_bytes());
        Self {
            code: Self::CEASE,
            subcode: Self::CEASE_ADMIN_SHUTDOWN,
            data,
        }
    }

    /// The RFC 9003 shutdown communication of a Cease / Administrative Shutdown or Reset.
    pub fn shutdown_message(&self) -> Option<String> {
        if self.code != Self::CEASE || !matches!(self.subcode, 2 | 4) {
            return None;
        }
        let (&len, text) = self.data.split_first()?;
        if usize::from(len) != text.len() {
            return None;
        }
        std::str::from_utf8(text).ok().map(str::to_string)
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} ({})",
            self.code,
            self.subcode,
            super::decode::describe(self.code, self.subcode)
        )?;
        if let Some(msg) = self.shutdown_message() {
            write!(f, ": {msg:?}")?;
        }
        Ok(())
    }
}

/// What RFC 7606 says to do with a received UPDATE that did not require a session reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UpdateDisposition {
    /// Well-formed.
    Clean,
    /// Some optional attributes were malformed and are ignored (RFC 7606 §2).
    AttributeDiscard,
    /// Treat as withdrawal of every NLRI in it (RFC 7606 §2); the subcode says why.
    TreatAsWithdraw {
        /// The RFC 4271 §6.3 subcode the error would have had.
        subcode: u8,
    },
}

/// What we keep of a received UPDATE: counts and a verdict, never the prefixes themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateSummary {
    /// Prefixes announced (plain NLRI plus MP_REACH_NLRI).
    pub announced: u32,
    /// Prefixes withdrawn (withdrawn routes plus MP_UNREACH_NLRI).
    pub withdrawn: u32,
    /// Set when the UPDATE is an End-of-RIB marker (RFC 4724 §2) for this family.
    pub end_of_rib: Option<Family>,
    /// RFC 7606 verdict.
    pub disposition: UpdateDisposition,
}

/// A ROUTE-REFRESH request (RFC 2918), as raw AFI/SAFI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    /// Address family identifier.
    pub afi: u16,
    /// Subsequent address family identifier.
    pub safi: u8,
}

impl RouteRefresh {
    /// The family asked for, if it is one we speak.
    pub fn family(&self) -> Option<Family> {
        match (self.afi, self.safi) {
            (1, 1) => Some(Family::Ipv4Unicast),
            (2, 1) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// OPEN.
    Open(Open),
    /// UPDATE, already validated and reduced to counts.
    Update(UpdateSummary),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh(RouteRefresh),
}

/// A message we could not encode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A next hop of the wrong family for the routes.
    #[error("next hop {next_hop} does not match the {family:?} routes")]
    NextHopFamily {
        /// The next hop given.
        next_hop: IpAddr,
        /// The routes' family.
        family: Family,
    },
    /// The codec refused the message.
    #[error("codec: {0}")]
    Codec(String),
}
