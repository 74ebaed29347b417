//! Error messages without CAP_NET_ADMIN / CAP_NET_RAW. Each test re-runs its own test binary
//! (this very test, with `CPVIP_CAP_HELPER` set) inside the namespace under `setpriv` with the
//! capability removed from the bounding set, so the library runs as a root process lacking it.

mod common;

use std::process::Command;

use common::ip;
use cpvip_lab::netns::{Netns, require_binary, require_root, veth};
use cpvip_netlink::{AnnounceConfig, VipManager};

const HELPER_ENV: &str = "CPVIP_CAP_HELPER";
const MARKER: &str = "HELPER-ERROR: ";

/// In the helper child: runs `action` and prints its error after a marker, then exits.
fn helper_mode(action: &str) -> bool {
    if std::env::var(HELPER_ENV).as_deref() != Ok(action) {
        return false;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(async {
        let m = VipManager::new("eth0", [ip("10.77.2.1"), ip("fd00:77:2::1")]).await?;
        match action {
            "bind" => m.bind().await,
            _ => m
                .announcer(AnnounceConfig::default())
                .announce()
                .await
                .map(|_| ()),
        }
    });
    match result {
        Ok(()) => println!("{MARKER}none"),
        Err(e) => println!("{MARKER}{e}"),
    }
    true
}

/// Runs `test_name` of this binary in `ns` without `capability`; returns the helper's error line.
fn run_without(ns: &Netns, capability: &str, test_name: &str, action: &str) -> String {
    let exe = std::env::current_exe().expect("own path");
    let drop = format!("-{capability}");
    let args: Vec<std::ffi::OsString> = vec![
        "setpriv".into(),
        format!("--inh-caps={drop}").into(),
        format!("--bounding-set={drop}").into(),
        "--".into(),
        exe.into_os_string(),
        "--exact".into(),
        test_name.into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ];
    let argv = ns.argv(&args);
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .env(HELPER_ENV, action)
        .output()
        .expect("run helper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.split_once(MARKER).map(|(_, rest)| rest))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            panic!(
                "helper printed no result; stdout: {stdout} stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

fn lab(tag: &str) -> Netns {
    require_root("it drops capabilities inside a network namespace");
    require_binary("setpriv", "apt-get install util-linux");
    let ns = Netns::new(tag).expect("netns");
    veth(&ns, "eth0", &ns, "eth1").expect("veth");
    ns
}

#[test]
fn bind_without_cap_net_admin_names_the_capability() {
    if helper_mode("bind") {
        return;
    }
    let ns = lab("cap-adm");
    let msg = run_without(
        &ns,
        "net_admin",
        "bind_without_cap_net_admin_names_the_capability",
        "bind",
    );
    assert!(msg.contains("CAP_NET_ADMIN"), "{msg}");
    assert!(msg.contains("10.77.2.1"), "names what was attempted: {msg}");
    let addrs = ns
        .exec(&["ip", "addr", "show", "dev", "eth0"])
        .expect("ip addr");
    assert!(!addrs.contains("10.77.2.1"), "nothing was added: {addrs}");
}

#[test]
fn announce_without_cap_net_raw_names_the_capability() {
    if helper_mode("announce") {
        return;
    }
    let ns = lab("cap-raw");
    let msg = run_without(
        &ns,
        "net_raw",
        "announce_without_cap_net_raw_names_the_capability",
        "announce",
    );
    assert!(msg.contains("CAP_NET_RAW"), "{msg}");
}
