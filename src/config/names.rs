//! Names checked before use: interface names, Kubernetes object names, the node name, and the
//! host facts (hostname, `$KUBECONFIG`) that supply defaults.

use std::path::PathBuf;

use super::error::ParseResult;

/// Facts about the host that supply defaults. Passed in (not read inside the config builder) so
/// that tests are independent of the machine they run on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The hostname, if it could be read.
    pub hostname: Option<String>,
    /// `$KUBECONFIG`, if set and not empty.
    pub kubeconfig_env: Option<String>,
}

impl HostFacts {
    /// Reads the real host: `/proc/sys/kernel/hostname` (else `$HOSTNAME`) and `$KUBECONFIG`.
    pub fn from_system() -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty());
        let kubeconfig_env = std::env::var("KUBECONFIG")
            .ok()
            .filter(|value| !value.is_empty());
        Self {
            hostname,
            kubeconfig_env,
        }
    }
}

/// First entry of a `$KUBECONFIG` list (entries are separated by `:`), as a path.
pub(crate) fn first_kubeconfig_entry(value: &str) -> Option<PathBuf> {
    value
        .split(':')
        .find(|entry| !entry.is_empty())
        .map(PathBuf::from)
}

/// A Linux interface name: 1-15 bytes, no `/`, no whitespace, not `.` or `..`.
pub fn check_interface_name(name: &str) -> ParseResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b < 0x20);
    ok.then_some(()).ok_or_else(|| {
        "must be an interface name (1-15 characters, no '/', ':' or spaces)".to_owned()
    })
}

/// A DNS-1123 subdomain (Kubernetes object names such as a Lease): at most 253 characters of
/// lower-case letters, digits, `-` and `.`, starting and ending alphanumeric.
pub fn check_dns_subdomain(name: &str) -> ParseResult<()> {
    let labels_ok = name.split('.').all(|label| check_dns_label(label).is_ok());
    (name.len() <= 253 && labels_ok)
        .then_some(())
        .ok_or_else(|| {
            "must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253)"
                .to_owned()
        })
}

/// A DNS-1123 label (Kubernetes namespaces): 1-63 lower-case letters, digits and `-`, starting
/// and ending alphanumeric.
pub fn check_dns_label(name: &str) -> ParseResult<()> {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| alnum(b) || b == b'-')
        && name.bytes().next().is_some_and(alnum)
        && name.bytes().last().is_some_and(alnum);
    ok.then_some(()).ok_or_else(|| {
        "must be a DNS-1123 label (1-63 lower-case letters, digits and '-')".to_owned()
    })
}

/// The node name: 1-253 printable characters without spaces (it becomes the Lease's
/// holderIdentity and a log field).
pub fn check_node_name(name: &str) -> ParseResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| !c.is_whitespace() && !c.is_control());
    ok.then_some(())
        .ok_or_else(|| "must be 1-253 characters without spaces".to_owned())
}
