//! Golden vectors, packet tests from raw bytes and proptest round trips of the facade.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use proptest::prelude::*;
use rustbgpd_wire as codec;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
        .collect()
}

fn with_marker(body_hex: &str) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend(hex(body_hex));
    v
}

const ASN: u32 = 4_200_000_001;

fn golden_announcement() -> Announcement {
    Announcement {
        as_path: vec![ASN],
        next_hop: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        med: None,
        local_pref: None,
        communities: vec![Community::new(65000, 100)],
        large_communities: vec![LargeCommunity {
            global: ASN,
            local1: 1,
            local2: 2,
        }],
    }
}

/// crates.md §1.2: the UPDATE that netgauze and rustbgpd-wire both produced, byte for byte.
#[test]
fn golden_update_v4() {
    let want = with_marker(
        "0046 02 0000 002a 40010100 4002060201fa56ea01 400304c0000201 c00804fde80064
         c0200cfa56ea010000000100000002 20cb00710a",
    );
    let route: Route = "203.0.113.10/32".parse().expect("route");
    let got =
        encode::announce(&[route], &golden_announcement(), true, MAX_MESSAGE_LEN).expect("encode");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].as_ref(), want.as_slice());
}

#[test]
fn golden_open_4_octet_asn_uses_as_trans() {
    let open = Open::ours(ASN, 90, Ipv4Addr::new(192, 0, 2, 1), true, true);
    let got = encode::open(&open).expect("encode");
    let want = with_marker(
        "0035 01 04 5ba0 005a c0000201 18 02 16
         01040001 0001 01040002 0001 0200 0600 4104fa56ea01",
    );
    assert_eq!(got.as_ref(), want.as_slice());
    let Message::Open(back) = decode_message(got, &DecodeContext::default()).expect("decode")
    else {
        panic!("not an OPEN");
    };
    assert_eq!(back, open);
    assert_eq!(back.asn(), ASN);
}

#[test]
fn golden_keepalive_eor_refresh() {
    assert_eq!(
        encode::keepalive().as_ref(),
        with_marker("0013 04").as_slice()
    );
    assert_eq!(
        encode::end_of_rib(Family::Ipv4Unicast).as_ref(),
        with_marker("0017 02 0000 0000").as_slice()
    );
    assert_eq!(
        encode::end_of_rib(Family::Ipv6Unicast).as_ref(),
        with_marker("001d 02 0000 0006 800f03 0002 01").as_slice()
    );
    assert_eq!(
        encode::route_refresh(Family::Ipv6Unicast).as_ref(),
        with_marker("0017 05 0002 00 01").as_slice()
    );
    let ctx = DecodeContext::default();
    for fam in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        let Message::Update(s) = decode_message(encode::end_of_rib(fam), &ctx).expect("eor") else {
            panic!("not an UPDATE");
        };
        assert_eq!(s.end_of_rib, Some(fam));
        assert_eq!(s.disposition, UpdateDisposition::Clean);
    }
}

#[test]
fn admin_shutdown_carries_rfc9003_message() {
    let n = Notification::admin_shutdown("maintenance: node drained");
    let b = encode::notification(&n);
    assert_eq!(&b[16..21], &[0, 21 + 26, 3, 6, 2]);
    assert_eq!(b[21], 25);
    let Message::Notification(back) = decode_message(b, &DecodeContext::default()).expect("decode")
    else {
        panic!("not a NOTIFICATION");
    };
    assert_eq!(
        back.shutdown_message().as_deref(),
        Some("maintenance: node drained")
    );
    // Truncated at a character boundary, never more than 255 octets.
    let long = "é".repeat(200);
    let n = Notification::admin_shutdown(&long);
    assert_eq!(usize::from(n.data[0]), n.data.len() - 1);
    assert!(n.data.len() - 1 <= 255);
    assert!(n.shutdown_message().is_some());
}

#[test]
fn frame_reader_splits_and_rejects_bad_headers() {
    let mut r = FrameReader::new();
    let ka = encode::keepalive();
    let mut two = ka.to_vec();
    two.extend_from_slice(&ka);
    r.push(&two[..25]);
    assert_eq!(r.next_frame().expect("ok").as_deref(), Some(ka.as_ref()));
    assert_eq!(r.next_frame().expect("ok"), None);
    r.push(&two[25..]);
    assert_eq!(r.next_frame().expect("ok").as_deref(), Some(ka.as_ref()));

    // Bad marker: 1/1 Connection Not Synchronized.
    let mut r = FrameReader::new();
    let mut bad = ka.to_vec();
    bad[3] = 0;
    r.push(&bad);
    assert_eq!(r.next_frame().map_err(|n| (n.code, n.subcode)), Err((1, 1)));
    // Length over 4096 before extended messages: 1/2 with the length as data.
    let mut r = FrameReader::new();
    r.push(&with_marker("1388 02"));
    let err = r.next_frame().expect_err("too long");
    assert_eq!(
        (err.code, err.subcode, err.data.as_slice()),
        (1, 2, &[0x13, 0x88][..])
    );
    let mut r = FrameReader::new();
    r.set_max_len(EXTENDED_MAX_MESSAGE_LEN);
    r.push(&with_marker("1388 02"));
    assert_eq!(r.next_frame().expect("needs more"), None);
    // Length under 19: 1/2.
    let mut r = FrameReader::new();
    r.push(&with_marker("0012 04"));
    assert_eq!(r.next_frame().map_err(|n| (n.code, n.subcode)), Err((1, 2)));
}

#[test]
fn open_with_bad_version_is_2_1() {
    let b = with_marker("001d 01 03 fde8 005a 0a000001 00");
    let err = decode_message(Bytes::from(b), &DecodeContext::default()).expect_err("v3");
    assert_eq!((err.code, err.subcode), (2, 1));
}

/// UPDATE from a header-less body (withdrawn, attributes and NLRI given as hex).
fn update(attrs_hex: &str, nlri_hex: &str) -> Bytes {
    let attrs = hex(attrs_hex);
    let nlri = hex(nlri_hex);
    let len = 19 + 4 + attrs.len() + nlri.len();
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&u16::try_from(len).expect("len").to_be_bytes());
    v.push(2);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&u16::try_from(attrs.len()).expect("len").to_be_bytes());
    v.extend(attrs);
    v.extend(nlri);
    Bytes::from(v)
}

const ORIGIN: &str = "40010100";
const AS_PATH_65001: &str = "40020602010000fde9";
const NEXT_HOP: &str = "400304 0a000002";
const NLRI_10_1_1_0_24: &str = "180a0101";

fn ebgp4() -> DecodeContext {
    DecodeContext {
        four_octet_as: true,
        ibgp: false,
        max_len: MAX_MESSAGE_LEN,
    }
}

#[test]
fn clean_update_is_counted() {
    let u = update(
        &format!("{ORIGIN}{AS_PATH_65001}{NEXT_HOP}"),
        NLRI_10_1_1_0_24,
    );
    let Message::Update(s) = decode_message(u, &ebgp4()).expect("ok") else {
        panic!("not an UPDATE")
    };
    assert_eq!(s.announced, 1);
    assert_eq!(s.disposition, UpdateDisposition::Clean);
}

/// The malformed-UPDATE table the interop test replays over TCP, checked here at the codec.
/// Name, message, and the disposition or the (code, subcode) of the session-resetting NOTIFICATION.
type MalformedCase = (&'static str, Bytes, Result<UpdateDisposition, (u8, u8)>);

fn malformed_cases() -> Vec<MalformedCase> {
    vec![
        (
            // ORIGIN sent as optional (0xc0): flags error on a well-known attribute.
            "bad attribute flags",
            update(
                &format!("c0010100{AS_PATH_65001}{NEXT_HOP}"),
                NLRI_10_1_1_0_24,
            ),
            Ok(UpdateDisposition::TreatAsWithdraw { subcode: 4 }),
        ),
        (
            // MP_REACH claims 20 bytes of value but the attributes end after 6.
            "truncated MP_REACH",
            // RFC 7606 §7.11 + RFC 4760 §7: session reset, UPDATE / Optional Attribute Error.
            update(
                &format!("{ORIGIN}{AS_PATH_65001}800e14 0002 01 10 2001"),
                "",
            ),
            Err((3, 9)),
        ),
        (
            // AS_PATH segment says 2 ASNs but the attribute holds one.
            "AS_PATH length mismatch",
            update(
                &format!("{ORIGIN}40020602020000fde9{NEXT_HOP}"),
                NLRI_10_1_1_0_24,
            ),
            Ok(UpdateDisposition::TreatAsWithdraw { subcode: 11 }),
        ),
        (
            "unknown well-known attribute",
            update(
                &format!("{ORIGIN}{AS_PATH_65001}{NEXT_HOP}4063 0100"),
                NLRI_10_1_1_0_24,
            ),
            Ok(UpdateDisposition::TreatAsWithdraw { subcode: 2 }),
        ),
        (
            // RFC 7606 §3 (g): keep the first, discard the rest; the UPDATE survives.
            "duplicate attributes",
            update(
                &format!("{ORIGIN}{ORIGIN}{AS_PATH_65001}{NEXT_HOP}"),
                NLRI_10_1_1_0_24,
            ),
            Ok(UpdateDisposition::AttributeDiscard),
        ),
        (
            // A /24 NLRI with only two of its three octets.
            "NLRI overrun",
            update(&format!("{ORIGIN}{AS_PATH_65001}{NEXT_HOP}"), "180a01"),
            Err((3, 10)),
        ),
    ]
}

#[test]
fn malformed_updates_get_rfc7606_dispositions() {
    for (name, bytes, want) in malformed_cases() {
        let got = match decode_message(bytes, &ebgp4()) {
            Ok(Message::Update(s)) => Ok(s.disposition),
            Ok(other) => panic!("{name}: not an UPDATE: {other:?}"),
            Err(n) => Err((n.code, n.subcode)),
        };
        assert_eq!(got, want, "{name}");
    }
}

/// Test-only view of an UPDATE we encoded: its prefixes and attributes, via the codec.
fn contents(frame: &Bytes) -> (Vec<Route>, Vec<Route>, Vec<codec::PathAttribute>) {
    let mut b = frame.clone();
    let codec::Message::Update(u) = codec::decode_message(&mut b, 65535).expect("decode") else {
        panic!("not an UPDATE")
    };
    let p = u.parse(true, false, &[]).expect("parse");
    let v4 = |e: &codec::Ipv4NlriEntry| {
        Route::new(IpAddr::V4(e.prefix.addr), e.prefix.len).expect("route")
    };
    let mp = |e: &codec::NlriEntry| match e.prefix {
        codec::Prefix::V4(p) => Route::new(IpAddr::V4(p.addr), p.len).expect("route"),
        codec::Prefix::V6(p) => Route::new(IpAddr::V6(p.addr), p.len).expect("route"),
    };
    let mut ann: Vec<Route> = p.announced.iter().map(v4).collect();
    let mut wd: Vec<Route> = p.withdrawn.iter().map(v4).collect();
    for a in &p.attributes {
        match a {
            codec::PathAttribute::MpReachNlri(m) => ann.extend(m.announced.iter().map(mp)),
            codec::PathAttribute::MpUnreachNlri(m) => wd.extend(m.withdrawn.iter().map(mp)),
            _ => {}
        }
    }
    (ann, wd, p.attributes)
}

fn arb_route() -> impl Strategy<Value = Route> {
    prop_oneof![
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| Route::new(IpAddr::V4(Ipv4Addr::from(a)), l).expect("len ok")),
        (any::<u128>(), 0u8..=128)
            .prop_map(|(a, l)| Route::new(IpAddr::V6(Ipv6Addr::from(a)), l).expect("len ok")),
    ]
}

fn arb_announcement(v6: bool) -> impl Strategy<Value = Announcement> {
    (
        prop::collection::vec(1u32.., 0..3),
        any::<u32>(),
        any::<u128>(),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        prop::collection::btree_set(any::<u32>().prop_map(Community), 0..5),
        prop::collection::btree_set(
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(global, local1, local2)| {
                LargeCommunity {
                    global,
                    local1,
                    local2,
                }
            }),
            0..5,
        ),
    )
        .prop_map(
            move |(as_path, nh4, nh6, med, local_pref, c, l)| Announcement {
                as_path,
                // Next hops that validation accepts (unicast, not 0/8, 127/8 or multicast).
                next_hop: if v6 {
                    IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | (nh6 >> 32)))
                } else {
                    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (nh4 & 0x00ff_ffff)))
                },
                med,
                local_pref,
                communities: c.into_iter().collect(),
                large_communities: l.into_iter().collect(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn announce_round_trips(
        v6 in any::<bool>(),
        routes in prop::collection::btree_set(arb_route(), 1..600),
        a in prop_oneof![arb_announcement(false), arb_announcement(true)],
        extended in any::<bool>(),
    ) {
        let fam = Family::of(a.next_hop);
        let _ = v6;
        let routes: BTreeSet<Route> = routes.into_iter().filter(|r| r.family() == fam).collect();
        let list: Vec<Route> = routes.iter().copied().collect();
        let max = if extended { EXTENDED_MAX_MESSAGE_LEN } else { MAX_MESSAGE_LEN };
        let msgs = encode::announce(&list, &a, true, max).expect("encode");
        let mut seen = BTreeSet::new();
        let ctx = DecodeContext { four_octet_as: true, ibgp: a.as_path.is_empty(), max_len: max };
        for m in &msgs {
            prop_assert!(m.len() <= max);
            let (ann, wd, attrs) = contents(m);
            prop_assert!(wd.is_empty());
            seen.extend(ann.iter().copied());
            let Message::Update(s) = decode_message(m.clone(), &ctx).expect("decode") else {
                panic!("not an UPDATE")
            };
            prop_assert_eq!(s.announced as usize, ann.len());
            prop_assert_eq!(s.disposition, UpdateDisposition::Clean);
            let comms: Vec<u32> = a.communities.iter().map(|c| c.0).collect();
            if !comms.is_empty() {
                prop_assert!(attrs.contains(&codec::PathAttribute::Communities(comms)));
            }
            if let Some(med) = a.med {
                prop_assert!(attrs.contains(&codec::PathAttribute::Med(med)));
            }
        }
        prop_assert_eq!(seen, routes);
    }

    #[test]
    fn withdraw_round_trips(routes in prop::collection::btree_set(arb_route(), 0..900)) {
        let list: Vec<Route> = routes.iter().copied().collect();
        let msgs = encode::withdraw(&list, MAX_MESSAGE_LEN).expect("encode");
        let mut seen = BTreeSet::new();
        for m in &msgs {
            prop_assert!(m.len() <= MAX_MESSAGE_LEN);
            let (ann, wd, _) = contents(m);
            prop_assert!(ann.is_empty());
            let Message::Update(s) = decode_message(m.clone(), &ebgp4()).expect("decode") else {
                panic!("not an UPDATE")
            };
            prop_assert_eq!(s.withdrawn as usize, wd.len());
            prop_assert_eq!(s.end_of_rib, None);
            seen.extend(wd);
        }
        prop_assert_eq!(seen, routes);
    }

    #[test]
    fn open_round_trips(asn in 1u32.., hold in any::<u16>(), id in any::<u32>(),
                        v4 in any::<bool>(), v6 in any::<bool>()) {
        let open = Open::ours(asn, hold, Ipv4Addr::from(id), v4, v6);
        let b = encode::open(&open).expect("encode");
        let back = decode_message(b, &DecodeContext::default()).expect("decode");
        prop_assert_eq!(back, Message::Open(open));
    }

    #[test]
    fn notification_round_trips(code in any::<u8>(), subcode in any::<u8>(),
                                data in prop::collection::vec(any::<u8>(), 0..5000)) {
        let n = Notification { code, subcode, data };
        let b = encode::notification(&n);
        prop_assert!(b.len() <= MAX_MESSAGE_LEN);
        let Message::Notification(back) = decode_message(b, &DecodeContext::default()).expect("decode")
        else { panic!("not a NOTIFICATION") };
        let keep = n.data.len().min(MAX_MESSAGE_LEN - 21);
        prop_assert_eq!(back.data.as_slice(), &n.data[..keep]);
        prop_assert_eq!((back.code, back.subcode), (code, subcode));
    }

    #[test]
    fn route_text_round_trips(r in arb_route()) {
        let back: Route = r.to_string().parse().expect("parse");
        prop_assert_eq!(back, r);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(data in prop::collection::vec(any::<u8>(), 0..200),
                                             ty in 1u8..6) {
        let mut frame = vec![0xff; 16];
        frame.extend_from_slice(&u16::try_from(19 + data.len()).expect("len").to_be_bytes());
        frame.push(ty);
        frame.extend(data);
        let mut r = FrameReader::new();
        r.push(&frame);
        if let Ok(Some(f)) = r.next_frame() {
            let _ = decode_message(f, &ebgp4());
        }
    }
}
