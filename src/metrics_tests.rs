//! The exposition parses as OpenMetrics (a strict line parser below) and carries every name.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::test_support::sample_report;

/// The sample names DESIGN.md promises.
const NAMES: [&str; 10] = [
    "cpvip_serving",
    "cpvip_leader",
    "cpvip_lease_transitions_total",
    "cpvip_health_check_up",
    "cpvip_bgp_session_established",
    "cpvip_bgp_session_flaps_total",
    "cpvip_bgp_updates_received_total",
    "cpvip_bgp_prefixes_announced",
    "cpvip_bfd_session_up",
    "cpvip_build_info",
];

/// A parsed sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses OpenMetrics text strictly enough to catch what Prometheus would refuse: every line is
/// a descriptor, a sample of a declared family with a suffix its type allows, or the final
/// `# EOF`; names and label names are valid; label values are quoted with valid escapes; values
/// are numbers; a family is declared once and its samples are contiguous.
pub(crate) fn parse_openmetrics(text: &str) -> Result<Vec<Sample>, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .ok_or("does not end with \"# EOF\\n\"")?;
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut samples = Vec::new();
    for (n, line) in body.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let value = parts
                .next()
                .ok_or_else(|| err("descriptor without a value"))?;
            if !valid_name(name) {
                return Err(err("invalid metric name"));
            }
            match kind {
                "TYPE" => {
                    let known = [
                        "counter",
                        "gauge",
                        "info",
                        "histogram",
                        "summary",
                        "stateset",
                    ];
                    if !known.contains(&value) && value != "unknown" {
                        return Err(err("unknown type"));
                    }
                    if types.insert(name.to_string(), value.to_string()).is_some() {
                        return Err(err("family declared twice"));
                    }
                }
                "HELP" | "UNIT" => {}
                _ => return Err(err("unknown descriptor")),
            }
            if current.as_deref() != Some(name) {
                if let Some(previous) = current.take() {
                    finished.insert(previous);
                }
                if finished.contains(name) {
                    return Err(err("family not contiguous"));
                }
                current = Some(name.to_string());
            }
            continue;
        }
        let (name, labels, value) = parse_sample(line).map_err(|m| err(&m))?;
        let family = current
            .as_deref()
            .ok_or_else(|| err("sample before any TYPE"))?;
        let kind = types
            .get(family)
            .ok_or_else(|| err("sample of an undeclared family"))?;
        let allowed: &[&str] = match kind.as_str() {
            "counter" => &["_total", "_created"],
            "info" => &["_info"],
            "gauge" | "unknown" | "stateset" => &[""],
            _ => &["", "_bucket", "_count", "_sum", "_created"],
        };
        if !allowed.iter().any(|s| name == format!("{family}{s}")) {
            return Err(err(&format!(
                "sample name does not fit {kind} family {family}"
            )));
        }
        samples.push((name, labels, value));
    }
    Ok(samples)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("sample without a value")?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err("invalid sample name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("label without '='")?;
            let key = &rest[..eq];
            if !valid_name(key) || key.contains(':') {
                return Err(format!("invalid label name {key:?}"));
            }
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("unquoted label value")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('"' | '\\'))) => value.push(c),
                        _ => return Err("invalid escape in label value".into()),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value".into()),
                }
            };
            if labels.insert(key.to_string(), value).is_some() {
                return Err(format!("label {key} twice"));
            }
            rest = &rest[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let value: f64 = value
        .split(' ')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| format!("value {value:?} is not a number"))?;
    Ok((name.to_string(), labels, value))
}

#[test]
fn exposition_parses_as_openmetrics_and_carries_every_name() {
    let metrics = Metrics::new("0.1.0");
    let report = sample_report();
    metrics.observe(&report);
    let text = metrics.encode().expect("encodes");
    let samples = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let names: BTreeSet<&str> = samples.iter().map(|(n, _, _)| n.as_str()).collect();
    for name in NAMES {
        assert!(names.contains(name), "{name} missing from\n{text}");
    }
    let value = |name: &str, label: &str, v: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l.get(label).map(String::as_str) == Some(v))
            .map(|(_, _, value)| *value)
            .unwrap_or_else(|| panic!("{name}{{{label}={v}}} missing\n{text}"))
    };
    assert_eq!(value("cpvip_serving", "vip", "192.0.2.10"), 1.0);
    assert_eq!(value("cpvip_health_check_up", "check", "apiserver"), 1.0);
    assert_eq!(value("cpvip_health_check_up", "check", "supervisor"), 0.0);
    assert_eq!(
        value("cpvip_bgp_session_established", "peer", "10.0.0.1"),
        1.0
    );
    assert_eq!(
        value("cpvip_bgp_session_established", "peer", "10.0.0.2"),
        0.0
    );
    assert_eq!(
        value("cpvip_bgp_updates_received_total", "peer", "10.0.0.1"),
        7.0
    );
    assert_eq!(value("cpvip_bfd_session_up", "peer", "10.0.0.1"), 1.0);
    assert_eq!(value("cpvip_build_info", "version", "0.1.0"), 1.0);
    let lease = samples
        .iter()
        .find(|(n, _, _)| n == "cpvip_lease_transitions_total");
    assert_eq!(lease.map(|(_, _, v)| *v), Some(3.0));
}

#[test]
fn counters_follow_the_report_and_never_go_back() {
    let metrics = Metrics::new("0.1.0");
    let mut report = sample_report();
    metrics.observe(&report);
    report.peers[0].flaps = 4;
    metrics.observe(&report);
    report.peers[0].flaps = 2; // a restarted speaker
    report.leader = false;
    metrics.observe(&report);
    let text = metrics.encode().expect("encodes");
    assert!(
        text.contains("cpvip_bgp_session_flaps_total{peer=\"10.0.0.1\"} 4\n"),
        "{text}"
    );
    assert!(text.contains("cpvip_leader 0\n"), "{text}");
}

#[test]
fn the_parser_refuses_what_prometheus_would() {
    let good = "# TYPE a gauge\na{x=\"1\"} 1\n# EOF\n";
    assert!(parse_openmetrics(good).is_ok());
    for bad in [
        "# TYPE a gauge\na 1\n",
        "# TYPE a gauge\nb 1\n# EOF\n",
        "a 1\n# EOF\n",
        "# TYPE a counter\na 1\n# EOF\n",
        "# TYPE a gauge\na{x=1} 1\n# EOF\n",
        "# TYPE a gauge\na{x=\"\\q\"} 1\n# EOF\n",
        "# TYPE a gauge\na one\n# EOF\n",
        "# TYPE a gauge\n# TYPE a gauge\n# EOF\n",
        "# TYPE 1a gauge\n# EOF\n",
    ] {
        assert!(parse_openmetrics(bad).is_err(), "accepted {bad:?}");
    }
}
