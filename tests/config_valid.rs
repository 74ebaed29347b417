//! Valid command lines become exactly the expected `Config` (whole structs compared), the
//! defaults stated in `run --help` are the defaults applied, and secrets stay out of `Debug`
//! and JSON.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use cpvip::cli::{Cli, Command, RunArgs};
use cpvip::config::{
    Asn, BfdConfig, BgpConfig, Community, Config, HealthCheckSpec, HealthConfig, HostFacts,
    Kubeconfig, KubeconfigSource, LargeCommunity, LeaseConfig, LogConfig, LogFormat, Mode,
    PeerSpec, Secret, Validated,
};

fn host() -> HostFacts {
    HostFacts {
        hostname: Some("CP-Node-1".into()),
        kubeconfig_env: None,
    }
}

fn run_args(args: &[&str]) -> RunArgs {
    let argv = ["cpvip", "run"].iter().chain(args);
    match Cli::try_parse_from(argv)
        .expect("clap accepts the line")
        .command
    {
        Command::Run(run) => run,
        other => panic!("expected run, got {other:?}"),
    }
}

fn validate(args: &[&str], host: &HostFacts) -> Validated {
    Config::from_args(&run_args(args), host)
        .unwrap_or_else(|error| panic!("{args:?} should be valid: {error}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test literal")
}

/// The configuration of `cpvip run --vip 10.0.0.1` on host CP-Node-1 without $KUBECONFIG.
fn base() -> Config {
    Config {
        vips: vec![ip("10.0.0.1")],
        interface: "lo".into(),
        mode: Mode::Leader,
        node_name: "cp-node-1".into(),
        kubeconfig: Kubeconfig {
            path: PathBuf::from("/etc/rancher/rke2/rke2.yaml"),
            source: KubeconfigSource::Default,
        },
        lease: LeaseConfig {
            name: "cpvip".into(),
            namespace: "kube-system".into(),
            duration: Duration::from_secs(5),
            renew_deadline: Duration::from_secs(3),
            retry_period: Duration::from_secs(1),
        },
        bgp: BgpConfig {
            local_as: None,
            router_id: None,
            peers: vec![],
            hold_time: Duration::from_secs(3),
            communities: vec![],
            large_communities: vec![],
            med: None,
            local_pref: None,
            next_hop: None,
        },
        bfd: BfdConfig {
            interval: Duration::from_millis(100),
            multiplier: 3,
        },
        health: HealthConfig {
            checks: vec![HealthCheckSpec::Apiserver, HealthCheckSpec::Supervisor],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
        },
        garp: false,
        http_listen: "127.0.0.1:2112".parse().expect("literal"),
        log: LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        },
    }
}

fn peer(address: &str, asn: u32) -> PeerSpec {
    PeerSpec {
        address: ip(address),
        asn: Asn(asn),
        port: 179,
        password: None,
        multihop: None,
        gtsm: false,
        bfd: false,
        source: None,
        passive: false,
    }
}

type Case = (&'static [&'static str], fn(&mut Config));

#[rustfmt::skip]
const CASES: &[Case] = &[
    (&["--vip", "10.0.0.1"], |_| {}),
    (&["--vip", "10.0.0.1", "--vip", "2001:db8::10"], |c| c.vips.push(ip("2001:db8::10"))),
    (&["--vip", "10.0.0.1;10.0.0.2"], |c| c.vips.push(ip("10.0.0.2"))),
    (&["--vip", "10.0.0.1", "--interface", "eth0"], |c| { c.interface = "eth0".into(); c.garp = true; }),
    (&["--vip", "10.0.0.1", "--interface", "eth0", "--no-garp"], |c| c.interface = "eth0".into()),
    (&["--vip", "10.0.0.1", "--garp"], |c| c.garp = true),
    (&["--vip", "10.0.0.1", "--mode", "anycast"], |c| c.mode = Mode::Anycast),
    (&["--vip", "10.0.0.1", "--node-name", "cp-1.example"], |c| c.node_name = "cp-1.example".into()),
    (&["--vip", "10.0.0.1", "--kubeconfig", "/tmp/k.yaml"], |c| {
        c.kubeconfig = Kubeconfig { path: "/tmp/k.yaml".into(), source: KubeconfigSource::Flag };
    }),
    (&["--vip", "10.0.0.1", "--lease-name", "cp.vip", "--lease-namespace", "cpvip-system",
       "--lease-duration", "15s", "--renew-deadline", "10s", "--retry-period", "2s"], |c| {
        c.lease = LeaseConfig { name: "cp.vip".into(), namespace: "cpvip-system".into(),
            duration: Duration::from_secs(15), renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2) };
    }),
    // client-go's boundary: 1201ms > 1.2 x 1s.
    (&["--vip", "10.0.0.1", "--renew-deadline", "1201ms"], |c| c.lease.renew_deadline = Duration::from_millis(1201)),
    (&["--vip", "10.0.0.1", "--bgp-as", "1.10", "--bgp-peer",
       "10.0.0.2,as=65002,port=1179,password=s3cret,multihop=2,source=10.0.0.1,passive"], |c| {
        c.bgp.local_as = Some(Asn(65_546));
        c.bgp.peers = vec![PeerSpec { port: 1179, password: Some(Secret::new("s3cret")),
            multihop: Some(2), source: Some(ip("10.0.0.1")), passive: true, ..peer("10.0.0.2", 65002) }];
    }),
    (&["--vip", "10.0.0.1", "--bgp-as", "65001", "--bgp-peer", "10.0.0.2,as=65002,gtsm,bfd",
       "--bgp-peer", "2001:db8::2,as=4200000000"], |c| {
        c.bgp.local_as = Some(Asn(65001));
        c.bgp.peers = vec![PeerSpec { gtsm: true, bfd: true, ..peer("10.0.0.2", 65002) },
            peer("2001:db8::2", 4_200_000_000)];
    }),
    (&["--vip", "10.0.0.1", "--bgp-router-id", "192.0.2.7", "--bgp-hold-time", "0s"], |c| {
        c.bgp.router_id = Some("192.0.2.7".parse().expect("literal"));
        c.bgp.hold_time = Duration::ZERO;
    }),
    (&["--vip", "10.0.0.1", "--bgp-hold-time", "1m30s"], |c| c.bgp.hold_time = Duration::from_secs(90)),
    (&["--vip", "10.0.0.1", "--bgp-community", "65000:1", "--bgp-community", "no-export",
       "--bgp-large-community", "4200000000:1:2", "--bgp-med", "10", "--bgp-local-pref", "200",
       "--bgp-next-hop", "192.0.2.1"], |c| {
        c.bgp.communities = vec![Community(65000 << 16 | 1), Community(0xFFFF_FF01)];
        c.bgp.large_communities = vec![LargeCommunity { global: 4_200_000_000, local1: 1, local2: 2 }];
        c.bgp.med = Some(10);
        c.bgp.local_pref = Some(200);
        c.bgp.next_hop = Some(ip("192.0.2.1"));
    }),
    (&["--vip", "10.0.0.1", "--bfd-interval", "50ms", "--bfd-multiplier", "5"], |c| {
        c.bfd = BfdConfig { interval: Duration::from_millis(50), multiplier: 5 };
    }),
    (&["--vip", "10.0.0.1", "--health-check", "tcp://127.0.0.1:6443",
       "--health-check", "https://127.0.0.1:9345/ping,ca=/etc/ca.pem",
       "--health-check", "http://[::1]:8080/healthz"], |c| {
        c.health.checks = vec![
            HealthCheckSpec::Tcp { host: "127.0.0.1".into(), port: 6443 },
            HealthCheckSpec::Https { url: "https://127.0.0.1:9345/ping".into(), ca: Some("/etc/ca.pem".into()) },
            HealthCheckSpec::Http { url: "http://[::1]:8080/healthz".into() },
        ];
    }),
    (&["--vip", "10.0.0.1", "--no-health-check"], |c| c.health.checks.clear()),
    (&["--vip", "10.0.0.1", "--health-interval", "2s", "--health-timeout", "500ms",
       "--health-rise", "1", "--health-fall", "5"], |c| {
        c.health.interval = Duration::from_secs(2);
        c.health.timeout = Duration::from_millis(500);
        c.health.rise = 1;
        c.health.fall = 5;
    }),
    (&["--vip", "10.0.0.1", "--http-listen", "[::]:9000", "--log-format", "json",
       "--log-level", "cpvip=debug,info"], |c| {
        c.http_listen = "[::]:9000".parse().expect("literal");
        c.log = LogConfig { format: LogFormat::Json, level: "cpvip=debug,info".into() };
    }),
];

#[test]
fn valid_command_lines_become_the_expected_config() {
    assert!(CASES.len() >= 15);
    for (args, edit) in CASES {
        let mut want = base();
        edit(&mut want);
        assert_eq!(validate(args, &host()).config, want, "{args:?}");
    }
}

#[test]
fn kubeconfig_resolution_order() {
    let env_host = HostFacts {
        kubeconfig_env: Some(":/a/k.yaml:/b".into()),
        ..host()
    };
    let from_env = validate(&["--vip", "10.0.0.1"], &env_host)
        .config
        .kubeconfig;
    assert_eq!(
        from_env,
        Kubeconfig {
            path: "/a/k.yaml".into(),
            source: KubeconfigSource::Env
        }
    );
    let flag = validate(&["--vip", "10.0.0.1", "--kubeconfig", "/c"], &env_host)
        .config
        .kubeconfig;
    assert_eq!(
        flag,
        Kubeconfig {
            path: "/c".into(),
            source: KubeconfigSource::Flag
        }
    );
}

#[test]
fn a_missing_hostname_needs_node_name() {
    let no_host = HostFacts::default();
    let error =
        Config::from_args(&run_args(&["--vip", "10.0.0.1"]), &no_host).expect_err("no name");
    assert_eq!(error.flag, "--node-name");
    let named = validate(&["--vip", "10.0.0.1", "--node-name", "n1"], &no_host);
    assert_eq!(named.config.node_name, "n1");
}

#[test]
fn warnings_for_workable_but_doubtful_settings() {
    let missing = "/nonexistent/cpvip-test/kubeconfig";
    let v6_over_v4 = validate(
        &[
            "--vip",
            "2001:db8::10",
            "--bgp-as",
            "65001",
            "--bgp-peer",
            "10.0.0.2,as=65002",
            "--kubeconfig",
            missing,
        ],
        &host(),
    );
    assert_eq!(v6_over_v4.warnings.len(), 2, "{:?}", v6_over_v4.warnings);
    assert!(
        v6_over_v4.warnings[0].contains(missing),
        "{:?}",
        v6_over_v4.warnings
    );
    assert!(
        v6_over_v4.warnings[1].starts_with("VIP 2001:db8::10 is IPv6"),
        "{:?}",
        v6_over_v4.warnings
    );
    let with_next_hop = validate(
        &[
            "--vip",
            "2001:db8::10",
            "--bgp-as",
            "65001",
            "--bgp-peer",
            "10.0.0.2,as=65002",
            "--bgp-next-hop",
            "2001:db8::1",
            "--mode",
            "anycast",
        ],
        &host(),
    );
    assert_eq!(with_next_hop.warnings, Vec::<String>::new());
    // A hold time past the Lease duration lets a dead leader's route outlive its Lease.
    let long_hold = |extra: &[&str]| {
        let mut args = vec![
            "--vip",
            "10.0.0.1",
            "--bgp-as",
            "65001",
            "--bgp-hold-time",
            "9s",
        ];
        args.extend(extra);
        validate(&args, &host()).warnings
    };
    let warned = long_hold(&["--bgp-peer", "10.0.0.2,as=65002"]);
    assert!(
        warned
            .iter()
            .any(|w| w.starts_with("--bgp-hold-time 9s exceeds --lease-duration 5s")),
        "{warned:?}"
    );
    let with_bfd = long_hold(&["--bgp-peer", "10.0.0.2,as=65002,bfd"]);
    assert!(
        !with_bfd.iter().any(|w| w.contains("--bgp-hold-time")),
        "{with_bfd:?}"
    );
}

#[test]
fn secrets_stay_out_of_debug_and_json() {
    let config = validate(
        &[
            "--vip",
            "10.0.0.1",
            "--bgp-as",
            "65001",
            "--bgp-peer",
            "10.0.0.2,as=65002,password=hunter2",
        ],
        &host(),
    )
    .config;
    let password = config.bgp.peers[0].password.as_ref().map(Secret::expose);
    assert_eq!(
        password,
        Some("hunter2"),
        "the value is kept for the socket option"
    );
    let json = serde_json::to_string(&config).expect("serializable");
    for text in [
        format!("{config:?}"),
        format!("{config:#?}"),
        json.clone(),
        config.summary(),
    ] {
        assert!(!text.contains("hunter2"), "{text}");
    }
    assert!(json.contains(r#""password":"<redacted>""#), "{json}");
    assert!(json.contains(r#""hold_time":"3s""#), "{json}");
}

/// Every `[default: X]` the help states for a flag with a literal default is the default the
/// config applies: `--flag X` changes nothing.
#[test]
fn help_defaults_are_the_applied_defaults() {
    let command = Cli::command();
    let run = command.find_subcommand("run").expect("run subcommand");
    let mut checked = 0;
    for arg in run.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let env = arg
            .get_env()
            .and_then(|env| env.to_str())
            .map(str::to_owned);
        if long != "help" && long != "version" {
            assert_eq!(
                env.as_deref(),
                Some(cpvip::cli::env_var_for(long).as_str()),
                "--{long}"
            );
        }
        let Some((_, rest)) = help.split_once("[default: ") else {
            continue;
        };
        let default = rest.trim_end_matches(']');
        if default.contains(' ') || default.contains('$') || ["none", "off"].contains(&default) {
            continue;
        }
        let flag = format!("--{long}");
        let explicit = validate(&["--vip", "10.0.0.1", &flag, default], &host()).config;
        assert_eq!(explicit, base(), "{flag} {default}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} literal defaults checked");
}

#[test]
fn to_env_lists_only_given_flags() {
    let args = run_args(&[
        "--vip",
        "10.0.0.1",
        "--vip",
        "10.0.0.2",
        "--no-garp",
        "--bgp-hold-time",
        "3s",
    ]);
    let env = args.to_env();
    let want: Vec<(String, String)> = [
        ("CPVIP_VIP", "10.0.0.1;10.0.0.2"),
        ("CPVIP_BGP_HOLD_TIME", "3s"),
        ("CPVIP_NO_GARP", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env, want);
}

/// Every flag set on the command line, turned into `CPVIP_*` variables by `to_env`, gives the
/// same `RunArgs` when parsed from the environment alone. Runs in a child process (this test
/// binary again) so the variables do not leak into other tests.
#[test]
fn to_env_round_trips_through_the_environment() {
    const CHILD: &str = "CPVIP_TEST_ROUND_TRIP_CHILD";
    let every_flag: &[&str] = &[
        "--vip",
        "10.0.0.1",
        "--vip",
        "2001:db8::1",
        "--interface",
        "eth0",
        "--mode",
        "anycast",
        "--node-name",
        "n1",
        "--kubeconfig",
        "/k",
        "--lease-name",
        "l",
        "--lease-namespace",
        "ns",
        "--lease-duration",
        "6s",
        "--renew-deadline",
        "4s",
        "--retry-period",
        "2s",
        "--bgp-as",
        "65001",
        "--bgp-router-id",
        "1.1.1.1",
        "--bgp-peer",
        "10.0.0.2,as=65002,password=pw,bfd",
        "--bgp-peer",
        "2001:db8::2,as=65002",
        "--bgp-hold-time",
        "30s",
        "--bgp-community",
        "1:1",
        "--bgp-community",
        "no-export",
        "--bgp-large-community",
        "1:2:3",
        "--bgp-med",
        "5",
        "--bgp-local-pref",
        "7",
        "--bgp-next-hop",
        "10.0.0.9",
        "--bfd-interval",
        "300ms",
        "--bfd-multiplier",
        "4",
        // Contradictory switches are fine here: this is about parsing, not validation.
        "--health-check",
        "apiserver",
        "--health-check",
        "tcp://[::1]:1",
        "--no-health-check",
        "--garp",
        "--health-interval",
        "3s",
        "--health-timeout",
        "2s",
        "--health-rise",
        "4",
        "--health-fall",
        "6",
        "--no-garp",
        "--http-listen",
        "0.0.0.0:1",
        "--log-format",
        "json",
        "--log-level",
        "debug",
    ];
    let from_argv = run_args(every_flag);
    if std::env::var_os(CHILD).is_some() {
        assert_eq!(
            run_args(&[]),
            from_argv,
            "parsed from the environment alone"
        );
        return;
    }
    let env = from_argv.to_env();
    let flags = RunArgs::augment_args_count();
    assert_eq!(env.len(), flags, "to_env covers every run flag");
    let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "to_env_round_trips_through_the_environment",
            "--test-threads",
            "1",
        ])
        .env_clear()
        .env(CHILD, "1")
        .envs(env)
        .status()
        .expect("child runs");
    assert!(status.success(), "child failed: {status}");
}

trait CountArgs {
    fn augment_args_count() -> usize;
}

impl CountArgs for RunArgs {
    /// The number of flags `RunArgs` defines.
    fn augment_args_count() -> usize {
        use clap::Args;
        RunArgs::augment_args(clap::Command::new("count"))
            .get_arguments()
            .count()
    }
}
