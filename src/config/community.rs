//! BGP communities (RFC 1997, `A:B` or a well-known name) and large communities (RFC 8092,
//! `A:B:C`) attached to every announcement.

use std::fmt;

use serde::{Serialize, Serializer};

use super::error::ParseResult;

/// Well-known community names accepted on the command line, with their values.
pub const WELL_KNOWN_COMMUNITIES: [(&str, u32); 6] = [
    ("graceful-shutdown", 0xFFFF_0000),   // RFC 8326
    ("blackhole", 0xFFFF_029A),           // RFC 7999
    ("no-export", 0xFFFF_FF01),           // RFC 1997
    ("no-advertise", 0xFFFF_FF02),        // RFC 1997
    ("no-export-subconfed", 0xFFFF_FF03), // RFC 1997
    ("no-peer", 0xFFFF_FF04),             // RFC 3765
];

const COMMUNITY_EXPECTED: &str = "must be a community A:B (each 0-65535) or one of no-export, \
     no-advertise, no-export-subconfed, no-peer, blackhole, graceful-shutdown";
const LARGE_COMMUNITY_EXPECTED: &str = "must be a large community A:B:C (each 0-4294967295)";

/// A standard community as its 32-bit value (high 16 bits `A`, low 16 bits `B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Community(pub u32);

impl Community {
    /// Parses `A:B` or a well-known name.
    pub fn parse(text: &str) -> ParseResult<Community> {
        if let Some((_, value)) = WELL_KNOWN_COMMUNITIES
            .iter()
            .find(|(name, _)| *name == text)
        {
            return Ok(Community(*value));
        }
        let parts = split_numbers(text, 2, u16::MAX.into()).ok_or(COMMUNITY_EXPECTED)?;
        Ok(Community((parts[0] << 16) | parts[1]))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xFFFF)
    }
}

impl Serialize for Community {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A large community: global administrator, local data 1, local data 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity {
    /// Global administrator (usually the ASN).
    pub global: u32,
    /// First local data part.
    pub local1: u32,
    /// Second local data part.
    pub local2: u32,
}

impl LargeCommunity {
    /// Parses `A:B:C`.
    pub fn parse(text: &str) -> ParseResult<LargeCommunity> {
        let parts = split_numbers(text, 3, u32::MAX).ok_or(LARGE_COMMUNITY_EXPECTED)?;
        Ok(LargeCommunity {
            global: parts[0],
            local1: parts[1],
            local2: parts[2],
        })
    }
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

impl Serialize for LargeCommunity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `count` colon-separated decimal numbers, each at most `max`.
fn split_numbers(text: &str, count: usize, max: u32) -> Option<Vec<u32>> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != count {
        return None;
    }
    parts
        .iter()
        .map(|part| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let value: u32 = part.parse().ok()?;
            (value <= max).then_some(value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities() {
        assert_eq!(
            Community::parse("65000:100"),
            Ok(Community(65000 << 16 | 100))
        );
        assert_eq!(Community::parse("no-export"), Ok(Community(0xFFFF_FF01)));
        assert_eq!(
            Community::parse("65000:100").map(|c| c.to_string()),
            Ok("65000:100".into())
        );
        for bad in [
            "",
            "1",
            "1:2:3",
            "65536:1",
            "1:-1",
            "a:b",
            "NO-EXPORT",
            ":1",
        ] {
            assert!(Community::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn large_communities() {
        let c = LargeCommunity {
            global: 4_200_000_000,
            local1: 1,
            local2: 2,
        };
        assert_eq!(LargeCommunity::parse("4200000000:1:2"), Ok(c));
        assert_eq!(c.to_string(), "4200000000:1:2");
        for bad in ["", "1:2", "1:2:3:4", "4294967296:1:1", "a:1:1"] {
            assert!(LargeCommunity::parse(bad).is_err(), "{bad:?}");
        }
    }
}
