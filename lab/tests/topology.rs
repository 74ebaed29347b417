//! The lab's data centre without cpvip: routers accept their configurations, the client reaches
//! every node through the router, stand-ins answer as RKE2 would (401 without credentials, 200
//! with the kubeconfig's client certificate), the probe measures a real outage, and `Lab` leaves
//! no namespace behind.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use cpvip_lab::demo::client_probe;
use cpvip_lab::netns::{require_root, run};
use cpvip_lab::topology::{Lab, LabConfig, RouterKind};

fn lab(tag: &str, router: RouterKind) -> Lab {
    require_root("the lab creates network namespaces");
    let bin = Path::new(env!("CARGO_BIN_EXE_cpvip-lab"));
    let mut config = LabConfig::new(bin.parent().expect("dir"));
    config.lab_bin = bin.to_path_buf();
    config.test_tag = Some(tag.into());
    config.router = router;
    config.bfd = true;
    config.start_cpvip = false;
    Lab::up(config, &|l| eprintln!("[{tag}] {l}")).expect("lab up")
}

/// This test process's namespaces of one lab (names are cpvt-<tag>-<role>-<pid>-<n>).
fn namespaces_of(tag: &str) -> usize {
    let (prefix, pid) = (format!("cpvt-{tag}-"), format!("-{}-", std::process::id()));
    run(&["ip", "netns", "list"])
        .expect("list")
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(&pid))
        .count()
}

#[test]
fn client_reaches_stand_ins_through_the_bird_router_and_probe_sees_a_cut() {
    let lab = lab("topo-bird", RouterKind::Bird);
    let n1 = IpAddr::V4(lab.plan.nodes[0].v4);
    assert_eq!(lab.client_curl(n1, 6443, "/").expect("curl").trim(), "n1");
    assert_eq!(
        lab.client_curl(n1, 9345, "/ping").expect("ping").trim(),
        "pong"
    );
    let n2v6 = IpAddr::V6(lab.plan.nodes[1].v6);
    assert_eq!(
        lab.client_curl(n2v6, 9345, "/").expect("curl v6").trim(),
        "n2"
    );
    // /readyz: 401 without credentials, 200 with the kubeconfig's EC client certificate.
    let status = |args: &[&str]| -> String {
        let mut argv = vec!["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}"];
        argv.extend(args);
        argv.push("https://127.0.0.1:6443/readyz");
        lab.nodes[0].ns.exec(&argv).expect("curl readyz")
    };
    assert_eq!(status(&[]), "401");
    let kubeconfig = std::fs::read_to_string(&lab.kubeconfig).expect("kubeconfig");
    assert!(
        kubeconfig.contains("client-certificate-data"),
        "the lab uses the client-certificate kubeconfig"
    );
    lab.set_standin_failing(0, 9345, true).expect("switch");
    assert!(
        lab.client_curl(n1, 9345, "/ping")
            .expect("ping")
            .contains("not ready")
    );

    // The probe measures a real outage: cut n1 for ~1 s.
    let probe = client_probe(&lab, n1).expect("probe");
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    lab.set_link(0, false).expect("cut");
    std::thread::sleep(Duration::from_secs(1));
    lab.set_link(0, true).expect("reconnect");
    std::thread::sleep(Duration::from_millis(800));
    let report = probe.finish().expect("report");
    let outage = report.outage_after(t0);
    assert!(
        outage >= Duration::from_millis(900) && outage < Duration::from_secs(3),
        "outage {outage:?}"
    );
    assert!(report.lost_after(t0) > 0);
    assert!(namespaces_of("topo-bird") >= 6);
    drop(lab);
    assert_eq!(
        namespaces_of("topo-bird"),
        0,
        "the lab removed its namespaces"
    );
}

#[test]
fn frr_router_accepts_the_lab_configuration() {
    let lab = lab("topo-frr", RouterKind::Frr);
    let n3 = IpAddr::V4(lab.plan.nodes[2].v4);
    assert_eq!(lab.client_curl(n3, 6443, "/").expect("curl").trim(), "n3");
    let Some(cpvip_lab::topology::Router::Frr(frr)) = &lab.router else {
        panic!("FRR router")
    };
    let config = frr.vtysh(&["show running-config"]).expect("vtysh");
    assert!(
        config.contains("neighbor 10.99.0.11 remote-as 65001"),
        "{config}"
    );
    assert!(config.contains("maximum-paths 8"), "{config}");
}
