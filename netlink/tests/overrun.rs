//! Lost events: when the watcher's netlink socket overruns (ENOBUFS), the deletion of a VIP may
//! be among the dropped events; the watcher must notice the overrun and resynchronise from a
//! dump. The periodic check is set to an hour so only the overrun path can restore the VIP.

mod common;

use std::fmt::Write as _;
use std::time::Duration;

use common::{find_addr, ip};
use cpvip_lab::netns::{Netns, TempDir, require_root, veth};
use cpvip_netlink::{VipManager, VipOptions};

#[test]
fn vip_deleted_during_overrun_is_restored_by_resync() {
    require_root("it floods address events in a network namespace");
    let ns = Netns::new("nl-ov").expect("netns");
    veth(&ns, "eth0", &ns, "eth1").expect("veth");
    let dir = TempDir::new("nl-ov").expect("temp dir");
    // Far more address events than the socket's receive buffer holds (~200 KiB of skbs).
    let mut batch = String::new();
    for n in 0..4000u32 {
        writeln!(
            batch,
            "addr add 10.201.{}.{}/32 dev eth1",
            n / 250,
            n % 250 + 1
        )
        .expect("fmt");
    }
    let batch_file = dir.write("flood.batch", &batch).expect("write batch");
    let batch_path = batch_file.to_string_lossy().into_owned();
    let vip = ip("10.77.3.1");

    let (restored, stats) = ns
        .enter(|| {
            // A current-thread runtime: while this thread is blocked below, the watcher cannot
            // read its socket, exactly like a daemon stalled under load.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let options = VipOptions {
                    resync_interval: Duration::from_secs(3600),
                };
                let m = VipManager::with_options("eth0", [vip], options)
                    .await
                    .expect("manager");
                m.bind().await.expect("bind");
                // Blocking on purpose: the watcher is starved while the kernel queues events.
                ns.exec(&["ip", "-batch", &batch_path]).expect("flood");
                ns.exec(&["ip", "addr", "del", "10.77.3.1/32", "dev", "eth0"])
                    .expect("delete the VIP while events are being dropped");
                let mut restored = false;
                for _ in 0..300 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    if m.present().await.expect("dump").contains(&vip) {
                        restored = true;
                        break;
                    }
                }
                let stats = m.stats();
                m.unbind().await.expect("unbind");
                (restored, stats)
            })
        })
        .expect("enter namespace");
    assert!(
        stats.overruns >= 1,
        "the flood overran the socket: {stats:?}"
    );
    assert!(restored, "VIP restored after the overrun: {stats:?}");
    assert_eq!(stats.restores, 1, "{stats:?}");
    assert!(find_addr(&ns, "eth0", vip).is_none(), "unbound at the end");
}
