//! `cpvip manifest systemd` and `cpvip manifest env`: a hardened systemd unit that starts before
//! `rke2-server.service`, and the `/etc/default/cpvip` file holding its flags as `CPVIP_*`
//! variables.
//!
//! The unit carries no flags (so it can be world-readable while the env file, which may hold a BGP
//! password, is mode 0600). It runs as root because RKE2's kubeconfig is a root-only file, but
//! with a capability bounding set of NET_ADMIN (netlink: the VIP), NET_RAW (gratuitous ARP / NA)
//! and NET_BIND_SERVICE (port 179 for passive peers), and a read-only view of the system.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::{Rendered, carried_flag_warnings, validate};
use crate::cli::RunArgs;
use crate::config::{ConfigError, Validated, defaults};

/// Where the unit is installed.
pub const UNIT_PATH: &str = "/etc/systemd/system/cpvip.service";
/// The unit's `EnvironmentFile=`.
pub const ENV_FILE_PATH: &str = "/etc/default/cpvip";
/// The binary the unit starts.
pub const DEFAULT_EXEC_PATH: &str = "/usr/local/bin/cpvip";

/// Exit status of `cpvip run` for a configuration error (DESIGN.md): restarting cannot help.
const EXIT_USAGE: u8 = 2;

/// Directories `ProtectHome=yes` hides; a kubeconfig inside one needs `ProtectHome=read-only`.
const HOME_DIRS: [&str; 3] = ["/home", "/root", "/run/user"];

/// The unit needs no flags; given ones are validated (their kubeconfig path decides
/// `ProtectHome=`) and the operator is reminded that they belong in the env file.
pub(super) fn render_unit(run: &RunArgs) -> Result<Rendered, ConfigError> {
    let mut warnings = Vec::new();
    let kubeconfig = if run.to_env().is_empty() {
        PathBuf::from(defaults::KUBECONFIG)
    } else {
        let validated = validate(run)?;
        warnings.push(format!(
            "the unit carries no flags: put them in {ENV_FILE_PATH} with `cpvip manifest env` \
             and the same flags"
        ));
        validated.config.kubeconfig.path
    };
    Ok(Rendered {
        text: unit_text(&kubeconfig, DEFAULT_EXEC_PATH),
        warnings,
    })
}

pub(super) fn render_env(run: &RunArgs, validated: &Validated) -> Rendered {
    let warnings = carried_flag_warnings(
        run,
        validated,
        &format!("install it as {ENV_FILE_PATH} with mode 0600 (install -m 0600 ...)"),
    );
    Rendered {
        text: env_file(run),
        warnings,
    }
}

/// The unit, starting `exec_path run` (tests point it at a binary that exists); `kubeconfig` is
/// the file the daemon will read, which must stay visible through the sandbox.
pub fn unit_text(kubeconfig: &Path, exec_path: &str) -> String {
    let kubeconfig_in_home = HOME_DIRS
        .iter()
        .any(|dir| kubeconfig.starts_with(Path::new(dir)));
    let protect_home = if kubeconfig_in_home {
        "read-only"
    } else {
        "yes"
    };
    let capabilities = "CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE";
    let mut unit = String::new();
    let _ = write!(
        unit,
        "\
# cpvip systemd unit, rendered by `cpvip manifest systemd` (cpvip {version}).
# Install as {UNIT_PATH}; the flags live in {ENV_FILE_PATH} (`cpvip manifest env`, mode 0600).
[Unit]
Description=cpvip: control-plane virtual IP announced by BGP
Documentation=https://github.com/cpvip/cpvip/blob/main/docs/operator-guide.md
Wants=network-online.target
After=network-online.target
# The VIP is RKE2's fixed registration address: serve it before rke2-server needs it.
Before=rke2-server.service
# Never stop restarting a daemon that failed at run time.
StartLimitIntervalSec=0

[Service]
Type=exec
EnvironmentFile={ENV_FILE_PATH}
ExecStart={exec_path} run
Restart=always
RestartSec=1
# Exit status {EXIT_USAGE} is a configuration error: fix {ENV_FILE_PATH} instead of looping.
RestartPreventExitStatus={EXIT_USAGE}
# SIGTERM: withdraw, BGP Cease, release the Lease, unbind the VIP (bounded at 3 s).
KillSignal=SIGTERM
TimeoutStopSec=5
# Root (RKE2's kubeconfig is root-only) with three capabilities: NET_ADMIN for the VIP (netlink),
# NET_RAW for gratuitous ARP / NA, NET_BIND_SERVICE for port 179 (passive peers).
CapabilityBoundingSet={capabilities}
AmbientCapabilities={capabilities}
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome={protect_home}
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_PACKET AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
UMask=0077

[Install]
WantedBy=multi-user.target
",
        version = env!("CARGO_PKG_VERSION"),
    );
    unit
}

/// The `/etc/default/cpvip` text: a header and one `CPVIP_NAME="value"` line per flag given.
pub fn env_file(run: &RunArgs) -> String {
    let mut text = format!(
        "\
# {ENV_FILE_PATH}: the flags of `cpvip run` for cpvip.service, rendered by `cpvip manifest env`
# (cpvip {version}). Mode 0600: it may hold a BGP password. Unset flags take their defaults on
# the node (node name = hostname, router id = address towards the first peer).
",
        version = env!("CARGO_PKG_VERSION"),
    );
    for (name, value) in run.to_env() {
        let _ = writeln!(text, "{name}={}", env_file_quote(&value));
    }
    text
}

/// Quotes a value for a systemd `EnvironmentFile=` (and, the same rules, a POSIX shell): inside
/// double quotes, `\`, `"`, `$` and `` ` `` are escaped with a backslash; everything else,
/// including `;`, `#` and spaces, is literal.
pub fn env_file_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_only_what_double_quotes_interpret() {
        assert_eq!(env_file_quote("10.0.0.1;fd00::1"), "\"10.0.0.1;fd00::1\"");
        assert_eq!(env_file_quote("a\"b\\c$d`e"), "\"a\\\"b\\\\c\\$d\\`e\"");
        assert_eq!(env_file_quote("# x 'y'"), "\"# x 'y'\"");
        assert_eq!(env_file_quote(""), "\"\"");
    }

    #[test]
    fn protect_home_relaxes_only_for_a_kubeconfig_in_a_home() {
        let protect = |path: &str| {
            unit_text(Path::new(path), DEFAULT_EXEC_PATH)
                .lines()
                .find(|line| line.starts_with("ProtectHome="))
                .map(str::to_owned)
        };
        assert_eq!(
            protect(defaults::KUBECONFIG).as_deref(),
            Some("ProtectHome=yes")
        );
        assert_eq!(
            protect("/root/.kube/config").as_deref(),
            Some("ProtectHome=read-only")
        );
        assert_eq!(
            protect("/home/ops/kc").as_deref(),
            Some("ProtectHome=read-only")
        );
        assert_eq!(protect("/homes/kc").as_deref(), Some("ProtectHome=yes"));
    }
}
