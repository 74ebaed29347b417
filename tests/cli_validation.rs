//! Runs the real `cpvip` binary with invalid command lines and environments and checks the CLI
//! contract: exit status 2 and exactly one stderr line `error: --flag …` naming the flag at fault.

use std::process::{Command, Output};

const VIP: &[&str] = &["--vip", "10.0.0.1"];

/// Runs `cpvip <args>` with an empty environment plus `env`.
fn cpvip(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cpvip"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the cpvip binary runs")
}

/// Asserts the contract for one invalid invocation and returns the error line.
fn assert_rejected(args: &[&str], env: &[(&str, &str)], flag: &str) -> String {
    let output = cpvip(args, env);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let context = format!("args {args:?} env {env:?}: stderr {stderr:?}");
    assert_eq!(output.status.code(), Some(2), "exit status 2 for {context}");
    assert_eq!(stderr.lines().count(), 1, "exactly one line for {context}");
    let line = stderr.trim_end();
    let named = line
        .strip_prefix("error: ")
        .and_then(|rest| rest.strip_prefix(flag));
    assert!(
        named.is_some_and(|rest| rest.starts_with(' ') || rest.starts_with(':')),
        "the line must start with `error: {flag}` for {context}"
    );
    assert!(output.stdout.is_empty(), "nothing on stdout for {context}");
    line.to_owned()
}

/// `run --vip 10.0.0.1` followed by `extra`.
fn with_vip(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec!["run"];
    args.extend_from_slice(VIP);
    args.extend_from_slice(extra);
    args
}

#[test]
fn invalid_command_lines_exit_2_naming_the_flag() {
    let long_password = format!("10.0.0.2,as=65000,password={}", "p".repeat(81));
    let long_password: &'static str = Box::leak(long_password.into_boxed_str());
    let peer = |spec: &'static str| vec!["--bgp-as", "65001", "--bgp-peer", spec];
    #[rustfmt::skip]
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run"], "--vip"),
        (vec!["run", "--vip", "abc"], "--vip"),
        (vec!["run", "--vip", "0.0.0.0"], "--vip"),
        (vec!["run", "--vip", "224.0.0.1"], "--vip"),
        (vec!["run", "--vip", "127.0.0.1"], "--vip"),
        (vec!["run", "--vip", "fe80::1"], "--vip"),
        (vec!["run", "--vip", "10.0.0.1/32"], "--vip"),
        (vec!["run", "--vip", "10.0.0.1", "--vip", "10.0.0.1"], "--vip"),
        (vec!["run", "--vip", "10.0.0.1;2001:db8::1;10.0.0.1"], "--vip"),
        (with_vip(&["--interface", ""]), "--interface"),
        (with_vip(&["--interface", "averyverylongname0"]), "--interface"),
        (with_vip(&["--interface", "eth/0"]), "--interface"),
        (with_vip(&["--mode", "active"]), "--mode"),
        (with_vip(&["--node-name", "a b"]), "--node-name"),
        (with_vip(&["--kubeconfig", ""]), "--kubeconfig"),
        (with_vip(&["--lease-name", "Bad_Name"]), "--lease-name"),
        (with_vip(&["--lease-namespace", "kube.system"]), "--lease-namespace"),
        (with_vip(&["--lease-duration", "5"]), "--lease-duration"),
        (with_vip(&["--lease-duration", "0s"]), "--lease-duration"),
        (with_vip(&["--renew-deadline", "5s"]), "--renew-deadline"),
        (with_vip(&["--renew-deadline", "1200ms", "--retry-period", "1s"]), "--renew-deadline"),
        (with_vip(&["--retry-period", "1x"]), "--retry-period"),
        (with_vip(&["--bgp-as", "0"]), "--bgp-as"),
        (with_vip(&["--bgp-as", "65536.1"]), "--bgp-as"),
        (with_vip(&["--bgp-as", "23456"]), "--bgp-as"),
        (with_vip(&["--bgp-peer", "10.0.0.2,as=65000"]), "--bgp-as"),
        (with_vip(&peer("10.0.0.2")), "--bgp-peer"),
        (with_vip(&peer("10.0.0.2,as=65000,port=0")), "--bgp-peer"),
        (with_vip(&peer("10.0.0.2,as=65000,multihop=2,gtsm")), "--bgp-peer"),
        (with_vip(&peer("10.0.0.2,as=65000,bfd,multihop=3")), "--bgp-peer"),
        (with_vip(&peer("10.0.0.2,as=65000,md5=x")), "--bgp-peer"),
        (with_vip(&peer("10.0.0.2,as=65000,source=2001:db8::1")), "--bgp-peer"),
        (with_vip(&peer("router1,as=65000")), "--bgp-peer"),
        (with_vip(&peer("10.0.0.2,as=65000,gtsm=yes")), "--bgp-peer"),
        (with_vip(&peer("10.0.0.2,as=65000,as=65002")), "--bgp-peer"),
        (with_vip(&peer(long_password)), "--bgp-peer"),
        (with_vip(&["--bgp-as", "65001", "--bgp-peer", "10.0.0.2,as=1", "--bgp-peer", "10.0.0.2,as=2"]), "--bgp-peer"),
        (with_vip(&["--bgp-router-id", "2001:db8::1"]), "--bgp-router-id"),
        (with_vip(&["--bgp-router-id", "0.0.0.0"]), "--bgp-router-id"),
        (with_vip(&["--bgp-hold-time", "2s"]), "--bgp-hold-time"),
        (with_vip(&["--bgp-hold-time", "1500ms"]), "--bgp-hold-time"),
        (with_vip(&["--bgp-community", "65536:1"]), "--bgp-community"),
        (with_vip(&["--bgp-community", "no-export", "--bgp-community", "no-export"]), "--bgp-community"),
        (with_vip(&["--bgp-large-community", "1:2"]), "--bgp-large-community"),
        (with_vip(&["--bgp-med", "-1"]), "--bgp-med"),
        (with_vip(&["--bgp-local-pref", "4294967296"]), "--bgp-local-pref"),
        (with_vip(&["--bgp-next-hop", "0.0.0.0"]), "--bgp-next-hop"),
        (with_vip(&["--bfd-interval", "5ms"]), "--bfd-interval"),
        (with_vip(&["--bfd-multiplier", "0"]), "--bfd-multiplier"),
        (with_vip(&["--health-check", "ftp://x"]), "--health-check"),
        (with_vip(&["--health-check", "tcp://localhost"]), "--health-check"),
        (with_vip(&["--health-check", "https://h/,cert=x"]), "--health-check"),
        (with_vip(&["--no-health-check", "--health-check", "apiserver"]), "--no-health-check"),
        (with_vip(&["--health-interval", "0s"]), "--health-interval"),
        (with_vip(&["--health-timeout", "2s"]), "--health-timeout"),
        (with_vip(&["--health-rise", "0"]), "--health-rise"),
        (with_vip(&["--health-fall", "x"]), "--health-fall"),
        (with_vip(&["--garp", "--no-garp"]), "--no-garp"),
        (with_vip(&["--http-listen", "localhost:2112"]), "--http-listen"),
        (with_vip(&["--log-format", "yaml"]), "--log-format"),
        (with_vip(&["--log-level", "verbose"]), "--log-level"),
        (vec!["status", "--http", "nowhere"], "--http"),
        (vec!["manifest", "pod", "--vip", "300.1.1.1"], "--vip"),
    ];
    assert!(cases.len() >= 35, "the contract asks for at least 35 cases");
    for (args, flag) in &cases {
        let line = assert_rejected(args, &[], flag);
        assert!(
            !line.contains(&"p".repeat(81)),
            "a password must not be echoed: {line}"
        );
    }
}

#[test]
fn the_documented_example_message_is_exact() {
    let args = with_vip(&["--bgp-as", "65001", "--bgp-peer", "10.0.0.1,as=abc"]);
    assert_eq!(
        assert_rejected(&args, &[], "--bgp-peer"),
        r#"error: --bgp-peer "10.0.0.1,as=abc": as must be an ASN (1-4294967295 or X.Y)"#
    );
}

#[test]
fn a_rejected_peer_spec_never_shows_its_password() {
    let args = with_vip(&[
        "--bgp-as",
        "65001",
        "--bgp-peer",
        "10.0.0.1,password=hunter2,as=x",
    ]);
    let line = assert_rejected(&args, &[], "--bgp-peer");
    assert!(!line.contains("hunter2"), "{line}");
    assert!(line.contains("password=<redacted>"), "{line}");
}

#[test]
fn environment_variables_are_read_and_validated_like_flags() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        ("CPVIP_VIP", "10.0.0.1;10.0.0.1", "--vip"),
        ("CPVIP_INTERFACE", "a/b", "--interface"),
        ("CPVIP_MODE", "both", "--mode"),
        ("CPVIP_NODE_NAME", "a b", "--node-name"),
        ("CPVIP_LEASE_NAME", "UPPER", "--lease-name"),
        ("CPVIP_LEASE_NAMESPACE", "-x", "--lease-namespace"),
        ("CPVIP_LEASE_DURATION", "3s", "--renew-deadline"),
        ("CPVIP_RENEW_DEADLINE", "3", "--renew-deadline"),
        ("CPVIP_RETRY_PERIOD", "3s", "--renew-deadline"),
        ("CPVIP_BGP_AS", "x", "--bgp-as"),
        ("CPVIP_BGP_ROUTER_ID", "x", "--bgp-router-id"),
        ("CPVIP_BGP_PEER", "10.0.0.2,as=65000", "--bgp-as"),
        ("CPVIP_BGP_HOLD_TIME", "1s", "--bgp-hold-time"),
        ("CPVIP_BGP_COMMUNITY", "1:1;1:1", "--bgp-community"),
        ("CPVIP_BGP_LARGE_COMMUNITY", "1:1:1;x", "--bgp-large-community"),
        ("CPVIP_BGP_MED", "x", "--bgp-med"),
        ("CPVIP_BGP_LOCAL_PREF", "x", "--bgp-local-pref"),
        ("CPVIP_BGP_NEXT_HOP", "x", "--bgp-next-hop"),
        ("CPVIP_BFD_INTERVAL", "1m1ms", "--bfd-interval"),
        ("CPVIP_BFD_MULTIPLIER", "256", "--bfd-multiplier"),
        ("CPVIP_HEALTH_CHECK", "apiserver;apiserver", "--health-check"),
        ("CPVIP_HEALTH_INTERVAL", "x", "--health-interval"),
        ("CPVIP_HEALTH_TIMEOUT", "x", "--health-timeout"),
        ("CPVIP_HEALTH_RISE", "x", "--health-rise"),
        ("CPVIP_HEALTH_FALL", "x", "--health-fall"),
        ("CPVIP_HTTP_LISTEN", "x", "--http-listen"),
        ("CPVIP_LOG_FORMAT", "x", "--log-format"),
        ("CPVIP_LOG_LEVEL", "x", "--log-level"),
    ];
    for (variable, value, flag) in cases {
        // --vip on the command line would hide CPVIP_VIP.
        let args = if *variable == "CPVIP_VIP" {
            vec!["run"]
        } else {
            with_vip(&[])
        };
        assert_rejected(&args, &[(variable, value)], flag);
    }
    // Switches and peers from the environment, combined with command-line values.
    assert_rejected(
        &with_vip(&["--health-check", "apiserver"]),
        &[("CPVIP_NO_HEALTH_CHECK", "true")],
        "--no-health-check",
    );
    assert_rejected(
        &with_vip(&["--garp"]),
        &[("CPVIP_NO_GARP", "true")],
        "--no-garp",
    );
    let peers = "10.0.0.2,as=65000,password=s3cret;10.0.0.2,as=65002";
    let line = assert_rejected(
        &with_vip(&["--bgp-as", "65001"]),
        &[("CPVIP_BGP_PEER", peers)],
        "--bgp-peer",
    );
    assert!(line.contains("10.0.0.2 is given twice"), "{line}");
    // A flag given on the command line wins over its variable.
    assert_rejected(
        &["run", "--vip", "x"],
        &[("CPVIP_VIP", "10.0.0.1")],
        "--vip",
    );
    assert_rejected(&["run"], &[("CPVIP_VIP", "")], "--vip");
}

#[test]
fn clap_usage_errors_also_exit_2() {
    for args in [
        &["run", "--no-such-flag"][..],
        &["run", "--vip"],
        &["no-such-command"],
        &["manifest", "helm"],
        &[],
    ] {
        let output = cpvip(args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn help_and_version_exit_0() {
    let help = cpvip(&["run", "--help"], &[]);
    assert_eq!(help.status.code(), Some(0));
    let long_version = cpvip(&["--version"], &[]);
    assert_eq!(long_version.status.code(), Some(0));
    let version = cpvip(&["version"], &[]);
    assert_eq!(
        version.stdout, long_version.stdout,
        "cpvip version = cpvip --version"
    );
    assert_eq!(version.status.code(), Some(0));
    let line = String::from_utf8(version.stdout).expect("utf-8");
    let rest = line
        .strip_prefix(concat!("cpvip ", env!("CARGO_PKG_VERSION"), " (commit "))
        .unwrap_or_else(|| panic!("version line {line:?}"));
    let commit = rest.trim_end().trim_end_matches(')');
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "a git commit or unknown: {line:?}"
    );
}

#[test]
fn run_help_shows_every_design_flag_with_env_and_default() {
    const DESIGN_FLAGS: &[&str] = &[
        "vip",
        "interface",
        "mode",
        "node-name",
        "kubeconfig",
        "lease-name",
        "lease-namespace",
        "lease-duration",
        "renew-deadline",
        "retry-period",
        "bgp-as",
        "bgp-router-id",
        "bgp-peer",
        "bgp-hold-time",
        "bgp-community",
        "bgp-large-community",
        "bgp-med",
        "bgp-local-pref",
        "bgp-next-hop",
        "bfd-interval",
        "bfd-multiplier",
        "health-check",
        "no-health-check",
        "health-interval",
        "health-timeout",
        "health-rise",
        "health-fall",
        "garp",
        "no-garp",
        "http-listen",
        "log-format",
        "log-level",
    ];
    let output = cpvip(&["run", "--help"], &[]);
    let help = String::from_utf8(output.stdout).expect("utf-8 help");
    for flag in DESIGN_FLAGS {
        let env = format!("[env: CPVIP_{}", flag.to_uppercase().replace('-', "_"));
        // An entry starts at its `--flag` and runs to the next flag (help text may wrap).
        let entry_start = help
            .match_indices(&format!("--{flag}"))
            .map(|(at, _)| at)
            .find(|&at| {
                let line_start = help[..at].rsplit('\n').next().unwrap_or_default();
                let after = help[at + flag.len() + 2..].chars().next();
                line_start.trim().is_empty() && matches!(after, Some(' ' | '\n'))
            })
            .unwrap_or_else(|| panic!("--{flag} missing from run --help:\n{help}"));
        let rest = &help[entry_start..];
        let entry = &rest[..rest[2..]
            .find("\n      --")
            .map_or(rest.len(), |end| end + 2)];
        assert!(entry.contains(&env), "--{flag} must show {env}: {entry}");
        assert!(
            entry.contains("[default: "),
            "--{flag} must show its default: {entry}"
        );
    }
}
