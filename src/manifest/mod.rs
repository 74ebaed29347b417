//! The deployment manifests `cpvip manifest` prints: a static pod for RKE2 (`pod`), a systemd unit
//! (`systemd`) and its environment file (`env`), and the RBAC objects for operators who give cpvip
//! its own credentials (`rbac`).
//!
//! Every renderer is a pure function of the command line: the same flags give the same bytes on
//! any machine (golden files in `manifests/` are kept equal to the output by a test). Only the
//! flags the user gave are passed on ([`RunArgs::to_env`]); values that differ per node (node
//! name, BGP router id) are found by the daemon on each node at run time, so one manifest serves
//! every server. Validation therefore uses neutral [`HostFacts`], never the generating host's.
//! Renderers return warnings (a secret in the output, a node-specific flag) for the caller to
//! print on stderr; they never print themselves.

mod pod;
mod rbac;
mod systemd;

use thiserror::Error;

use crate::cli::{ManifestArgs, ManifestKind, RunArgs};
use crate::config::{Config, ConfigError, HostFacts, Validated};

pub use pod::{
    CPU_REQUEST, MEMORY_LIMIT, MEMORY_REQUEST, POD_MANIFEST_PATH, build_pod, liveness_host,
};
pub use rbac::build_rbac;
pub use systemd::{
    DEFAULT_EXEC_PATH, ENV_FILE_PATH, UNIT_PATH, env_file, env_file_quote, unit_text,
};

/// Container image when `--image` is not given: this version of cpvip.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "ghcr.io/cpvip/cpvip";

/// The default image reference, `ghcr.io/cpvip/cpvip:<crate version>`.
pub fn default_image() -> String {
    format!("{DEFAULT_IMAGE_REPOSITORY}:{}", env!("CARGO_PKG_VERSION"))
}

/// A rendered manifest and what the operator should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The manifest text, ending in a newline.
    pub text: String,
    /// One line each, for stderr (not part of the manifest).
    pub warnings: Vec<String>,
}

/// Why a manifest could not be rendered.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// A run flag is invalid (exit status 2, like `cpvip run`).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The YAML serializer failed (a bug: our types always serialize).
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}

/// Renders the manifest `args.kind` asks for.
pub fn render(args: &ManifestArgs) -> Result<Rendered, ManifestError> {
    match args.kind {
        ManifestKind::Rbac => rbac::render(&args.run),
        ManifestKind::Pod => {
            let validated = validate(&args.run)?;
            let image = args.image.clone().unwrap_or_else(default_image);
            pod::render(&args.run, &validated, &image)
        }
        ManifestKind::Systemd => Ok(systemd::render_unit(&args.run)?),
        ManifestKind::Env => {
            let validated = validate(&args.run)?;
            Ok(systemd::render_env(&args.run, &validated))
        }
    }
}

/// Serializes an API object as YAML any Kubernetes reader takes the same way: strings that a
/// YAML 1.1 reader (the kubelet's) would take for a bool, number or null are quoted, and no
/// block scalars (a long value stays one plain or quoted line, as people expect in a manifest).
pub(crate) fn to_yaml(object: &impl serde::Serialize) -> Result<String, ManifestError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    options.yaml_12 = false;
    let mut yaml = serde_saphyr::to_string_with_options(object, options)
        .map_err(|e| ManifestError::Yaml(e.to_string()))?;
    if !yaml.ends_with('\n') {
        yaml.push('\n');
    }
    Ok(yaml)
}

/// Host facts for validating a manifest's flags: a placeholder hostname (the real node name is
/// found on each node) and no `$KUBECONFIG` (the generating shell's does not reach the node).
pub fn neutral_host() -> HostFacts {
    HostFacts {
        hostname: Some("manifest-validation".to_owned()),
        kubeconfig_env: None,
    }
}

/// Validates the run flags as `cpvip run` will on the node.
pub fn validate(run: &RunArgs) -> Result<Validated, ConfigError> {
    Config::from_args(run, &neutral_host())
}

/// Warnings common to every manifest that carries run flags: secrets and node-specific values.
fn carried_flag_warnings(run: &RunArgs, validated: &Validated, secret_advice: &str) -> Vec<String> {
    let config = &validated.config;
    // Whether the kubeconfig exists on the generating machine says nothing about the node.
    let mut warnings: Vec<String> = validated
        .warnings
        .iter()
        .filter(|warning| {
            !(warning.starts_with("kubeconfig ") && warning.contains("does not exist"))
        })
        .cloned()
        .collect();
    if config.bgp.peers.iter().any(|peer| peer.password.is_some()) {
        warnings.push(format!(
            "the output contains a BGP TCP-MD5 password in plain text; {secret_advice}"
        ));
    }
    let mut node_specific: Vec<&str> = Vec::new();
    if run.node_name.is_some() {
        node_specific.push("--node-name");
    }
    if run.bgp_router_id.is_some() {
        node_specific.push("--bgp-router-id");
    }
    if run.bgp_next_hop.is_some() {
        node_specific.push("--bgp-next-hop");
    }
    if config.bgp.peers.iter().any(|peer| peer.source.is_some()) {
        node_specific.push("--bgp-peer ...,source=");
    }
    let listen = config.http_listen.ip();
    if !listen.is_unspecified() && !listen.is_loopback() {
        node_specific.push("--http-listen");
    }
    if !node_specific.is_empty() {
        warnings.push(format!(
            "{} name this node's own addresses or identity: the output fits one node only \
             (leave them out to let each node find its own)",
            node_specific.join(", ")
        ));
    }
    warnings
}
