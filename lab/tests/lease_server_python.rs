//! The Lease test server against the official Kubernetes Python client (python3-kubernetes): it
//! loads the written kubeconfigs unchanged and gets real API semantics (create, get, list, watch,
//! replace with optimistic concurrency, Status errors, authentication).

use std::process::Stdio;

use cpvip_lab::lease_server::{LeaseServer, LeaseServerConfig};

const PYTHON: &str = "/usr/bin/python3";

const SCRIPT: &str = r#"
import sys, json, threading
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

kubeconfig, ns = sys.argv[1], sys.argv[2]
api = client.CoordinationV1Api(config.new_client_from_config(config_file=kubeconfig))

def status(fn):
    try:
        fn()
    except ApiException as e:
        body = json.loads(e.body)
        assert body["kind"] == "Status" and body["status"] == "Failure", body
        assert body["code"] == e.status, body
        return e.status, body["reason"]
    raise AssertionError("expected an ApiException")

spec = client.V1LeaseSpec(holder_identity="py-a", lease_duration_seconds=5, lease_transitions=0)
lease = client.V1Lease(metadata=client.V1ObjectMeta(name="py"), spec=spec)
created = api.create_namespaced_lease(ns, lease)
assert created.metadata.uid and created.metadata.creation_timestamp, created.metadata
rv1 = created.metadata.resource_version
assert status(lambda: api.create_namespaced_lease(ns, lease)) == (409, "AlreadyExists")
got = api.read_namespaced_lease("py", ns)
assert got.spec.holder_identity == "py-a" and got.metadata.resource_version == rv1
assert status(lambda: api.read_namespaced_lease("nope", ns)) == (404, "NotFound")

events = []
def watcher():
    w = watch.Watch()
    for ev in w.stream(api.list_namespaced_lease, ns, field_selector="metadata.name=py",
                       resource_version=rv1, timeout_seconds=5):
        events.append((ev["type"], ev["object"].spec.holder_identity))
        if len(events) == 2:
            w.stop()
t = threading.Thread(target=watcher); t.start()

got.spec.holder_identity = "py-b"
got.spec.lease_transitions = 1
replaced = api.replace_namespaced_lease("py", ns, got)
assert int(replaced.metadata.resource_version) > int(rv1)
assert status(lambda: api.replace_namespaced_lease("py", ns, got)) == (409, "Conflict")
bad = api.read_namespaced_lease("py", ns)
bad.spec.lease_duration_seconds = -1
assert status(lambda: api.replace_namespaced_lease("py", ns, bad)) == (422, "Invalid")
api.delete_namespaced_lease("py", ns)
t.join(10)
assert events == [("MODIFIED", "py-b"), ("DELETED", "py-b")], events
listed = api.list_namespaced_lease(ns)
assert listed.items == [] and listed.metadata.resource_version, listed
print("OK")
"#;

const UNAUTHORIZED: &str = r#"
import sys, json
from kubernetes import client, config
from kubernetes.client.rest import ApiException
api = client.CoordinationV1Api(config.new_client_from_config(config_file=sys.argv[1]))
try:
    api.list_namespaced_lease("default")
except ApiException as e:
    body = json.loads(e.body)
    assert e.status == 401 and body["reason"] == "Unauthorized", body
    print("OK")
"#;

fn require_python_kubernetes() {
    let ok = std::process::Command::new(PYTHON)
        .args(["-c", "import kubernetes"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{PYTHON} cannot import kubernetes: apt-get install python3-kubernetes"
    );
}

async fn python(script: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("cpvip-lease-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[tokio::test]
async fn python_client_with_token_and_with_ec_client_cert() {
    require_python_kubernetes();
    let dir = temp_dir("py");
    let server = LeaseServer::start(LeaseServerConfig::loopback(&dir))
        .await
        .expect("start");
    let token_cfg = server
        .kubeconfig_token()
        .to_str()
        .expect("utf8")
        .to_string();
    let cert_cfg = server
        .kubeconfig_client_cert()
        .to_str()
        .expect("utf8")
        .to_string();
    assert_eq!(python(SCRIPT, &[&token_cfg, "tok"]).await.trim(), "OK");
    assert_eq!(python(SCRIPT, &[&cert_cfg, "cert"]).await.trim(), "OK");

    let text = std::fs::read_to_string(&token_cfg).expect("read");
    let wrong = dir.join("wrong-token.yaml");
    std::fs::write(&wrong, text.replace(server.token(), "wrong")).expect("write");
    let wrong = wrong.to_str().expect("utf8").to_string();
    assert_eq!(python(UNAUTHORIZED, &[&wrong]).await.trim(), "OK");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
