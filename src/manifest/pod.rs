//! `cpvip manifest pod`: the static pod RKE2's kubelet runs on every server.
//!
//! Built from `k8s-openapi` types (so the field names and nesting are the API's, checked by the
//! compiler) and written as YAML with a header comment explaining the choices a reader would
//! question. Decisions:
//! - The node name is `fieldRef: spec.nodeName`, which the kubelet fills in for static pods too;
//!   it equals the Kubernetes node name even when RKE2's `node-name` differs from the hostname.
//! - A BGP password cannot come from a Secret (a static pod may not reference API objects), so it
//!   is a plain env value; the caller warns.
//! - The kubeconfig's directory is mounted, not the file: the file may not exist yet when the
//!   kubelet starts the pod (RKE2 writes it later) and a single-file bind mount would keep the
//!   old inode when RKE2 replaces the file.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, HTTPGetAction, HostPathVolumeSource,
    ObjectFieldSelector, Pod, PodSpec, Probe, ResourceRequirements, SeccompProfile,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ManifestError, Rendered, carried_flag_warnings, to_yaml};
use crate::cli::{RunArgs, env_var_for};
use crate::config::{ConfigError, Validated};

/// Where RKE2's kubelet looks for static pods.
pub const POD_MANIFEST_PATH: &str = "/var/lib/rancher/rke2/agent/pod-manifests/cpvip.yaml";
/// CPU request: the daemon idles between 1 s health checks and BGP keepalives.
pub const CPU_REQUEST: &str = "10m";
/// Memory request.
pub const MEMORY_REQUEST: &str = "32Mi";
/// Memory limit. Measured (`cpvip-lab bench failover`, release build, two peers, after 20
/// failovers): 13.4-13.9 MiB VmHWM per node; received UPDATEs are validated and dropped, and the
/// speaker grew by 28 KiB while a peer sent it 1,000,000 prefixes (`cargo bench -p cpvip-bgp
/// --bench lab`). 64 MiB leaves more than 4x headroom.
pub const MEMORY_LIMIT: &str = "64Mi";
/// Seconds the kubelet waits after SIGTERM; the daemon's shutdown is bounded at 3 s.
const TERMINATION_GRACE_SECONDS: i64 = 10;
/// Name of the pod (the kubelet appends `-<node name>` to the mirror pod).
const POD_NAME: &str = "cpvip";
/// Namespace of the pod.
const POD_NAMESPACE: &str = "kube-system";
/// Volume holding the kubeconfig's directory.
const KUBECONFIG_VOLUME: &str = "kubeconfig-dir";

/// Renders the static pod YAML (with its header comment) and the warnings for stderr.
pub(super) fn render(
    run: &RunArgs,
    validated: &Validated,
    image: &str,
) -> Result<Rendered, ManifestError> {
    let pod = build_pod(run, validated, image)?;
    let mut text = header(image);
    text.push_str(&to_yaml(&pod)?);
    let warnings = carried_flag_warnings(
        run,
        validated,
        "static pods cannot reference Secrets: install the file with mode 0600, and know that \
         the mirror pod shows the value to anyone who may read pods in kube-system (the systemd \
         unit with a mode 0600 /etc/default/cpvip keeps it off the API)",
    );
    Ok(Rendered { text, warnings })
}

fn header(image: &str) -> String {
    format!(
        "\
# cpvip static pod for RKE2 servers, rendered by `cpvip manifest pod` (cpvip {version}).
# Install the same file on every server as {POD_MANIFEST_PATH}.
# One file serves every server: the node name comes from the kubelet (spec.nodeName) and the BGP
# router id from the node's own address towards the first peer, at run time.
# - hostNetwork: the VIP is bound on the node's interface and BGP/BFD leave from the node.
# - runAsUser 0 with only NET_ADMIN (netlink: add/remove the VIP in the host network namespace)
#   and NET_RAW (gratuitous ARP / unsolicited NA) added and everything else dropped: not
#   privileged, no privilege escalation, read-only root filesystem. Root is needed because the
#   capabilities of a non-root container process are cleared at exec (no ambient capabilities in
#   Kubernetes), and to read the root-only kubeconfig.
# - The kubeconfig's directory is mounted read-only (not the file), so a kubeconfig written or
#   replaced after the pod started is seen.
# - A BGP password can only be a plain env value here (static pods cannot use Secrets).
# - No hostAliases: the kubeconfig names 127.0.0.1, which needs no name resolution.
# Image: {image}
",
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// The static pod as an API object.
pub fn build_pod(run: &RunArgs, validated: &Validated, image: &str) -> Result<Pod, ManifestError> {
    let config = &validated.config;
    let kubeconfig_dir = kubeconfig_dir(&config.kubeconfig.path)?;

    let mut env: Vec<EnvVar> = run
        .to_env()
        .into_iter()
        .map(|(name, value)| EnvVar {
            name,
            value: Some(value),
            value_from: None,
        })
        .collect();
    if run.node_name.is_none() {
        env.push(EnvVar {
            name: env_var_for("node-name"),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: Some("v1".to_owned()),
                    field_path: "spec.nodeName".to_owned(),
                }),
                ..EnvVarSource::default()
            }),
        });
    }

    let mut add = vec!["NET_ADMIN".to_owned(), "NET_RAW".to_owned()];
    if needs_bind_service(validated) {
        add.push("NET_BIND_SERVICE".to_owned());
    }

    let container = Container {
        name: POD_NAME.to_owned(),
        image: Some(image.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(vec!["run".to_owned()]),
        env: Some(env),
        security_context: Some(SecurityContext {
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_user: Some(0),
            run_as_group: Some(0),
            capabilities: Some(Capabilities {
                add: Some(add),
                drop: Some(vec!["ALL".to_owned()]),
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity(CPU_REQUEST.to_owned())),
                ("memory".to_owned(), Quantity(MEMORY_REQUEST.to_owned())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_owned(),
                Quantity(MEMORY_LIMIT.to_owned()),
            )])),
            ..ResourceRequirements::default()
        }),
        liveness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                host: Some(liveness_host(config.http_listen).to_string()),
                port: IntOrString::Int(i32::from(config.http_listen.port())),
                path: Some("/healthz".to_owned()),
                scheme: Some("HTTP".to_owned()),
                http_headers: None,
            }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(10),
            timeout_seconds: Some(3),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: KUBECONFIG_VOLUME.to_owned(),
            mount_path: kubeconfig_dir.clone(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };

    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(POD_NAME.to_owned()),
            namespace: Some(POD_NAMESPACE.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                POD_NAME.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            host_network: Some(true),
            // The node's resolver, never cluster DNS: cpvip must work before CoreDNS does.
            dns_policy: Some("Default".to_owned()),
            // No service-link variables: a Service named like a flag must not become one.
            enable_service_links: Some(false),
            priority_class_name: Some("system-node-critical".to_owned()),
            termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
            containers: vec![container],
            volumes: Some(vec![Volume {
                name: KUBECONFIG_VOLUME.to_owned(),
                host_path: Some(HostPathVolumeSource {
                    path: kubeconfig_dir,
                    type_: Some("DirectoryOrCreate".to_owned()),
                }),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        }),
        status: None,
    })
}

/// The address the kubelet probes: the listen address itself, or the loopback address of its
/// family when it listens on every address (hostNetwork: the node's own loopback).
pub fn liveness_host(listen: SocketAddr) -> IpAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

/// Binding a port below 1024 needs NET_BIND_SERVICE: the BGP port for a passive peer, or a low
/// `--http-listen` port. Everything else cpvip does needs only NET_ADMIN and NET_RAW.
fn needs_bind_service(validated: &Validated) -> bool {
    let config = &validated.config;
    // A passive peer is accepted on the BGP port, 179.
    let listens_for_bgp = config.bgp.peers.iter().any(|peer| peer.passive);
    listens_for_bgp || config.http_listen.port() < 1024
}

/// The directory to mount for the kubeconfig: it must be absolute (a relative path means nothing
/// in the container) and not `/` (the host's root must not be mounted).
fn kubeconfig_dir(path: &Path) -> Result<String, ConfigError> {
    let shown = path.display().to_string();
    let parent = path
        .parent()
        .filter(|parent| path.is_absolute() && *parent != Path::new("/"));
    match parent.and_then(Path::to_str) {
        Some(dir) => Ok(dir.to_owned()),
        None => Err(ConfigError::value(
            "--kubeconfig",
            &shown,
            "must be an absolute path in a directory other than / for a static pod (its \
             directory is mounted read-only)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_uses_loopback_for_a_wildcard_listener() {
        let host = |addr: &str| liveness_host(addr.parse().expect("socket address")).to_string();
        assert_eq!(host("0.0.0.0:2112"), "127.0.0.1");
        assert_eq!(host("[::]:2112"), "::1");
        assert_eq!(host("127.0.0.1:2112"), "127.0.0.1");
        assert_eq!(host("10.1.2.3:2112"), "10.1.2.3");
    }

    #[test]
    fn the_kubeconfig_directory_must_be_absolute_and_not_root() {
        let dir = |path: &str| kubeconfig_dir(Path::new(path)).ok();
        assert_eq!(
            dir("/etc/rancher/rke2/rke2.yaml").as_deref(),
            Some("/etc/rancher/rke2")
        );
        assert_eq!(dir("/etc/kc.yaml").as_deref(), Some("/etc"));
        assert_eq!(dir("/kc.yaml"), None);
        assert_eq!(dir("kc.yaml"), None);
        assert_eq!(dir("./x/kc.yaml"), None);
        assert_eq!(dir("/"), None);
    }
}
