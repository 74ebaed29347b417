//! `cpvip-lab lease-server` as its own process: it describes itself on stdout, serves the
//! official Python client through the kubeconfig it wrote, obeys the admin fault switches
//! (500s, stall, clear), reports its commit log, and exits cleanly on SIGTERM.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3";

const SCRIPT: &str = r#"
import sys, json
from kubernetes import client, config
from kubernetes.client.rest import ApiException
api = client.CoordinationV1Api(config.new_client_from_config(config_file=sys.argv[1]))
op = sys.argv[2]
try:
    if op == "create":
        spec = client.V1LeaseSpec(holder_identity="proc", lease_duration_seconds=5)
        api.create_namespaced_lease("kube-system", client.V1Lease(metadata=client.V1ObjectMeta(name="cpvip"), spec=spec))
    got = api.read_namespaced_lease("cpvip", "kube-system")
    print("holder", got.spec.holder_identity)
except ApiException as e:
    print("status", e.status, json.loads(e.body)["reason"])
"#;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python(kubeconfig: &str, op: &str) -> String {
    let out = Command::new(PYTHON)
        .args(["-c", SCRIPT, kubeconfig, op])
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn admin(addr: &str, method: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect admin");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

#[test]
fn lease_server_process_with_admin_fault_switches() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import kubernetes"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{PYTHON} cannot import kubernetes: apt-get install python3-kubernetes"
    );
    let dir = std::env::temp_dir().join(format!("cpvip-lease-proc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_cpvip-lab"))
            .args([
                "lease-server",
                "--listen",
                "127.0.0.1:0",
                "--token",
                "secret-token",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn cpvip-lab lease-server"),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("description line");
    let desc: serde_json::Value = serde_json::from_str(&line).expect("JSON description");
    assert_eq!(desc["token"], "secret-token");
    let kc = desc["kubeconfig_token"]
        .as_str()
        .expect("kubeconfig path")
        .to_string();
    let mode = std::fs::metadata(&kc)
        .expect("kubeconfig")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "credentials are private");
    let admin_addr = desc["admin"]
        .as_str()
        .and_then(|a| a.strip_prefix("http://"))
        .expect("admin address")
        .to_string();

    assert_eq!(python(&kc, "create"), "holder proc");
    admin(&admin_addr, "POST", "/fail?seconds=30");
    assert_eq!(python(&kc, "get"), "status 500 InternalError");
    admin(&admin_addr, "POST", "/clear");
    assert_eq!(python(&kc, "get"), "holder proc");
    admin(&admin_addr, "POST", "/stall?seconds=1");
    let t = Instant::now();
    assert_eq!(python(&kc, "get"), "holder proc");
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "the request was held"
    );
    let writes: serde_json::Value =
        serde_json::from_str(&admin(&admin_addr, "GET", "/writes")).expect("writes JSON");
    assert_eq!(writes["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(writes["items"][0]["holder"], "proc");

    let term = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = server.0.wait().expect("wait");
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let _ = std::fs::remove_dir_all(&dir);
}
