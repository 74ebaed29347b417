//! VIP latency benchmarks (need root; they make their own network namespace):
//! - `bind_unbind/*`: one `bind()` + `unbind()` round trip (target: median < 1 ms);
//! - `restore_after_external_delete`: from an external RTM_DELADDR of a bound VIP until the
//!   RTM_NEWADDR of its restore is seen by an independent netlink listener (target: < 100 ms).
//!
//! Run: `cargo bench -p cpvip-netlink --bench vip`. The whole criterion run happens on a thread
//! that has entered the namespace, with a current-thread runtime, so every netlink socket
//! (the manager's and the bench's own) belongs to it.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use cpvip_lab::netns::{Netns, require_root, veth};
use cpvip_netlink::VipManager;
use criterion::Criterion;
use futures_util::StreamExt;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::AddressAttribute;
use rtnetlink::{AddressMessageBuilder, MulticastGroup};
use tokio::runtime::Runtime;

const V4: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn bench_bind_unbind(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("bind_unbind");
    let cases: [(&str, Vec<IpAddr>); 2] = [
        ("veth_ipv4", vec![IpAddr::V4(V4)]),
        (
            "veth_ipv4_ipv6",
            vec![IpAddr::V4(V4), "fd00:88::1".parse().expect("literal")],
        ),
    ];
    for (name, vips) in cases {
        let manager = rt.block_on(VipManager::new("eth0", vips)).expect("manager");
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    manager.bind().await.expect("bind");
                    manager.unbind().await.expect("unbind");
                })
            })
        });
        rt.block_on(manager.shutdown());
    }
    group.finish();
}

fn bench_restore(c: &mut Criterion, rt: &Runtime) {
    let manager = rt
        .block_on(VipManager::new("eth0", [IpAddr::V4(V4)]))
        .expect("manager");
    let index = manager.link().index;
    rt.block_on(manager.bind()).expect("bind");

    // An independent "operator": its own request socket and its own event listener.
    let _runtime_context = rt.enter();
    let (conn, handle, _) = rtnetlink::new_connection().expect("netlink");
    let _conn = rt.spawn(conn);
    let (mconn, _, mut events) =
        rtnetlink::new_multicast_connection(&[MulticastGroup::Ipv4Ifaddr]).expect("netlink");
    let _mconn = rt.spawn(mconn);

    let mut group = c.benchmark_group("restore");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("restore_after_external_delete", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let msg = AddressMessageBuilder::<Ipv4Addr>::new()
                        .index(index)
                        .address(V4, 32)
                        .build();
                    let start = Instant::now();
                    handle
                        .address()
                        .del(msg)
                        .execute()
                        .await
                        .expect("external delete");
                    loop {
                        let (msg, _) = tokio::time::timeout(Duration::from_secs(2), events.next())
                            .await
                            .expect("restored within 2 s")
                            .expect("event stream");
                        if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) =
                            msg.payload
                            && a.attributes
                                .contains(&AddressAttribute::Local(IpAddr::V4(V4)))
                        {
                            break;
                        }
                    }
                    total += start.elapsed();
                }
                total
            })
        })
    });
    group.finish();
    let stats = manager.stats();
    println!("restores counted by the manager: {}", stats.restores);
    rt.block_on(async {
        manager.unbind().await.expect("unbind");
        manager.shutdown().await;
    });
}

fn main() {
    require_root("the benchmark adds addresses in a network namespace it makes");
    let ns = Netns::new("bench-vip").expect("netns");
    let peer = Netns::new("bench-vip-peer").expect("netns");
    veth(&ns, "eth0", &peer, "eth0").expect("veth");
    ns.enter(|| {
        let rt = runtime();
        // Criterion finds the target dir with `cargo metadata`, which fails inside the namespace
        // (no network) and falls back to ./target of the package; point it at the workspace's.
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
        let mut c = Criterion::default()
            .output_directory(&out)
            .configure_from_args();
        bench_bind_unbind(&mut c, &rt);
        bench_restore(&mut c, &rt);
        c.final_summary();
    })
    .expect("enter namespace");
}
