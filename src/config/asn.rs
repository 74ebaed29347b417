//! Autonomous system numbers: plain (`65001`) or asdot (`1.10` = 1 × 65536 + 10), RFC 5396.

use std::fmt;

use serde::Serialize;

use super::error::ParseResult;

/// What every ASN error says is expected.
pub const ASN_EXPECTED: &str = "must be an ASN (1-4294967295 or X.Y)";

/// A 4-octet AS number, never 0 (RFC 7607).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Asn(pub u32);

/// AS_TRANS (RFC 6793): stands in for a 4-octet ASN towards 2-octet speakers; never a real AS.
pub const AS_TRANS: Asn = Asn(23456);

impl Asn {
    /// Parses plain or asdot notation. Rejects 0, signs, spaces and out-of-range parts.
    pub fn parse(text: &str) -> ParseResult<Asn> {
        let value = match text.split_once('.') {
            None => parse_digits(text, u32::MAX.into())?,
            Some((high, low)) => {
                let high = parse_digits(high, 65_535)?;
                let low = parse_digits(low, 65_535)?;
                high * 65_536 + low
            }
        };
        match u32::try_from(value) {
            Ok(0) | Err(_) => Err(ASN_EXPECTED.to_owned()),
            Ok(asn) => Ok(Asn(asn)),
        }
    }

    /// Whether the AS number fits the 2-octet field of an OPEN message.
    pub fn is_two_octet(self) -> bool {
        self.0 <= 65_535
    }
}

fn parse_digits(text: &str, max: u64) -> ParseResult<u64> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ASN_EXPECTED.to_owned());
    }
    match text.parse::<u64>() {
        Ok(value) if value <= max => Ok(value),
        _ => Err(ASN_EXPECTED.to_owned()),
    }
}

impl fmt::Display for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_asdot() {
        assert_eq!(Asn::parse("65001"), Ok(Asn(65001)));
        assert_eq!(Asn::parse("1.10"), Ok(Asn(65_546)));
        assert_eq!(Asn::parse("0.10"), Ok(Asn(10)));
        assert_eq!(Asn::parse("65535.65535"), Ok(Asn(u32::MAX)));
        assert_eq!(Asn::parse("4294967295"), Ok(Asn(u32::MAX)));
        for bad in [
            "0",
            "0.0",
            "",
            "abc",
            "-1",
            "+1",
            "4294967296",
            "65536.0",
            "1.65536",
            "1.",
            ".1",
            "1.2.3",
            " 1",
            "00000000001",
        ] {
            assert!(Asn::parse(bad).is_err(), "{bad:?}");
        }
    }
}
