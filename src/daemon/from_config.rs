//! Maps the validated [`Config`] to what the daemon's parts take: [`DaemonSettings`],
//! [`HealthSettings`] and the [`Check`]s. The kubeconfig's credentials for the `apiserver`
//! check are read by the caller (the election reads the same kubeconfig).

use super::DaemonSettings;
use crate::config::{Config, HealthCheckSpec};
use crate::health::{ApiCredentials, Check, CheckError, HealthSettings, RiseFall};

/// The daemon's settings; defaults of DESIGN.md for the timings the CLI does not expose.
pub fn daemon_settings(config: &Config) -> DaemonSettings {
    let mut settings =
        DaemonSettings::new(config.mode, config.node_name.clone(), config.vips.clone());
    settings.garp = config.garp;
    // On `lo` no other host sees the address, so ARP cannot fight: make-before-break is safe.
    settings.unbind_before_handover = config.garp && config.interface != "lo";
    settings
}

/// Interval, timeout, rise and fall.
pub fn health_settings(config: &Config) -> HealthSettings {
    HealthSettings {
        interval: config.health.interval,
        timeout: config.health.timeout,
        thresholds: RiseFall {
            rise: config.health.rise,
            fall: config.health.fall,
        },
    }
}

/// The checks; `apiserver` needs the kubeconfig's credentials, an `https://…,ca=FILE` check
/// reads its CA file now (so a missing file is reported at start-up, not as a failing check).
pub fn health_checks(
    config: &Config,
    api: Option<&ApiCredentials>,
) -> Result<Vec<Check>, CheckError> {
    config
        .health
        .checks
        .iter()
        .map(|spec| match spec {
            HealthCheckSpec::Apiserver => match api {
                Some(credentials) => Check::apiserver(credentials),
                None => Ok(Check::apiserver_deferred(config.kubeconfig.path.clone())),
            },
            HealthCheckSpec::Supervisor => Check::supervisor(),
            HealthCheckSpec::Http { url } => Check::url(url, None),
            HealthCheckSpec::Https { url, ca } => match ca {
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|source| CheckError::Io {
                        path: path.display().to_string(),
                        source,
                    })?;
                    Check::url(url, Some(&pem))
                }
                None => Check::url(url, None),
            },
            HealthCheckSpec::Tcp { host, port } => Ok(Check::tcp(host, *port)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::Mode;
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::config::HostFacts;
    use crate::health::ApiAuth;

    fn config(args: &[&str]) -> Config {
        let argv = ["cpvip", "run"].iter().chain(args);
        let Command::Run(run) = Cli::try_parse_from(argv).expect("parses").command else {
            panic!("not a run command");
        };
        let host = HostFacts {
            hostname: Some("cp-1".into()),
            kubeconfig_env: None,
        };
        Config::from_args(&run, &host).expect("valid").config
    }

    #[test]
    fn settings_follow_mode_garp_and_interface() {
        let c = config(&["--vip", "192.0.2.10", "--mode", "anycast"]);
        let s = daemon_settings(&c);
        assert_eq!(s.mode, Mode::Anycast);
        assert_eq!(s.node_name, "cp-1");
        assert_eq!(
            s.vips,
            ["192.0.2.10".parse::<std::net::IpAddr>().expect("ip")]
        );
        assert!(
            !s.garp && !s.unbind_before_handover,
            "lo: no GARP by default"
        );
        let c = config(&["--vip", "192.0.2.10", "--interface", "eth0"]);
        let s = daemon_settings(&c);
        assert_eq!(s.mode, Mode::Leader);
        assert!(
            s.garp && s.unbind_before_handover,
            "shared L2: unbind first"
        );
    }

    #[test]
    fn checks_and_timings_are_mapped() {
        let c = config(&[
            "--vip",
            "192.0.2.10",
            "--health-check",
            "apiserver",
            "--health-check",
            "tcp://[::1]:9345",
            "--health-check",
            "http://127.0.0.1:8080/healthz",
            "--health-interval",
            "500ms",
            "--health-timeout",
            "400ms",
            "--health-rise",
            "4",
            "--health-fall",
            "5",
        ]);
        let h = health_settings(&c);
        assert_eq!(h.interval, std::time::Duration::from_millis(500));
        assert_eq!(h.timeout, std::time::Duration::from_millis(400));
        assert_eq!(h.thresholds, RiseFall { rise: 4, fall: 5 });
        // Without credentials yet, the apiserver check waits for the kubeconfig.
        let deferred = health_checks(&c, None).expect("checks");
        assert_eq!(deferred[0].name(), "apiserver");
        let credentials = ApiCredentials {
            ca_pem: None,
            auth: ApiAuth::BearerToken("t".into()),
        };
        let checks = health_checks(&c, Some(&credentials)).expect("checks");
        let names: Vec<&str> = checks.iter().map(Check::name).collect();
        assert_eq!(
            names,
            [
                "apiserver",
                "tcp://[::1]:9345",
                "http://127.0.0.1:8080/healthz"
            ]
        );
        let defaults = config(&["--vip", "192.0.2.10"]);
        let names: Vec<String> = health_checks(&defaults, Some(&credentials))
            .expect("default checks")
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        assert_eq!(names, ["apiserver", "supervisor"]);
    }

    #[test]
    fn a_missing_ca_file_is_reported_at_start_up() {
        let c = config(&[
            "--vip",
            "192.0.2.10",
            "--health-check",
            "https://10.0.0.5:6443/readyz,ca=/nonexistent/cpvip-ca.pem",
        ]);
        let err = health_checks(&c, None).err().expect("missing file");
        assert!(
            err.to_string().contains("/nonexistent/cpvip-ca.pem"),
            "{err}"
        );
    }
}
