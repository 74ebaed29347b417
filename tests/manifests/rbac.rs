//! `cpvip manifest rbac`: a ServiceAccount, a Role limited to the one Lease (plus create, which
//! cannot be limited by name) and a RoleBinding, in the Lease's namespace.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding};

use super::{cpvip, manifest};

/// Splits a multi-document YAML stream (documents separated by `---` lines).
fn documents(yaml: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in yaml.lines() {
        if line == "---" {
            documents.push(String::new());
        } else if let Some(last) = documents.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    documents
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

#[test]
fn rbac_allows_only_the_lease() {
    let (yaml, _) = manifest(
        "rbac",
        &["--lease-namespace", "cpvip-system", "--lease-name", "vip"],
    );
    let documents = documents(&yaml);
    assert_eq!(
        documents.len(),
        3,
        "ServiceAccount, Role, RoleBinding:\n{yaml}"
    );
    let account: ServiceAccount = serde_saphyr::from_str(&documents[0]).expect("ServiceAccount");
    let role: Role = serde_saphyr::from_str(&documents[1]).expect("Role");
    let binding: RoleBinding = serde_saphyr::from_str(&documents[2]).expect("RoleBinding");
    for namespace in [
        &account.metadata.namespace,
        &role.metadata.namespace,
        &binding.metadata.namespace,
    ] {
        assert_eq!(namespace.as_deref(), Some("cpvip-system"));
    }
    let rules = role.rules.expect("rules");
    let named = PolicyRule {
        api_groups: Some(strings(&["coordination.k8s.io"])),
        resources: Some(strings(&["leases"])),
        resource_names: Some(strings(&["vip"])),
        verbs: strings(&["get", "list", "watch", "update"]),
        ..PolicyRule::default()
    };
    let create = PolicyRule {
        resource_names: None,
        verbs: strings(&["create"]),
        ..named.clone()
    };
    assert_eq!(rules, vec![named, create]);
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(
        binding.role_ref.name,
        role.metadata.name.clone().expect("name")
    );
    let subjects = binding.subjects.expect("subjects");
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(Some(&subjects[0].name), account.metadata.name.as_ref());
    assert_eq!(subjects[0].namespace.as_deref(), Some("cpvip-system"));
}

#[test]
fn rbac_defaults_and_rejects_bad_names() {
    let (yaml, _) = manifest("rbac", &[]);
    let role: Role = serde_saphyr::from_str(&documents(&yaml)[1]).expect("Role");
    assert_eq!(role.metadata.namespace.as_deref(), Some("kube-system"));
    let names = role.rules.expect("rules")[0].resource_names.clone();
    assert_eq!(names, Some(strings(&["cpvip"])));

    let output = cpvip(
        &["manifest", "rbac", "--lease-namespace", "Kube_System"],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: --lease-namespace"), "{stderr}");
}
