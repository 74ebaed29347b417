//! Health-check specs: `apiserver`, `supervisor`, `https://HOST[:PORT]/PATH[,ca=FILE]`,
//! `http://HOST[:PORT]/PATH`, `tcp://HOST:PORT`.

use std::net::Ipv6Addr;
use std::path::PathBuf;

use serde::Serialize;

use super::error::ParseResult;

const HEALTH_EXPECTED: &str = "must be apiserver, supervisor, https://HOST[:PORT]/PATH[,ca=FILE], \
     http://HOST[:PORT]/PATH or tcp://HOST:PORT";

/// One local health check; the node serves only while every check is up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HealthCheckSpec {
    /// `GET https://127.0.0.1:6443/readyz` with the kubeconfig's credentials.
    Apiserver,
    /// `GET https://127.0.0.1:9345/ping` (the RKE2 supervisor).
    Supervisor,
    /// `GET` of a plain-HTTP URL; up on a 2xx answer.
    Http {
        /// The URL, as given (validated: `http://HOST[:PORT][/PATH]`).
        url: String,
    },
    /// `GET` of an HTTPS URL; up on a 2xx answer.
    Https {
        /// The URL, as given (validated: `https://HOST[:PORT][/PATH]`).
        url: String,
        /// CA bundle to verify the server with (`,ca=FILE`); `None` = the system roots.
        ca: Option<PathBuf>,
    },
    /// A TCP connect; up when it succeeds.
    Tcp {
        /// Host name or IP address (an IPv6 address without brackets).
        host: String,
        /// Port, 1-65535.
        port: u16,
    },
}

impl HealthCheckSpec {
    /// Parses one spec. The error is the part after `--health-check "…": `.
    pub fn parse(text: &str) -> ParseResult<HealthCheckSpec> {
        match text {
            "apiserver" => return Ok(HealthCheckSpec::Apiserver),
            "supervisor" => return Ok(HealthCheckSpec::Supervisor),
            _ => {}
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            let (host, port) = parse_authority(rest)?;
            let port = port.ok_or("tcp:// needs a port (tcp://HOST:PORT)")?;
            return Ok(HealthCheckSpec::Tcp { host, port });
        }
        if text.starts_with("http://") {
            let url = parse_url(text, "http://")?;
            return Ok(HealthCheckSpec::Http { url });
        }
        if text.starts_with("https://") {
            let (url_text, options) = match text.split_once(',') {
                Some((url, options)) => (url, Some(options)),
                None => (text, None),
            };
            let url = parse_url(url_text, "https://")?;
            let ca = match options {
                None => None,
                Some(option) => match option.split_once('=') {
                    Some(("ca", path)) if !path.is_empty() && !path.contains(',') => {
                        Some(PathBuf::from(path))
                    }
                    _ => return Err(format!("unknown option {option:?} (expected ca=FILE)")),
                },
            };
            return Ok(HealthCheckSpec::Https { url, ca });
        }
        Err(HEALTH_EXPECTED.to_owned())
    }

    /// A short, stable name for metrics labels and logs (`apiserver`, `tcp://127.0.0.1:6443`).
    pub fn name(&self) -> String {
        match self {
            HealthCheckSpec::Apiserver => "apiserver".to_owned(),
            HealthCheckSpec::Supervisor => "supervisor".to_owned(),
            HealthCheckSpec::Http { url } | HealthCheckSpec::Https { url, .. } => url.clone(),
            HealthCheckSpec::Tcp { host, port } if host.contains(':') => {
                format!("tcp://[{host}]:{port}")
            }
            HealthCheckSpec::Tcp { host, port } => format!("tcp://{host}:{port}"),
        }
    }
}

/// Checks `scheme://HOST[:PORT][/PATH]` and returns it unchanged.
fn parse_url(text: &str, scheme: &str) -> ParseResult<String> {
    let rest = &text[scheme.len()..];
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URL must not contain spaces".to_owned());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("a URL must not contain credentials".to_owned());
    }
    parse_authority(authority)?;
    Ok(text.to_owned())
}

/// `HOST[:PORT]`, HOST a name, an IPv4 address or a bracketed IPv6 address.
fn parse_authority(text: &str) -> ParseResult<(String, Option<u16>)> {
    let (host, port_text) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or("an IPv6 host needs its closing ]")?;
        v6.parse::<Ipv6Addr>()
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?;
        match after {
            "" => (v6, None),
            _ => (
                v6,
                Some(after.strip_prefix(':').ok_or("expected :PORT after ]")?),
            ),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.contains(':')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !host_ok {
        return Err(format!("{host:?} is not a host name or IP address"));
    }
    let port = match port_text {
        None => None,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => return Err(format!("port {port:?} must be 1-65535")),
        },
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            HealthCheckSpec::parse("tcp://[::1]:6443"),
            Ok(HealthCheckSpec::Tcp {
                host: "::1".into(),
                port: 6443
            })
        );
        assert_eq!(
            HealthCheckSpec::parse("https://127.0.0.1:9345/ping,ca=/etc/ca.pem"),
            Ok(HealthCheckSpec::Https {
                url: "https://127.0.0.1:9345/ping".into(),
                ca: Some("/etc/ca.pem".into())
            })
        );
        assert_eq!(
            HealthCheckSpec::parse("tcp://[::1]:6443").map(|s| s.name()),
            Ok("tcp://[::1]:6443".into())
        );
        for bad in [
            "",
            "ftp://x",
            "tcp://host",
            "tcp://:80",
            "tcp://h:0",
            "http://a b/",
            "http://u@h/",
            "https://h/,cert=x",
            "http://h:,ca=x",
            "https://[::1/",
        ] {
            assert!(HealthCheckSpec::parse(bad).is_err(), "{bad:?}");
        }
    }
}
