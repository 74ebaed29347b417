//! Lab benchmarks with real BIRD 2 in namespaces (root needed); prints figures, asserts nothing
//! about time. Run: `cargo bench -p cpvip-bgp --bench lab` (`PREFIXES=N` to change the table).
//!
//! 1. Ingest: BIRD "A" originates N IPv4 /24s and sends them at the same moment to the speaker
//!    and to a second BIRD "B". Reports, for each, the time from Established to the last prefix
//!    received (B: imported into its RIB), their ratio, and the speaker process's RSS growth.
//! 2. Announce latency: `set_routes` to the route in BIRD's table (seen as BIRD's export into the
//!    router namespace's kernel table, via `ip monitor route`), 100 times; median and p90.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpvip_bgp::{PeerConfig, Route, Speaker, SpeakerConfig, State};
use cpvip_lab::netns::{Netns, TempDir, require_root, veth};
use cpvip_lab::router::Bird;

fn ns_pair(tag: &str) -> (Netns, Netns) {
    let r = Netns::new(&format!("{tag}-r")).expect("netns");
    let s = Netns::new(&format!("{tag}-s")).expect("netns");
    veth(&r, "eth0", &s, "eth0").expect("veth");
    r.exec(&["ip", "addr", "add", "10.0.0.1/24", "dev", "eth0"])
        .expect("addr");
    s.exec(&["ip", "addr", "add", "10.0.0.2/24", "dev", "eth0"])
        .expect("addr");
    s.exec(&["ip", "addr", "add", "10.0.0.3/24", "dev", "eth0"])
        .expect("addr");
    (r, s)
}

fn speaker_config(peer: &str) -> SpeakerConfig {
    SpeakerConfig {
        local_asn: 65001,
        router_id: "10.0.0.2".parse().expect("id"),
        hold_time: 90,
        peers: vec![PeerConfig::new(peer.parse().expect("ip"), 65000)],
        listen_port: None,
        listen_addr: None,
        attributes: Default::default(),
    }
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn bird_imported(bird: &Bird, proto: &str) -> (bool, u64) {
    let out = bird
        .birdc(&format!("show protocols all {proto}"))
        .unwrap_or_default();
    let up = out.contains("Established");
    let n = out
        .lines()
        .find(|l| l.trim_start().starts_with("Routes:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (up, n)
}

fn ingest(n: u32) {
    let (r, s) = ns_pair("bgp-ingest");
    let dir = TempDir::new("bgp-ingest").expect("dir");
    let routes = dir.join("routes.conf");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&routes).expect("routes"));
    let _ = writeln!(f, "protocol static feed {{ ipv4 {{ import all; }};");
    for i in 0..n {
        let a = (20u32 << 24) + (i << 8);
        let _ = writeln!(f, "route {}/24 blackhole;", std::net::Ipv4Addr::from(a));
    }
    let _ = writeln!(f, "}}");
    drop(f);
    let conf_a = format!(
        "router id 10.0.0.1;\nprotocol device {{}}\n\
         include \"{}\";\n\
         protocol bgp spk {{ disabled; local 10.0.0.1 as 65000; neighbor 10.0.0.2 as 65001; \
         ipv4 {{ import none; export all; next hop self; }}; }}\n\
         protocol bgp bb {{ disabled; local 10.0.0.1 as 65000; neighbor 10.0.0.3 as 65003; \
         ipv4 {{ import none; export all; next hop self; }}; }}\n",
        routes.display()
    );
    let conf_b = "router id 10.0.0.3;\nprotocol device {}\n\
         protocol bgp a { local 10.0.0.3 as 65003; neighbor 10.0.0.1 as 65000; \
         ipv4 { import all; export none; }; }\n";
    let dir_a = TempDir::at(dir.join("a")).expect("dir");
    let dir_b = TempDir::at(dir.join("b")).expect("dir");
    let t = Instant::now();
    let bird_a = Bird::start(&r, dir_a.path(), &conf_a).expect("bird A");
    while bird_imported(&bird_a, "feed").1 < u64::from(n) {
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "ingest: BIRD A loaded {n} static routes in {:?}",
        t.elapsed()
    );
    let bird_b = Bird::start(&s, dir_b.path(), conf_b).expect("bird B");
    let (bird_a, bird_b) = (&bird_a, &bird_b);
    s.block_on(move || async move {
        let h = Speaker::start(speaker_config("10.0.0.1")).expect("speaker");
        let mut st = h.watch_peer("10.0.0.1".parse().expect("ip")).expect("peer");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_idle = status_kib("VmRSS:");
        // Reset the peak RSS counter (VmHWM) to the current RSS.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        bird_a.birdc("enable spk").expect("enable");
        bird_a.birdc("enable bb").expect("enable");
        // BIRD B is polled from a thread (birdc blocks); 20 ms granularity.
        let poll = std::thread::spawn({
            let ctl = bird_b.ctl().to_path_buf();
            move || {
                let birdc = |c: &str| {
                    Command::new("birdc")
                        .args(["-s"])
                        .arg(&ctl)
                        .args(c.split_whitespace())
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                        .unwrap_or_default()
                };
                let mut up_at = None;
                loop {
                    let out = birdc("show protocols all a");
                    if up_at.is_none() && out.contains("Established") {
                        up_at = Some(Instant::now());
                    }
                    let imported = out
                        .lines()
                        .find(|l| l.trim_start().starts_with("Routes:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                    if imported >= u64::from(n) {
                        return up_at.map(|u| u.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        let mut up_at = None;
        loop {
            {
                let p = st.borrow_and_update();
                if up_at.is_none() && p.state == State::Established {
                    up_at = Some(Instant::now());
                }
                if p.prefixes_received >= u64::from(n) {
                    break;
                }
            }
            if st.changed().await.is_err() {
                break;
            }
        }
        let ours = up_at.map(|u| u.elapsed()).unwrap_or_default();
        let rss_peak = status_kib("VmHWM:");
        let theirs = tokio::task::spawn_blocking(move || poll.join())
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten()
            .unwrap_or_default();
        let p = h.peers().remove(0);
        println!(
            "ingest: speaker Established -> {} prefixes in {:?} ({} UPDATEs, {:.0} prefixes/s)",
            p.prefixes_received,
            ours,
            p.updates_received,
            p.prefixes_received as f64 / ours.as_secs_f64()
        );
        println!("ingest: BIRD B Established -> {n} imported in {theirs:?} (polled every 20 ms)");
        println!(
            "ingest: ratio BIRD/speaker = {:.2}",
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
        println!(
            "ingest: RSS idle {rss_idle} KiB, peak during ingest {rss_peak} KiB, growth {} KiB",
            rss_peak.saturating_sub(rss_idle)
        );
        h.shutdown("bench done", Duration::from_secs(2)).await;
    })
    .expect("netns");
}

fn latency(samples: usize) {
    let (r, s) = ns_pair("bgp-lat");
    let dir = TempDir::new("bgp-lat").expect("dir");
    let conf = "router id 10.0.0.1;\nprotocol device {}\n\
        protocol kernel { ipv4 { import none; export all; }; }\n\
        protocol bgp spk { local 10.0.0.1 as 65000; neighbor 10.0.0.2 as 65001; \
        ipv4 { import all; export none; }; }\n";
    let _bird = Bird::start(&r, dir.path(), conf).expect("bird");
    // `ip monitor route` in the router namespace: one line per kernel route change.
    let mut mon = Command::new("ip")
        .args(["-n", r.name(), "monitor", "route"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ip monitor");
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    let out = mon.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let mut lat = s
        .block_on(move || async move {
            let h = Speaker::start(speaker_config("10.0.0.1")).expect("speaker");
            let mut st = h.watch_peer("10.0.0.1".parse().expect("ip")).expect("peer");
            while st.borrow_and_update().state != State::Established {
                let _ = st.changed().await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut lat = Vec::new();
            for i in 0..samples {
                let addr: IpAddr = std::net::Ipv4Addr::from(0xcb00_7100 + i as u32).into();
                let want = format!("{addr} ");
                while rx.try_recv().is_ok() {}
                let t = Instant::now();
                h.set_routes([Route::host(addr)].into());
                let seen = loop {
                    match rx.recv_timeout(Duration::from_secs(5)) {
                        Ok((at, line))
                            if line.starts_with(&want) && !line.starts_with("Deleted") =>
                        {
                            break Some(at);
                        }
                        Ok(_) => {}
                        Err(_) => break None,
                    }
                };
                if let Some(at) = seen {
                    lat.push(at.duration_since(t));
                }
            }
            lat
        })
        .expect("netns");
    let _ = mon.kill();
    let _ = mon.wait();
    lat.sort();
    if lat.is_empty() {
        println!("latency: no samples");
        return;
    }
    println!(
        "latency: set_routes -> route in BIRD (kernel export), n={} median {:?} p90 {:?} max {:?}",
        lat.len(),
        lat[lat.len() / 2],
        lat[lat.len() * 9 / 10],
        lat[lat.len() - 1]
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and must not start a
    // multi-minute lab run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("lab benchmark: run it with `cargo bench -p cpvip-bgp --bench lab`");
        return;
    }
    require_root("the lab benchmark makes network namespaces and runs BIRD");
    let n = std::env::var("PREFIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    latency(100);
    ingest(n);
}
