//! Codec throughput: decoding full-size UPDATEs (prefixes/s, the ingest path when a router
//! sends us its table) and encoding our announcements (routes/s).

use std::collections::BTreeSet;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use cpvip_bgp::wire::{
    Announcement, Community, DecodeContext, LargeCommunity, MAX_MESSAGE_LEN, Message, Route,
    decode_message, encode,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn attrs(v6: bool) -> Announcement {
    Announcement {
        as_path: vec![65001, 65002, 65003],
        next_hop: if v6 {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
        },
        med: Some(10),
        local_pref: None,
        communities: vec![Community::new(65000, 100)],
        large_communities: vec![LargeCommunity {
            global: 65001,
            local1: 1,
            local2: 2,
        }],
    }
}

/// Full 4096-byte UPDATEs of /24s (v4) or /48s (v6), as a router sends a table.
fn table_updates(v6: bool, n: u32) -> Vec<Bytes> {
    let routes: Vec<Route> = (0..n)
        .map(|i| {
            if v6 {
                let a = Ipv6Addr::new(0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 0);
                Route::new(IpAddr::V6(a), 48).expect("route")
            } else {
                Route::new(IpAddr::V4(Ipv4Addr::from((10 << 24) | (i << 8))), 24).expect("route")
            }
        })
        .collect();
    encode::announce(&routes, &attrs(v6), true, MAX_MESSAGE_LEN).expect("encode")
}

fn decode(c: &mut Criterion) {
    let ctx = DecodeContext {
        four_octet_as: true,
        ibgp: false,
        max_len: MAX_MESSAGE_LEN,
    };
    for v6 in [false, true] {
        let msgs = table_updates(v6, 20_000);
        let prefixes: u64 = msgs
            .iter()
            .map(|m| match decode_message(m.clone(), &ctx) {
                Ok(Message::Update(u)) => u64::from(u.announced),
                _ => 0,
            })
            .sum();
        let mut g = c.benchmark_group("decode_update");
        g.throughput(Throughput::Elements(prefixes));
        g.bench_function(
            if v6 {
                "ipv6_48_prefixes"
            } else {
                "ipv4_24_prefixes"
            },
            |b| {
                b.iter(|| {
                    for m in &msgs {
                        black_box(decode_message(black_box(m.clone()), &ctx)).ok();
                    }
                })
            },
        );
        g.finish();
    }
}

fn encode_routes(c: &mut Criterion) {
    for (v6, n) in [(false, 1u32), (false, 1000), (true, 1000)] {
        let routes: BTreeSet<Route> = (0..n)
            .map(|i| {
                if v6 {
                    Route::host(IpAddr::V6(Ipv6Addr::from(
                        (0x2001_0db8_u128 << 96) | u128::from(i),
                    )))
                } else {
                    Route::host(IpAddr::V4(Ipv4Addr::from(0xcb00_7100 + i)))
                }
            })
            .collect();
        let list: Vec<Route> = routes.into_iter().collect();
        let a = attrs(v6);
        let mut g = c.benchmark_group("encode_announce");
        g.throughput(Throughput::Elements(u64::from(n)));
        let name = format!("{}_{}_hosts", if v6 { "ipv6" } else { "ipv4" }, n);
        g.bench_function(name, |b| {
            b.iter(|| {
                encode::announce(black_box(&list), &a, true, MAX_MESSAGE_LEN).expect("encode")
            })
        });
        g.finish();
    }
}

criterion_group!(benches, decode, encode_routes);
criterion_main!(benches);
