//! The systemd unit passes `systemd-analyze verify` with every hardening line the issue asks for,
//! and the env file gives back exactly the flags' values when read by systemd's rules and by a
//! POSIX shell, whatever characters a password holds.

use std::process::Command;

use super::{EXAMPLE_FLAGS, manifest};

/// Lines the unit must contain verbatim.
const REQUIRED_LINES: &[&str] = &[
    "Before=rke2-server.service",
    "Wants=network-online.target",
    "After=network-online.target",
    "Restart=always",
    "RestartSec=1",
    "ExecStart=/usr/local/bin/cpvip run",
    "EnvironmentFile=/etc/default/cpvip",
    "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
    "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_PACKET AF_UNIX",
    "SystemCallArchitectures=native",
    "KillSignal=SIGTERM",
    "TimeoutStopSec=5",
];

#[test]
fn unit_has_the_required_lines_and_passes_systemd_analyze_verify() {
    cpvip_lab::netns::require_binary("systemd-analyze", "apt-get install -y systemd");
    let (unit, _) = manifest("systemd", EXAMPLE_FLAGS);
    for line in REQUIRED_LINES {
        assert!(
            unit.lines().any(|l| l == *line),
            "the unit lacks {line:?}:\n{unit}"
        );
    }
    assert!(
        !unit.contains("cpvip-example-md5"),
        "the unit never holds flags (the env file does)"
    );
    // verify checks that ExecStart's binary exists: point it at the binary under test.
    let dir = cpvip_lab::netns::TempDir::new("manifest-unit").expect("temp dir");
    let unit = unit.replace(
        "ExecStart=/usr/local/bin/cpvip run",
        &format!("ExecStart={} run", env!("CARGO_BIN_EXE_cpvip")),
    );
    let path = dir.write("cpvip.service", &unit).expect("write the unit");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // verify exits 0 on unknown keys and unparsable values, only saying "ignoring": any output
    // at all is a defect.
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: status {:?}\n{stderr}",
        output.status
    );
}

#[test]
fn the_unit_needs_no_flags_and_says_where_given_ones_go() {
    let (bare, stderr) = manifest("systemd", &[]);
    assert!(stderr.is_empty(), "no flags, no warning: {stderr}");
    let (with_flags, stderr) = manifest("systemd", EXAMPLE_FLAGS);
    assert_eq!(bare, with_flags, "flags do not go into the unit");
    assert!(stderr.contains("cpvip manifest env"), "{stderr}");
    let output = super::cpvip(&["manifest", "systemd", "--vip", "nope"], &[]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "given flags are still validated"
    );
}

#[test]
fn a_kubeconfig_under_a_home_directory_stays_readable() {
    let mut flags = EXAMPLE_FLAGS.to_vec();
    flags.extend_from_slice(&["--kubeconfig", "/root/.kube/config"]);
    let (unit, _) = manifest("systemd", &flags);
    assert!(unit.lines().any(|l| l == "ProtectHome=read-only"), "{unit}");
}

/// Reads an environment file the way systemd's `EnvironmentFile=` does (env-file.c): comments
/// start with `#` or `;` at the start of a line; `KEY=VALUE` with leading blanks skipped; double
/// quotes with `\` escaping `"`, `\`, `` ` `` and `$`; single quotes literal; unquoted values with
/// `\` escaping the next character and trailing blanks dropped.
pub fn parse_like_systemd(text: &str) -> Vec<(String, String)> {
    #[derive(PartialEq)]
    enum State {
        PreKey,
        Key,
        PreValue,
        Value,
        ValueEscape,
        SingleQuote,
        DoubleQuote,
        DoubleQuoteEscape,
        Comment,
    }
    let mut pairs = Vec::new();
    let (mut key, mut value) = (String::new(), String::new());
    let mut trailing_blanks = 0;
    let mut state = State::PreKey;
    let mut finish = |key: &mut String, value: &mut String, trailing: &mut usize| {
        value.truncate(value.len() - *trailing);
        pairs.push((key.trim_end().to_owned(), std::mem::take(value)));
        key.clear();
        *trailing = 0;
    };
    for c in text.chars().chain(std::iter::once('\n')) {
        state = match state {
            State::PreKey if c == '#' || c == ';' => State::Comment,
            State::PreKey if c.is_whitespace() => State::PreKey,
            State::PreKey | State::Key if c == '=' => State::PreValue,
            State::PreKey | State::Key if c == '\n' => {
                key.clear();
                State::PreKey
            }
            State::PreKey | State::Key => {
                key.push(c);
                State::Key
            }
            State::PreValue if c == ' ' || c == '\t' => State::PreValue,
            State::PreValue | State::Value if c == '\n' => {
                finish(&mut key, &mut value, &mut trailing_blanks);
                State::PreKey
            }
            State::PreValue | State::Value if c == '"' => State::DoubleQuote,
            State::PreValue | State::Value if c == '\'' => State::SingleQuote,
            State::PreValue | State::Value if c == '\\' => State::ValueEscape,
            State::PreValue | State::Value => {
                trailing_blanks = if c == ' ' || c == '\t' {
                    trailing_blanks + 1
                } else {
                    0
                };
                value.push(c);
                State::Value
            }
            State::ValueEscape => {
                if c != '\n' {
                    value.push(c);
                }
                trailing_blanks = 0;
                State::Value
            }
            State::SingleQuote if c == '\'' => State::Value,
            State::SingleQuote => {
                value.push(c);
                State::SingleQuote
            }
            State::DoubleQuote if c == '"' => {
                trailing_blanks = 0;
                State::Value
            }
            State::DoubleQuote if c == '\\' => State::DoubleQuoteEscape,
            State::DoubleQuote => {
                value.push(c);
                State::DoubleQuote
            }
            State::DoubleQuoteEscape => {
                if matches!(c, '"' | '\\' | '`' | '$') {
                    value.push(c);
                } else if c != '\n' {
                    value.push('\\');
                    value.push(c);
                }
                State::DoubleQuote
            }
            State::Comment if c == '\n' => State::PreKey,
            State::Comment => State::Comment,
        };
    }
    pairs
}

/// Reads an environment file with bash (`set -a; . FILE`) and returns its `CPVIP_*` variables.
fn parse_like_bash(path: &std::path::Path) -> Vec<(String, String)> {
    let output = Command::new("bash")
        .args(["-c", "set -a; . \"$1\"; env -0", "bash"])
        .arg(path)
        .env_clear()
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "bash cannot source the env file");
    let mut pairs: Vec<(String, String)> = String::from_utf8(output.stdout)
        .expect("UTF-8")
        .split('\0')
        .filter_map(|entry| entry.split_once('='))
        .filter(|(name, _)| name.starts_with("CPVIP_"))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn env_file_round_trips_through_systemd_and_shell_quoting() {
    // Any character but ',' and ';' (the spec and list separators) may be in a password.
    let tricky = "10.99.0.1,as=65000,password=a\"b\\c$HOME`id` #x 'z' ";
    let flags = [
        "--vip",
        "10.99.200.1;fd99:200::1",
        "--bgp-as",
        "65001",
        "--bgp-peer",
        tricky,
        "--bgp-community",
        "65001:1",
        "--bgp-community",
        "no-export",
        "--no-garp",
    ];
    let (text, stderr) = manifest("env", &flags);
    assert!(
        stderr.contains("mode 0600"),
        "a password gets a warning: {stderr}"
    );
    let mut expected = vec![
        ("CPVIP_VIP".to_owned(), "10.99.200.1;fd99:200::1".to_owned()),
        ("CPVIP_BGP_AS".to_owned(), "65001".to_owned()),
        ("CPVIP_BGP_PEER".to_owned(), tricky.to_owned()),
        (
            "CPVIP_BGP_COMMUNITY".to_owned(),
            "65001:1;no-export".to_owned(),
        ),
        ("CPVIP_NO_GARP".to_owned(), "true".to_owned()),
    ];
    assert_eq!(
        parse_like_systemd(&text),
        expected,
        "systemd's reading:\n{text}"
    );
    let dir = cpvip_lab::netns::TempDir::new("manifest-env").expect("temp dir");
    let path = dir.write("cpvip", &text).expect("write the env file");
    expected.sort();
    assert_eq!(
        parse_like_bash(&path),
        expected,
        "the shell's reading:\n{text}"
    );
}

#[test]
fn the_systemd_reader_follows_systemd_on_known_cases() {
    // Cases whose systemd reading is documented in systemd.exec(5) / env-file.c.
    let text = "# comment\n; also a comment\n  A=plain  \nB=\"x\\\"y\\$z\"\nC='a\\b'\nD=1\\ 2\n";
    assert_eq!(
        parse_like_systemd(text),
        vec![
            ("A".to_owned(), "plain".to_owned()),
            ("B".to_owned(), "x\"y$z".to_owned()),
            ("C".to_owned(), "a\\b".to_owned()),
            ("D".to_owned(), "1 2".to_owned()),
        ]
    );
}
