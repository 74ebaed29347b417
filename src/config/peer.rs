//! BGP peer specs: `ADDRESS,as=ASN[,port=179][,password=SECRET][,multihop=N][,gtsm][,bfd]
//! [,source=IP][,passive]`.

use std::net::IpAddr;

use serde::Serialize;

use super::asn::{AS_TRANS, ASN_EXPECTED, Asn};
use super::error::ParseResult;
use super::secret::{REDACTED, Secret};

/// The BGP port (RFC 4271).
pub const BGP_PORT: u16 = 179;
/// Longest TCP-MD5 key Linux accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub const MAX_PASSWORD_LEN: usize = 80;

const OPTIONS: &str = "as, port, password, multihop, gtsm, bfd, source, passive";

/// One BGP neighbour, as given by `--bgp-peer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerSpec {
    /// The peer's address; also the session's identity (no two peers share one).
    pub address: IpAddr,
    /// The peer's AS number (`as=`); equal to the local AS means iBGP.
    pub asn: Asn,
    /// TCP port to connect to (`port=`, default 179).
    pub port: u16,
    /// TCP-MD5 key (`password=`, RFC 2385); serialized as `<redacted>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// eBGP multihop: the TTL of outgoing packets (`multihop=N`). `None` = directly connected.
    pub multihop: Option<u8>,
    /// GTSM (RFC 5082): send with TTL 255 and accept only TTL 255 (`gtsm`).
    pub gtsm: bool,
    /// Run a BFD session with this peer (`bfd`).
    pub bfd: bool,
    /// Local address to connect from (`source=`), same family as `address`.
    pub source: Option<IpAddr>,
    /// Never connect; only accept the peer's connection (`passive`).
    pub passive: bool,
}

impl PeerSpec {
    /// Parses one peer spec. The error is the part after `--bgp-peer "…": `.
    pub fn parse(text: &str) -> ParseResult<PeerSpec> {
        let mut parts = text.split(',');
        let address_text = parts.next().unwrap_or_default();
        let address: IpAddr = address_text.parse().map_err(|_| {
            "must start with the peer's IP address (ADDRESS,as=ASN[,port=179][,password=SECRET]\
             [,multihop=N][,gtsm][,bfd][,source=IP][,passive])"
                .to_owned()
        })?;
        if !is_unicast(address) {
            return Err(format!("{address} is not a unicast address"));
        }
        let mut peer = PeerSpec {
            address,
            asn: Asn(0),
            port: BGP_PORT,
            password: None,
            multihop: None,
            gtsm: false,
            bfd: false,
            source: None,
            passive: false,
        };
        let mut seen: Vec<&str> = Vec::new();
        for part in parts {
            let (key, value) = match part.split_once('=') {
                Some((key, value)) => (key, Some(value)),
                None => (part, None),
            };
            if seen.contains(&key) {
                return Err(format!("option {key} is given twice"));
            }
            seen.push(key);
            peer.apply_option(key, value)?;
        }
        if !seen.contains(&"as") {
            return Err("as=ASN is required (the peer's AS number)".to_owned());
        }
        if peer.multihop.is_some() && peer.gtsm {
            return Err(
                "multihop and gtsm exclude each other (GTSM expects a directly \
                        connected peer, RFC 5082)"
                    .to_owned(),
            );
        }
        if peer.bfd && peer.multihop.is_some_and(|ttl| ttl > 1) {
            return Err(
                "bfd is single-hop only (RFC 5881); it cannot be combined with \
                        multihop above 1"
                    .to_owned(),
            );
        }
        Ok(peer)
    }

    fn apply_option(&mut self, key: &str, value: Option<&str>) -> ParseResult<()> {
        let needs_value = |hint: &str| value.ok_or_else(|| format!("{key} needs a value ({hint})"));
        let no_value = || match value {
            Some(_) => Err(format!("{key} takes no value")),
            None => Ok(true),
        };
        match key {
            "as" => {
                let asn =
                    Asn::parse(needs_value("as=ASN")?).map_err(|_| format!("as {ASN_EXPECTED}"))?;
                if asn == AS_TRANS {
                    return Err("as must not be 23456 (AS_TRANS, RFC 6793)".to_owned());
                }
                self.asn = asn;
            }
            "port" => {
                self.port = match needs_value("port=1-65535")?.parse::<u16>() {
                    Ok(port) if port > 0 => port,
                    _ => return Err("port must be 1-65535".to_owned()),
                }
            }
            "password" => {
                let password = needs_value("password=SECRET")?;
                if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
                    return Err(format!(
                        "password must be 1-{MAX_PASSWORD_LEN} bytes (the TCP-MD5 key limit)"
                    ));
                }
                self.password = Some(Secret::new(password));
            }
            "multihop" => {
                self.multihop = match needs_value("multihop=TTL")?.parse::<u8>() {
                    Ok(ttl) if ttl > 0 => Some(ttl),
                    _ => return Err("multihop must be a TTL of 1-255".to_owned()),
                }
            }
            "source" => {
                let source: IpAddr = needs_value("source=IP")?
                    .parse()
                    .map_err(|_| "source must be an IP address".to_owned())?;
                if source.is_ipv4() != self.address.is_ipv4() || !is_unicast(source) {
                    return Err(format!(
                        "source must be a unicast address of the same family as {}",
                        self.address
                    ));
                }
                self.source = Some(source);
            }
            "gtsm" => self.gtsm = no_value()?,
            "bfd" => self.bfd = no_value()?,
            "passive" => self.passive = no_value()?,
            _ => return Err(format!("unknown option {key:?} (expected {OPTIONS})")),
        }
        Ok(())
    }
}

/// Neither unspecified, multicast nor the IPv4 broadcast address.
pub(crate) fn is_unicast(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

/// The spec with any password value replaced, for error messages and logs.
pub fn redact_peer_spec(text: &str) -> String {
    text.split(',')
        .map(|part| match part.split_once('=') {
            Some(("password", _)) => format!("password={REDACTED}"),
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_spec() {
        let peer = PeerSpec::parse(
            "2001:db8::1,as=1.10,port=1179,password=s3cret,bfd,source=2001:db8::2,passive",
        )
        .expect("valid spec");
        assert_eq!(peer.asn, Asn(65_546));
        assert_eq!(peer.port, 1179);
        assert_eq!(peer.password.as_ref().map(Secret::expose), Some("s3cret"));
        assert!(peer.bfd && peer.passive && !peer.gtsm);
        assert_eq!(peer.source, Some("2001:db8::2".parse().expect("literal")));
        assert!(!format!("{peer:?}").contains("s3cret"));
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_peer_spec("10.0.0.1,password=a=b,as=1"),
            "10.0.0.1,password=<redacted>,as=1"
        );
    }
}
