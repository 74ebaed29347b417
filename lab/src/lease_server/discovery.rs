//! Discovery documents (`/version`, `/api`, `/apis`, the group and its resource list), minimal
//! but shaped as kube-apiserver sends them.

use serde_json::{Value, json};

pub const GROUP: &str = "coordination.k8s.io";
pub const GROUP_VERSION: &str = "coordination.k8s.io/v1";

pub fn version() -> Value {
    json!({"major":"1","minor":"33","gitVersion":"v1.33.0+cpvip-lab","gitCommit":"0000000000000000000000000000000000000000",
        "gitTreeState":"clean","buildDate":"2026-01-01T00:00:00Z","goVersion":"go1.24.0","compiler":"gc","platform":"linux/amd64"})
}

pub fn api_group() -> Value {
    json!({"kind":"APIGroup","apiVersion":"v1","name":GROUP,
        "versions":[{"groupVersion":GROUP_VERSION,"version":"v1"}],
        "preferredVersion":{"groupVersion":GROUP_VERSION,"version":"v1"}})
}

pub fn api_group_list() -> Value {
    let mut g = api_group();
    if let Some(o) = g.as_object_mut() {
        o.remove("kind");
        o.remove("apiVersion");
    }
    json!({"kind":"APIGroupList","apiVersion":"v1","groups":[g]})
}

pub fn api_resources() -> Value {
    json!({"kind":"APIResourceList","apiVersion":"v1","groupVersion":GROUP_VERSION,"resources":[
        {"name":"leases","singularName":"lease","namespaced":true,"kind":"Lease",
         "verbs":["create","delete","get","list","update","watch"]}]})
}
