//! VipManager against the real kernel, in namespaces made by each test: bind/unbind on several
//! kinds of interface, labels and flags as `ip -j addr` shows them, the restoring watch, the
//! start-up clean-up and the error messages.

mod common;

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use common::{find_addr, ip, wait_present};
use cpvip_lab::netns::{Netns, require_root, veth, wait_until};
use cpvip_netlink::{Error, VipManager};

const WHY: &str = "it adds addresses to interfaces in network namespaces";

/// Runs blocking helper code (`ip` commands) from inside the async scenario.
fn sync<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// Binds twice, checks what the kernel shows, unbinds twice, checks it is gone.
async fn bind_unbind_cycle(ns: &Netns, dev: &str, v4: IpAddr, v6: IpAddr) {
    let m = VipManager::new(dev, [v4, v6, v4]).await.expect("manager");
    assert_eq!(m.vips(), &[v4, v6], "duplicates are dropped");
    assert!(!m.is_bound());
    m.bind().await.expect("bind");
    m.bind().await.expect("bind is idempotent");
    assert!(m.is_bound());
    assert_eq!(m.bound_addresses(), vec![v4, v6]);

    let a4 = sync(|| find_addr(ns, dev, v4)).expect("IPv4 VIP on the interface");
    assert_eq!(a4["prefixlen"], 32);
    assert_eq!(a4["label"], format!("{dev}:cpvip"));
    let a6 = sync(|| find_addr(ns, dev, v6)).expect("IPv6 VIP on the interface");
    assert_eq!(a6["prefixlen"], 128);
    assert_eq!(a6["nodad"], true);
    assert_eq!(a6["noprefixroute"], true);
    assert!(
        a6.get("tentative").is_none(),
        "NODAD: never tentative: {a6}"
    );
    let mut present = m.present().await.expect("dump");
    present.sort();
    assert_eq!(present, vec![v4, v6]);

    m.unbind().await.expect("unbind");
    m.unbind().await.expect("unbind is idempotent");
    assert!(!m.is_bound());
    assert!(m.bound_addresses().is_empty());
    assert!(sync(|| find_addr(ns, dev, v4)).is_none());
    assert!(sync(|| find_addr(ns, dev, v6)).is_none());
    assert_eq!(
        m.stats().restores,
        0,
        "our own unbind is not an external delete"
    );
    m.shutdown().await;
}

#[test]
fn bind_unbind_on_lo() {
    require_root(WHY);
    let ns = Netns::new("nl-lo").expect("netns");
    ns.block_on(|| bind_unbind_cycle(&ns, "lo", ip("10.77.0.1"), ip("fd00:77::1")))
        .expect("scenario");
}

/// The kernel these tests run on has no `dummy` driver (CONFIG_DUMMY off); `ifb` is the closest
/// stand-in: a software device without ARP, up without a carrier partner.
#[test]
fn bind_unbind_on_software_device() {
    require_root(WHY);
    let ns = Netns::new("nl-sw").expect("netns");
    let kind = if ns
        .exec(&["ip", "link", "add", "dum0", "type", "dummy"])
        .is_ok()
    {
        "dummy"
    } else {
        ns.exec(&["ip", "link", "add", "dum0", "type", "ifb"])
            .expect("neither dummy nor ifb links can be created");
        "ifb"
    };
    ns.exec(&["ip", "link", "set", "dum0", "up"]).expect("up");
    eprintln!("software device kind: {kind}");
    ns.block_on(|| bind_unbind_cycle(&ns, "dum0", ip("10.77.0.2"), ip("fd00:77::2")))
        .expect("scenario");
}

/// A veth towards a peer namespace; the peer connects to both VIPs over the link right after
/// `bind()` returned (no DAD wait for IPv6).
#[test]
fn bind_on_veth_vips_answer_at_once() {
    require_root(WHY);
    let node = Netns::new("nl-vn").expect("netns");
    let peer = Netns::new("nl-vp").expect("netns");
    veth(&node, "eth0", &peer, "eth0").expect("veth");
    node.add_addr("eth0", "10.0.5.1/24").expect("addr");
    node.add_addr("eth0", "fd00:5::1/64").expect("addr");
    peer.add_addr("eth0", "10.0.5.2/24").expect("addr");
    peer.add_addr("eth0", "fd00:5::2/64").expect("addr");
    peer.exec(&["ip", "route", "add", "10.77.0.3/32", "via", "10.0.5.1"])
        .expect("route");
    peer.exec(&[
        "ip",
        "-6",
        "route",
        "add",
        "fd00:77::3/128",
        "via",
        "fd00:5::1",
    ])
    .expect("route");
    let (v4, v6) = (ip("10.77.0.3"), ip("fd00:77::3"));

    node.block_on(|| async {
        bind_unbind_cycle(&node, "eth0", v4, v6).await;

        let m = VipManager::new("eth0", [v4, v6]).await.expect("manager");
        m.bind().await.expect("bind");
        for vip in [v6, v4] {
            // Binding a listener to a tentative IPv6 address fails (EADDRNOTAVAIL): this
            // succeeding right after bind() shows the address is usable at once.
            let listener = tokio::net::TcpListener::bind(SocketAddr::new(vip, 18080))
                .await
                .expect("listener on the VIP right after bind()");
            let connect = tokio::task::spawn_blocking({
                let peer_name = peer.name().to_owned();
                move || {
                    Netns::adopt(&peer_name)
                        .keep()
                        .enter(|| {
                            TcpStream::connect_timeout(
                                &SocketAddr::new(vip, 18080),
                                Duration::from_secs(5),
                            )
                        })
                        .expect("enter peer")
                }
            });
            let (_conn, from) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
                .await
                .expect("accepted in time")
                .expect("accept");
            assert!(
                from.ip() == ip("10.0.5.2") || from.ip() == ip("fd00:5::2"),
                "{from}"
            );
            connect.await.expect("join").expect("peer connected");
        }
        m.unbind().await.expect("unbind");
    })
    .expect("scenario");
}

#[test]
fn external_delete_is_restored_with_label() {
    require_root(WHY);
    let ns = Netns::new("nl-rs").expect("netns");
    veth(&ns, "eth0", &ns, "eth1").expect("veth");
    let (v4, v6) = (ip("10.77.0.4"), ip("fd00:77::4"));
    ns.block_on(|| async {
        let m = VipManager::new("eth0", [v4, v6]).await.expect("manager");
        m.bind().await.expect("bind");
        sync(|| ns.exec(&["ip", "addr", "del", "10.77.0.4/32", "dev", "eth0"])).expect("del");
        assert!(sync(|| wait_present(&ns, "eth0", v4)), "IPv4 VIP restored");
        sync(|| ns.exec(&["ip", "addr", "del", "fd00:77::4/128", "dev", "eth0"])).expect("del");
        assert!(sync(|| wait_present(&ns, "eth0", v6)), "IPv6 VIP restored");
        let a4 = sync(|| find_addr(&ns, "eth0", v4)).expect("present");
        assert_eq!(a4["label"], "eth0:cpvip", "restored with our label");
        let a6 = sync(|| find_addr(&ns, "eth0", v6)).expect("present");
        assert_eq!(a6["nodad"], true);
        assert!(
            sync(
                || wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
                    m.stats().restores >= 2
                })
            ),
            "restores counted: {:?}",
            m.stats()
        );
        m.unbind().await.expect("unbind");
        m.shutdown().await;
    })
    .expect("scenario");
}

/// The kernel flushes IPv6 addresses when a link goes down; the watcher puts the VIP back (the
/// kernel accepts it on a down link) and it is still there once the link is up again.
#[test]
fn link_down_up_keeps_ipv6_vip() {
    require_root(WHY);
    let ns = Netns::new("nl-ld").expect("netns");
    veth(&ns, "eth0", &ns, "eth1").expect("veth");
    let (v4, v6) = (ip("10.77.0.5"), ip("fd00:77::5"));
    ns.block_on(|| async {
        let m = VipManager::new("eth0", [v4, v6]).await.expect("manager");
        m.bind().await.expect("bind");
        sync(|| ns.exec(&["ip", "link", "set", "eth0", "down"])).expect("down");
        assert!(
            sync(
                || wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
                    m.stats().restores >= 1
                })
            ),
            "the flushed IPv6 VIP was restored: {:?}",
            m.stats()
        );
        assert!(sync(|| wait_present(&ns, "eth0", v6)));
        sync(|| ns.exec(&["ip", "link", "set", "eth0", "up"])).expect("up");
        // Let the link-up settle, then the VIPs must still be there.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            sync(|| find_addr(&ns, "eth0", v6)).is_some(),
            "IPv6 VIP after link up"
        );
        assert!(
            sync(|| find_addr(&ns, "eth0", v4)).is_some(),
            "IPv4 VIP after link up"
        );
        m.unbind().await.expect("unbind");
    })
    .expect("scenario");
}

/// An interface deleted and created again under the same name gets a new index; the watcher
/// follows it and puts the VIPs back.
#[test]
fn recreated_interface_gets_the_vips_back() {
    require_root(WHY);
    let ns = Netns::new("nl-rc").expect("netns");
    veth(&ns, "eth0", &ns, "eth1").expect("veth");
    let (v4, v6) = (ip("10.77.0.11"), ip("fd00:77::11"));
    ns.block_on(|| async {
        let m = VipManager::new("eth0", [v4, v6]).await.expect("manager");
        let old_index = m.link().index;
        m.bind().await.expect("bind");
        sync(|| ns.exec(&["ip", "link", "del", "eth0"])).expect("del link");
        sync(|| veth(&ns, "eth0", &ns, "eth1")).expect("re-create");
        assert!(sync(|| wait_present(&ns, "eth0", v4)), "IPv4 VIP back");
        assert!(sync(|| wait_present(&ns, "eth0", v6)), "IPv6 VIP back");
        assert_ne!(m.link().index, old_index, "follows the new index");
        m.unbind().await.expect("unbind");
        assert!(sync(|| find_addr(&ns, "eth0", v4)).is_none());
    })
    .expect("scenario");
}

#[test]
fn stale_vips_removed_unlabelled_conflicts_left_alone() {
    require_root(WHY);
    let ns = Netns::new("nl-st").expect("netns");
    veth(&ns, "eth0", &ns, "eth1").expect("veth");
    // What a crashed previous run leaves behind ...
    ns.exec(&[
        "ip",
        "addr",
        "add",
        "10.77.0.6/32",
        "dev",
        "eth0",
        "label",
        "eth0:cpvip",
    ])
    .expect("add");
    ns.exec(&[
        "ip",
        "addr",
        "add",
        "fd00:77::6/128",
        "dev",
        "eth0",
        "nodad",
        "noprefixroute",
    ])
    .expect("add");
    // ... and what an operator (or another tool) put there.
    ns.exec(&["ip", "addr", "add", "10.77.0.7/32", "dev", "eth0"])
        .expect("add");
    ns.exec(&[
        "ip",
        "addr",
        "add",
        "fd00:77::7/128",
        "dev",
        "eth0",
        "nodad",
    ])
    .expect("add");
    let vips = [
        ip("10.77.0.6"),
        ip("fd00:77::6"),
        ip("10.77.0.7"),
        ip("fd00:77::7"),
    ];
    let report = ns
        .block_on(|| async {
            let m = VipManager::new("eth0", vips).await.expect("manager");
            m.cleanup_stale().await.expect("cleanup")
        })
        .expect("scenario");
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(removed, vec![ip("10.77.0.6"), ip("fd00:77::6")]);
    let mut conflicts = report.conflicts.clone();
    conflicts.sort();
    assert_eq!(conflicts, vec![ip("10.77.0.7"), ip("fd00:77::7")]);
    assert!(find_addr(&ns, "eth0", ip("10.77.0.6")).is_none());
    assert!(find_addr(&ns, "eth0", ip("fd00:77::6")).is_none());
    assert!(find_addr(&ns, "eth0", ip("10.77.0.7")).is_some());
    assert!(find_addr(&ns, "eth0", ip("fd00:77::7")).is_some());
}

#[test]
fn foreign_vip_reported_while_not_bound() {
    require_root(WHY);
    let ns = Netns::new("nl-fv").expect("netns");
    ns.block_on(|| async {
        let m = VipManager::new("lo", [ip("10.77.0.8")])
            .await
            .expect("manager");
        sync(|| ns.exec(&["ip", "addr", "add", "10.77.0.8/32", "dev", "lo"])).expect("add");
        assert!(
            sync(
                || wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
                    m.stats().foreign_sightings == 1
                })
            ),
            "foreign VIP reported: {:?}",
            m.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            m.stats().foreign_sightings,
            1,
            "reported once per appearance"
        );
        assert!(
            sync(|| find_addr(&ns, "lo", ip("10.77.0.8"))).is_some(),
            "left alone"
        );
        assert_eq!(m.stats().restores, 0);
        // Gone and back: a new appearance, reported again.
        sync(|| ns.exec(&["ip", "addr", "del", "10.77.0.8/32", "dev", "lo"])).expect("del");
        tokio::time::sleep(Duration::from_millis(100)).await;
        sync(|| ns.exec(&["ip", "addr", "add", "10.77.0.8/32", "dev", "lo"])).expect("add");
        assert!(
            sync(
                || wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
                    m.stats().foreign_sightings == 2
                })
            ),
            "reappearance reported: {:?}",
            m.stats()
        );
    })
    .expect("scenario");
}

#[test]
fn unknown_interface_is_named() {
    require_root(WHY);
    let ns = Netns::new("nl-ui").expect("netns");
    let err = ns
        .block_on(|| async { VipManager::new("nosuch0", [ip("10.77.0.9")]).await })
        .expect("scenario")
        .expect_err("no such interface");
    assert!(matches!(err, Error::UnknownInterface { .. }), "{err:?}");
    assert_eq!(err.to_string(), "interface \"nosuch0\" does not exist");
}

#[test]
fn ipv6_disabled_error_names_the_sysctl() {
    require_root(WHY);
    let ns = Netns::new("nl-v6").expect("netns");
    veth(&ns, "eth0", &ns, "eth1").expect("veth");
    ns.exec(&["sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1"])
        .expect("sysctl");
    let (v4, v6) = (ip("10.77.0.10"), ip("fd00:77::10"));
    ns.block_on(|| async {
        let m = VipManager::new("eth0", [v4, v6]).await.expect("manager");
        let err = m.bind().await.expect_err("IPv6 is disabled");
        assert!(matches!(err, Error::Ipv6Disabled { .. }), "{err:?}");
        assert!(
            err.to_string().contains("net.ipv6.conf.eth0.disable_ipv6"),
            "{err}"
        );
        assert!(!m.is_bound(), "a failed bind leaves the manager unbound");
        assert!(
            sync(|| find_addr(&ns, "eth0", v4)).is_none(),
            "the IPv4 VIP added before the failure was rolled back"
        );
    })
    .expect("scenario");
}
