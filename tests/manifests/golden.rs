//! The files in `manifests/` are exactly what the binary (node side) and the lab's renderers
//! (router side) produce, so the shipped examples are the tested ones. `CPVIP_BLESS=1` rewrites
//! them; the test then still fails once, so a blessed run is never mistaken for a green one.

use std::path::PathBuf;

use cpvip_lab::config_text::{self, RouterOptions};
use cpvip_lab::topology::Plan;

use super::{EXAMPLE_FLAGS, EXAMPLE_PASSWORD, manifest};

/// Hold time of the lab's router examples (the lab default).
const HOLD_SECS: u16 = 3;

fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

/// Every golden file and its freshly rendered content.
pub fn rendered_golden_files() -> Vec<(&'static str, String)> {
    let plan = Plan::new(3, HOLD_SECS);
    let router = RouterOptions {
        bfd: true,
        password: Some(EXAMPLE_PASSWORD),
    };
    vec![
        ("cpvip-static-pod.yaml", manifest("pod", EXAMPLE_FLAGS).0),
        ("cpvip.service", manifest("systemd", &[]).0),
        ("cpvip.env", manifest("env", EXAMPLE_FLAGS).0),
        ("rbac.yaml", manifest("rbac", &[]).0),
        ("router-bird.conf", config_text::bird_with(&plan, &router)),
        (
            "router-frr-bgpd.conf",
            config_text::frr_bgpd_with(&plan, &router),
        ),
        ("router-frr-bfdd.conf", config_text::frr_bfdd(&plan)),
    ]
}

/// The first line where two texts differ, for the failure message.
fn first_difference(expected: &str, actual: &str) -> String {
    let mut expected_lines = expected.lines();
    let mut actual_lines = actual.lines();
    for number in 1.. {
        match (expected_lines.next(), actual_lines.next()) {
            (None, None) => return "only line endings differ".to_owned(),
            (e, a) if e == a => continue,
            (e, a) => {
                return format!(
                    "line {number}:\n  file:     {}\n  rendered: {}",
                    e.unwrap_or("<end of file>"),
                    a.unwrap_or("<end of output>")
                );
            }
        }
    }
    unreachable!("the loop returns")
}

#[test]
fn golden_files_equal_the_rendered_output() {
    let bless = std::env::var("CPVIP_BLESS").is_ok_and(|value| value == "1");
    let dir = manifests_dir();
    let mut stale = Vec::new();
    for (name, rendered) in rendered_golden_files() {
        let path = dir.join(name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk == rendered {
            continue;
        }
        if bless {
            std::fs::create_dir_all(&dir).expect("create manifests/");
            std::fs::write(&path, &rendered).expect("write a golden file");
            stale.push(format!("{name}: rewritten"));
        } else {
            stale.push(format!(
                "{name} differs from the rendered output at {}",
                first_difference(&on_disk, &rendered)
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n(if the change is intended: CPVIP_BLESS=1 cargo test -p cpvip --test manifests, \
         then review `git diff manifests/`)",
        stale.join("\n")
    );
}

#[test]
fn rendering_is_deterministic_and_independent_of_the_generating_host() {
    let first = rendered_golden_files();
    let second = rendered_golden_files();
    assert_eq!(first, second, "two renderings must be byte-identical");
    // The generating shell's $KUBECONFIG and hostname must not reach a manifest.
    for kind in ["pod", "systemd", "env"] {
        let plain = manifest(kind, EXAMPLE_FLAGS).0;
        let elsewhere = super::manifest_env(
            kind,
            EXAMPLE_FLAGS,
            &[
                ("KUBECONFIG", "/home/operator/.kube/config"),
                ("HOSTNAME", "generating-host"),
            ],
        )
        .0;
        assert_eq!(
            plain, elsewhere,
            "manifest {kind} must not depend on the shell"
        );
        assert!(!plain.contains("/home/operator"), "manifest {kind}");
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let hostname = hostname.trim();
    for (name, text) in &first {
        // A short or generic hostname could appear by chance; a real one cannot.
        if hostname.len() >= 6 {
            assert!(
                !text.contains(hostname),
                "{name} contains this machine's hostname {hostname:?}"
            );
        }
        assert!(
            !text.contains("CPVIP_BGP_ROUTER_ID"),
            "{name} must not bake in a router id"
        );
    }
}

#[test]
fn router_examples_parse_in_bird_and_frr() {
    cpvip_lab::netns::require_binary("bird", "apt-get install -y bird2");
    cpvip_lab::netns::require_binary("vtysh", "apt-get install -y frr");
    let dir = cpvip_lab::netns::TempDir::new("manifest-routers").expect("temp dir");
    let files = rendered_golden_files();
    let text = |name: &str| {
        files
            .iter()
            .find(|(file, _)| *file == name)
            .map(|(_, text)| text.clone())
            .expect("a rendered router example")
    };
    let bird = dir
        .write("bird.conf", &text("router-bird.conf"))
        .expect("write bird.conf");
    let output = std::process::Command::new("bird")
        .args(["-p", "-c"])
        .arg(&bird)
        .output()
        .expect("bird runs");
    assert!(
        output.status.success(),
        "bird -p rejects router-bird.conf: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (name, daemon) in [
        ("router-frr-bgpd.conf", "bgpd"),
        ("router-frr-bfdd.conf", "bfdd"),
    ] {
        let path = dir.write(name, &text(name)).expect("write an FRR config");
        // The daemon's own parser; it exits 0 even on errors, so its complaints are checked.
        let output = std::process::Command::new(format!("/usr/lib/frr/{daemon}"))
            .arg("-C")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("FRR daemon runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.trim().is_empty(),
            "{daemon} -C rejects {name}: {stderr}"
        );
        let output = std::process::Command::new("vtysh")
            .arg("-C")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("vtysh runs");
        assert!(
            output.status.success(),
            "vtysh -C rejects {name}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let bgpd = text("router-frr-bgpd.conf");
    let bird = text("router-bird.conf");
    for (router, text, needles) in [
        (
            "FRR",
            &bgpd,
            ["password cpvip-example-md5", "maximum-prefix", " bfd"],
        ),
        (
            "BIRD",
            &bird,
            ["password \"cpvip-example-md5\"", "import limit", "bfd on"],
        ),
    ] {
        for needle in needles {
            assert!(text.contains(needle), "{router} example lacks {needle:?}");
        }
    }
}
