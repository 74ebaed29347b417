//! `cpvip manifest rbac`: the least the Lease election needs, for operators who give cpvip its own
//! credentials instead of RKE2's admin kubeconfig.
//!
//! A ServiceAccount `cpvip`, a Role and a RoleBinding, all in the Lease's namespace. The Role
//! names the one Lease for get/list/watch/update, so cpvip cannot touch the other leader-election
//! Leases of `kube-system` (kube-controller-manager, kube-scheduler). `create` cannot be limited
//! by name (the name is in the request body, unknown when the request is authorized), so it is a
//! rule of its own, on all Leases of the namespace. A list or watch is only authorized by a
//! `resourceNames` rule when it carries the field selector `metadata.name=<lease>`.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{ManifestError, Rendered, to_yaml};
use crate::cli::RunArgs;
use crate::config::{ConfigError, check_dns_label, check_dns_subdomain, defaults};

/// Name of the ServiceAccount, Role and RoleBinding.
const NAME: &str = "cpvip";
/// API group of Leases.
const COORDINATION_GROUP: &str = "coordination.k8s.io";

/// Renders the three objects as one multi-document YAML stream.
pub(super) fn render(run: &RunArgs) -> Result<Rendered, ManifestError> {
    let lease_name = run
        .lease_name
        .clone()
        .unwrap_or_else(|| defaults::LEASE_NAME.to_owned());
    let namespace = run
        .lease_namespace
        .clone()
        .unwrap_or_else(|| defaults::LEASE_NAMESPACE.to_owned());
    check_dns_subdomain(&lease_name)
        .map_err(|expected| ConfigError::value("--lease-name", &lease_name, expected))?;
    check_dns_label(&namespace)
        .map_err(|expected| ConfigError::value("--lease-namespace", &namespace, expected))?;

    let (account, role, binding) = build_rbac(&lease_name, &namespace);
    let mut text = header(&lease_name, &namespace);
    text.push_str(&to_yaml(&account)?);
    text.push_str("---\n");
    text.push_str(&to_yaml(&role)?);
    text.push_str("---\n");
    text.push_str(&to_yaml(&binding)?);
    Ok(Rendered {
        text,
        warnings: Vec::new(),
    })
}

fn header(lease_name: &str, namespace: &str) -> String {
    format!(
        "\
# cpvip RBAC, rendered by `cpvip manifest rbac` (cpvip {version}): only for operators who give
# cpvip its own credentials (the static pod and the systemd unit use RKE2's admin kubeconfig,
# which needs none of this). Apply with `kubectl apply -f`, then give cpvip a kubeconfig for the
# ServiceAccount {namespace}/{NAME} (--kubeconfig).
# The Role allows get, list, watch and update on the Lease {namespace}/{lease_name} only, and
# create on Leases in {namespace}: Kubernetes cannot limit create by name, because the name is in
# the request body. List and watch are allowed only with the field selector
# metadata.name={lease_name}.
",
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// The ServiceAccount, Role and RoleBinding for the Lease `namespace/lease_name`.
pub fn build_rbac(lease_name: &str, namespace: &str) -> (ServiceAccount, Role, RoleBinding) {
    let meta = || ObjectMeta {
        name: Some(NAME.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(
            [("app.kubernetes.io/name".to_owned(), NAME.to_owned())]
                .into_iter()
                .collect(),
        ),
        ..ObjectMeta::default()
    };
    let leases = |verbs: &[&str], names: Option<Vec<String>>| PolicyRule {
        api_groups: Some(vec![COORDINATION_GROUP.to_owned()]),
        resources: Some(vec!["leases".to_owned()]),
        resource_names: names,
        verbs: verbs.iter().map(|verb| (*verb).to_owned()).collect(),
        ..PolicyRule::default()
    };
    let account = ServiceAccount {
        metadata: meta(),
        ..ServiceAccount::default()
    };
    let role = Role {
        metadata: meta(),
        rules: Some(vec![
            leases(
                &["get", "list", "watch", "update"],
                Some(vec![lease_name.to_owned()]),
            ),
            leases(&["create"], None),
        ]),
    };
    let binding = RoleBinding {
        metadata: meta(),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: NAME.to_owned(),
        },
        subjects: Some(vec![Subject {
            api_group: None,
            kind: "ServiceAccount".to_owned(),
            name: NAME.to_owned(),
            namespace: Some(namespace.to_owned()),
        }]),
    };
    (account, role, binding)
}
