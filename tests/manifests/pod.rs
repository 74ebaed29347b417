//! The static pod: it deserialises into `k8s_openapi` `Pod` with every field the issue asks for,
//! carries every flag given as its `CPVIP_*` variable (and nothing else but the node name from
//! the kubelet), round-trips through the YAML serializer, and keeps number-like strings strings.

use k8s_openapi::api::core::v1::{EnvVar, Pod};

use super::{EXAMPLE_FLAGS, cpvip, manifest};

/// Every `cpvip run` flag that can go into a manifest shared by all nodes, and the variable it
/// must become.
#[rustfmt::skip]
const EVERY_SHARED_FLAG: &[(&str, &str, &str)] = &[
    ("--vip", "10.99.200.1", "CPVIP_VIP"),
    ("--interface", "lo", "CPVIP_INTERFACE"),
    ("--mode", "leader", "CPVIP_MODE"),
    ("--kubeconfig", "/etc/cpvip/kubeconfig.yaml", "CPVIP_KUBECONFIG"),
    ("--lease-name", "cpvip-vip", "CPVIP_LEASE_NAME"),
    ("--lease-namespace", "cpvip-system", "CPVIP_LEASE_NAMESPACE"),
    ("--lease-duration", "6s", "CPVIP_LEASE_DURATION"),
    ("--renew-deadline", "4s", "CPVIP_RENEW_DEADLINE"),
    ("--retry-period", "1s", "CPVIP_RETRY_PERIOD"),
    ("--bgp-as", "65001", "CPVIP_BGP_AS"),
    ("--bgp-peer", "10.99.0.1,as=65000,bfd,password=pa$$ \"w0rd\"", "CPVIP_BGP_PEER"),
    ("--bgp-hold-time", "30s", "CPVIP_BGP_HOLD_TIME"),
    ("--bgp-community", "65001:100", "CPVIP_BGP_COMMUNITY"),
    ("--bgp-large-community", "65001:1:2", "CPVIP_BGP_LARGE_COMMUNITY"),
    ("--bgp-med", "10", "CPVIP_BGP_MED"),
    ("--bgp-local-pref", "200", "CPVIP_BGP_LOCAL_PREF"),
    ("--bfd-interval", "300ms", "CPVIP_BFD_INTERVAL"),
    ("--bfd-multiplier", "5", "CPVIP_BFD_MULTIPLIER"),
    ("--health-check", "tcp://127.0.0.1:9345", "CPVIP_HEALTH_CHECK"),
    ("--health-interval", "2s", "CPVIP_HEALTH_INTERVAL"),
    ("--health-timeout", "1s", "CPVIP_HEALTH_TIMEOUT"),
    ("--health-rise", "2", "CPVIP_HEALTH_RISE"),
    ("--health-fall", "4", "CPVIP_HEALTH_FALL"),
    ("--http-listen", "0.0.0.0:2112", "CPVIP_HTTP_LISTEN"),
    ("--log-format", "json", "CPVIP_LOG_FORMAT"),
    ("--log-level", "debug", "CPVIP_LOG_LEVEL"),
];

/// The flags of [`EVERY_SHARED_FLAG`] plus the switch `--no-garp`, as a command line.
pub fn every_shared_flag_argv() -> Vec<&'static str> {
    let mut argv: Vec<&str> = EVERY_SHARED_FLAG
        .iter()
        .flat_map(|(flag, value, _)| [*flag, *value])
        .collect();
    argv.push("--no-garp");
    argv
}

/// Parses the YAML of a static pod (comments and all).
pub fn parse_pod(yaml: &str) -> Pod {
    serde_saphyr::from_str(yaml).expect("the static pod is a valid Pod")
}

fn env_value<'a>(env: &'a [EnvVar], name: &str) -> Option<&'a EnvVar> {
    env.iter().find(|var| var.name == name)
}

#[test]
fn pod_has_every_expected_field() {
    let (yaml, _) = manifest("pod", EXAMPLE_FLAGS);
    let pod = parse_pod(&yaml);
    assert_eq!(pod.metadata.name.as_deref(), Some("cpvip"));
    assert_eq!(pod.metadata.namespace.as_deref(), Some("kube-system"));
    let spec = pod.spec.expect("spec");
    assert_eq!(spec.host_network, Some(true));
    assert_eq!(
        spec.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    assert_eq!(spec.containers.len(), 1);
    let container = &spec.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some(concat!("ghcr.io/cpvip/cpvip:", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(container.args.as_deref(), Some(&["run".to_owned()][..]));

    let security = container
        .security_context
        .as_ref()
        .expect("securityContext");
    let capabilities = security.capabilities.as_ref().expect("capabilities");
    assert_eq!(
        capabilities.add.as_deref(),
        Some(&["NET_ADMIN".to_owned(), "NET_RAW".to_owned()][..])
    );
    assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    assert_eq!(security.privileged, Some(false));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.run_as_user, Some(0));

    let probe = container.liveness_probe.as_ref().expect("livenessProbe");
    let http = probe.http_get.as_ref().expect("httpGet probe");
    assert_eq!(http.path.as_deref(), Some("/healthz"));
    assert_eq!(http.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        http.port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(2112)
    );

    let resources = container.resources.as_ref().expect("resources");
    let requests = resources.requests.as_ref().expect("requests");
    assert_eq!(requests["cpu"].0, "10m");
    assert_eq!(requests["memory"].0, "32Mi");
    let limits = resources.limits.as_ref().expect("limits");
    assert_eq!(limits["memory"].0, "64Mi");

    let mounts = container.volume_mounts.as_ref().expect("volumeMounts");
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].mount_path, "/etc/rancher/rke2");
    assert_eq!(mounts[0].read_only, Some(true));
    let volumes = spec.volumes.as_ref().expect("volumes");
    let host_path = volumes[0].host_path.as_ref().expect("hostPath volume");
    assert_eq!(volumes[0].name, mounts[0].name);
    assert_eq!(host_path.path, "/etc/rancher/rke2");
    assert_eq!(host_path.type_.as_deref(), Some("DirectoryOrCreate"));

    let env = container.env.as_ref().expect("env");
    let node_name = env_value(env, "CPVIP_NODE_NAME").expect("CPVIP_NODE_NAME");
    let field = node_name
        .value_from
        .as_ref()
        .and_then(|from| from.field_ref.as_ref())
        .expect("CPVIP_NODE_NAME comes from a fieldRef");
    assert_eq!(field.field_path, "spec.nodeName");
    assert_eq!(node_name.value, None);
}

#[test]
fn pod_env_carries_exactly_the_flags_given() {
    let argv = every_shared_flag_argv();
    let (yaml, _) = manifest("pod", &argv);
    let pod = parse_pod(&yaml);
    let spec = pod.spec.expect("spec");
    let container = &spec.containers[0];
    let env = container.env.clone().expect("env");
    let mut expected: Vec<(String, String)> = EVERY_SHARED_FLAG
        .iter()
        .map(|(_, value, var)| ((*var).to_owned(), (*value).to_owned()))
        .collect();
    expected.push(("CPVIP_NO_GARP".to_owned(), "true".to_owned()));
    let literal: Vec<(String, String)> = env
        .iter()
        .filter_map(|var| Some((var.name.clone(), var.value.clone()?)))
        .collect();
    let mut literal_sorted = literal.clone();
    literal_sorted.sort();
    expected.sort();
    assert_eq!(literal_sorted, expected, "one variable per flag given");
    assert_eq!(
        env.len(),
        literal.len() + 1,
        "the only other variable is CPVIP_NODE_NAME from the kubelet"
    );
    // A non-default kubeconfig: its directory is mounted instead.
    let mounts = container.volume_mounts.as_ref().expect("volumeMounts");
    assert_eq!(mounts[0].mount_path, "/etc/cpvip");
}

#[test]
fn pod_yaml_round_trips_and_keeps_strings_strings() {
    let argv = every_shared_flag_argv();
    let (yaml, _) = manifest("pod", &argv);
    let pod = parse_pod(&yaml);
    let again = serde_saphyr::to_string(&pod).expect("serialize");
    assert_eq!(parse_pod(&again), pod, "Pod -> YAML -> Pod is the identity");
    assert!(
        yaml.ends_with(&again),
        "the manifest is the header comment followed by the serializer's output"
    );
    // Untyped, every env value must still be a string (an unquoted 65001 would be a number,
    // which the kubelet rejects for EnvVar.value).
    let untyped: serde_json::Value = serde_saphyr::from_str(&yaml).expect("untyped YAML");
    let env = untyped["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env list")
        .clone();
    for var in env {
        if let Some(value) = var.get("value") {
            assert!(value.is_string(), "{var} must be a string");
        }
    }
}

#[test]
fn pod_options_follow_the_flags() {
    let mut argv = EXAMPLE_FLAGS.to_vec();
    argv.extend_from_slice(&[
        "--http-listen",
        "[::]:9100",
        "--image",
        "registry.example/cpvip:test",
    ]);
    let (yaml, _) = manifest("pod", &argv);
    let pod = parse_pod(&yaml);
    let container = &pod.spec.expect("spec").containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example/cpvip:test")
    );
    let http = container
        .liveness_probe
        .as_ref()
        .and_then(|probe| probe.http_get.as_ref())
        .expect("probe");
    assert_eq!(
        http.host.as_deref(),
        Some("::1"),
        "listening on :: is probed on ::1"
    );

    // A passive peer listens on 179: NET_BIND_SERVICE is added for it.
    let (yaml, _) = manifest(
        "pod",
        &[
            "--vip",
            "10.99.200.1",
            "--bgp-as",
            "65001",
            "--bgp-peer",
            "10.99.0.1,as=65000,passive",
        ],
    );
    let pod = parse_pod(&yaml);
    let add = pod.spec.expect("spec").containers[0]
        .security_context
        .as_ref()
        .and_then(|security| security.capabilities.as_ref())
        .and_then(|capabilities| capabilities.add.clone())
        .expect("capabilities.add");
    assert!(add.contains(&"NET_BIND_SERVICE".to_owned()), "{add:?}");
}

#[test]
fn pod_warnings_name_secrets_and_node_specific_flags() {
    let (_, stderr) = manifest("pod", EXAMPLE_FLAGS);
    assert!(stderr.contains("password in plain text"), "{stderr}");
    assert!(stderr.contains("mode 0600"), "{stderr}");
    assert!(
        !stderr.contains("does not exist"),
        "the generating host's kubeconfig is irrelevant: {stderr}"
    );
    assert!(
        !stderr.contains("cpvip-example-md5"),
        "stderr must not echo the secret"
    );

    let (yaml, stderr) = manifest(
        "pod",
        &[
            "--vip",
            "10.99.200.1",
            "--node-name",
            "n1",
            "--bgp-router-id",
            "10.99.0.11",
        ],
    );
    assert!(stderr.contains("--node-name, --bgp-router-id"), "{stderr}");
    assert!(stderr.contains("one node only"), "{stderr}");
    let pod = parse_pod(&yaml);
    let env = pod.spec.expect("spec").containers[0]
        .env
        .clone()
        .expect("env");
    let node = env_value(&env, "CPVIP_NODE_NAME").expect("node name");
    assert_eq!(
        node.value.as_deref(),
        Some("n1"),
        "a given --node-name wins"
    );
    assert!(node.value_from.is_none());
}

#[test]
fn invalid_flags_and_kubeconfig_paths_are_rejected() {
    for (flags, flag) in [
        (
            vec!["--vip", "10.99.200.1", "--kubeconfig", "rke2.yaml"],
            "--kubeconfig",
        ),
        (
            vec!["--vip", "10.99.200.1", "--kubeconfig", "/rke2.yaml"],
            "--kubeconfig",
        ),
        (vec!["--vip", "nope"], "--vip"),
    ] {
        let mut args = vec!["manifest", "pod"];
        args.extend_from_slice(&flags);
        let output = cpvip(&args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {flag}")),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "no half manifest on stdout");
    }
}

/// Reads YAML with PyYAML, a YAML 1.1 reader like the kubelet's (where `off`, `y`, `012` or `1:20`
/// are not strings), and returns the document as JSON.
fn read_with_yaml_1_1(yaml: &str) -> serde_json::Value {
    use std::io::Write;
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (apt-get install -y python3)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write YAML");
    let output = child.wait_with_output().expect("python3 finishes");
    assert!(
        output.status.success(),
        "PyYAML cannot read the manifest (apt-get install -y python3-yaml): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from python")
}

#[test]
fn a_yaml_1_1_reader_sees_the_same_pod() {
    cpvip_lab::netns::require_binary(
        "/usr/bin/python3",
        "apt-get install -y python3 python3-yaml",
    );
    // Values a YAML 1.1 reader would take for a bool, number, null or timestamp if unquoted.
    for tricky in [
        "off",
        "y",
        "012",
        "0x10",
        "1_000",
        "1:20",
        "~",
        "2001-01-01",
        ".inf",
    ] {
        let (yaml, _) = manifest("pod", &["--vip", "10.99.200.1", "--node-name", tricky]);
        let ours: serde_json::Value = serde_saphyr::from_str(&yaml).expect("untyped YAML");
        assert_eq!(read_with_yaml_1_1(&yaml), ours, "node name {tricky:?}");
        let env = &ours["spec"]["containers"][0]["env"];
        let node = env
            .as_array()
            .and_then(|vars| vars.iter().find(|var| var["name"] == "CPVIP_NODE_NAME"))
            .expect("CPVIP_NODE_NAME");
        assert_eq!(node["value"], serde_json::Value::from(tricky));
    }
    let (yaml, _) = manifest("pod", &every_shared_flag_argv());
    let ours: serde_json::Value = serde_saphyr::from_str(&yaml).expect("untyped YAML");
    assert_eq!(read_with_yaml_1_1(&yaml), ours);
    let (yaml, _) = manifest("rbac", &[]);
    for document in yaml.split("\n---\n") {
        let ours: serde_json::Value = serde_saphyr::from_str(document).expect("untyped YAML");
        assert_eq!(read_with_yaml_1_1(document), ours);
    }
}
