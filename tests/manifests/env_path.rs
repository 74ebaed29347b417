//! The environment a manifest sets is the path users take: `cpvip run` started with exactly the
//! static pod's env (the kubelet's `spec.nodeName` filled in) or exactly the env file's variables
//! reads the configuration the flags describe. Checked on the daemon's start-up summary line,
//! which it logs before it starts anything.
//!
//! The full path, lab nodes started from exactly the static pod's env and a client reaching the
//! VIP through the router, needs the daemon; that test is ignored until the daemon is on main.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cpvip_lab::netns::require_root;
use cpvip_lab::topology::{Lab, LabConfig, RouterKind};

use super::pod::{every_shared_flag_argv, parse_pod};
use super::systemd::parse_like_systemd;
use super::{EXAMPLE_FLAGS, manifest};

/// The variables the kubelet gives the static pod's container on node `node_name`.
pub fn pod_env_for_node(pod_yaml: &str, node_name: &str) -> Vec<(String, String)> {
    let pod = parse_pod(pod_yaml);
    let container = pod.spec.expect("spec").containers.remove(0);
    container
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|var| {
            let value = match (var.value, var.value_from) {
                (Some(value), None) => value,
                (None, Some(from)) => {
                    let field = from.field_ref.expect("only fieldRef sources");
                    assert_eq!(field.field_path, "spec.nodeName", "only the node name");
                    node_name.to_owned()
                }
                other => panic!("{}: unexpected env source {other:?}", var.name),
            };
            (var.name, value)
        })
        .collect()
}

/// Starts `cpvip run` with exactly `env` and returns its configuration summary line.
fn configuration_line(env: &[(String, String)]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpvip"))
        .arg("run")
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cpvip starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("configuration: ") {
                let _ = send.send(Ok(line));
                return;
            }
            seen.push(line);
        }
        let _ = send.send(Err(seen.join("\n")));
    });
    let line = receive.recv_timeout(Duration::from_secs(20));
    // The daemon may keep running (once it exists): this test only needs the summary.
    let _ = child.kill();
    let _ = child.wait();
    match line {
        Ok(Ok(line)) => line,
        Ok(Err(output)) => panic!("no configuration line; cpvip printed:\n{output}"),
        Err(_) => panic!("no configuration line within 20 s"),
    }
}

#[test]
fn the_static_pods_env_configures_the_daemon() {
    let (yaml, _) = manifest("pod", EXAMPLE_FLAGS);
    let env = pod_env_for_node(&yaml, "node-a");
    let line = configuration_line(&env);
    for expected in [
        "vips=[10.99.200.1,fd99:200::1]",
        "node=node-a",
        "peers=[10.99.0.1/as65000,fd99::1/as65000]",
        "http=127.0.0.1:2112",
    ] {
        assert!(line.contains(expected), "{expected} missing in: {line}");
    }
    assert!(
        !line.contains("cpvip-example-md5"),
        "the summary never shows a secret"
    );

    let (yaml, _) = manifest("pod", &every_shared_flag_argv());
    let line = configuration_line(&pod_env_for_node(&yaml, "node-b"));
    for expected in [
        "vips=[10.99.200.1]",
        "mode=leader",
        "node=node-b",
        "checks=[tcp://127.0.0.1:9345]",
        "garp=false",
        "http=0.0.0.0:2112",
    ] {
        assert!(line.contains(expected), "{expected} missing in: {line}");
    }
}

#[test]
fn the_env_files_variables_configure_the_daemon() {
    let (text, _) = manifest("env", EXAMPLE_FLAGS);
    let env = parse_like_systemd(&text);
    let line = configuration_line(&env);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    for expected in [
        "vips=[10.99.200.1,fd99:200::1]".to_owned(),
        "peers=[10.99.0.1/as65000,fd99::1/as65000]".to_owned(),
        // No node name in the file: the node's own hostname is used.
        format!("node={}", hostname.trim().to_lowercase()),
    ] {
        assert!(line.contains(&expected), "{expected} missing in: {line}");
    }
}

/// The lab's `cpvip run` flags for node `i` without the node-specific `--node-name`: what an
/// operator would give `cpvip manifest pod` for the lab.
fn shared_lab_flags(lab: &Lab, i: usize) -> Vec<String> {
    let mut flags = Vec::new();
    let mut args = lab.cpvip_args(i).into_iter().skip(1); // "run"
    while let Some(arg) = args.next() {
        if arg == "--node-name" {
            args.next();
        } else {
            flags.push(arg);
        }
    }
    flags
}

#[test]
fn lab_nodes_started_from_the_static_pods_env_serve_the_vip() {
    require_root("the lab creates network namespaces");
    let cpvip = PathBuf::from(env!("CARGO_BIN_EXE_cpvip"));
    let bin_dir = cpvip.parent().expect("binary directory").to_path_buf();
    assert!(
        bin_dir.join("cpvip-lab").exists(),
        "cpvip-lab is not built next to cpvip; run `cargo build -p cpvip-lab`"
    );
    let mut config = LabConfig::new(&bin_dir);
    config.cpvip = cpvip.clone();
    config.test_tag = Some("manifest-env".to_owned());
    config.router = RouterKind::Bird;
    config.bfd = true;
    config.hold_secs = 3;
    config.start_cpvip = false;
    config.extra_args = ["--health-interval", "200ms", "--health-timeout", "200ms"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut lab = Lab::up(config, &|line| eprintln!("[manifest-env] {line}")).expect("lab up");

    // One manifest for every node, as an operator would render it.
    let flags = shared_lab_flags(&lab, 0);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (pod_yaml, _) = manifest("pod", &flags);
    for i in 0..lab.nodes.len() {
        let env = pod_env_for_node(&pod_yaml, &lab.nodes[i].plan.name);
        // `env -i`: the daemon sees exactly the pod's variables, nothing inherited.
        let mut argv: Vec<String> = vec!["env".into(), "-i".into()];
        argv.extend(env.iter().map(|(name, value)| format!("{name}={value}")));
        argv.push(cpvip.to_string_lossy().into_owned());
        argv.push("run".into());
        let log = lab.nodes[i].dir.join("cpvip.log");
        let process = lab.nodes[i]
            .ns
            .spawn(&argv, Some(Path::new(&log)))
            .expect("start cpvip");
        lab.nodes[i].cpvip = Some(process);
    }
    lab.wait_sessions(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("sessions up: {e}\n{}", lab.diagnostics()));
    let vip = IpAddr::V4(lab.plan.vip_v4);
    let leader = lab
        .wait_next_hops(vip, Duration::from_secs(20), |hops| hops.len() == 1)
        .unwrap_or_else(|e| panic!("one leader: {e}\n{}", lab.diagnostics()))[0]
        .clone();
    assert_eq!(
        lab.client_curl(vip, 6443, "/").expect("curl 6443").trim(),
        leader,
        "the client reaches the leader's 6443 on the VIP"
    );
    assert_eq!(
        lab.client_curl(vip, 9345, "/ping")
            .expect("curl 9345")
            .trim(),
        "pong"
    );
}
