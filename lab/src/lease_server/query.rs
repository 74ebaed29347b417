//! Query strings of list/watch requests: percent-decoding, `watch`, and the `fieldSelector` /
//! `labelSelector` subset that Lease clients use.

use k8s_openapi::api::coordination::v1::Lease;

pub fn is_watch(query: &[(String, String)]) -> bool {
    query_get(query, "watch").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

pub fn query_get<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `fieldSelector` (metadata.name, metadata.namespace) and `labelSelector` (equality, existence)
/// as far as Leases need them.
#[derive(Default)]
pub struct Filter {
    pub namespace: Option<String>,
    pub name: Option<String>,
    field_terms: Vec<(String, bool, String)>,
    label_terms: Vec<LabelTerm>,
}

enum LabelTerm {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
}

impl Filter {
    pub fn parse(fields: &str, labels: &str) -> Result<Self, String> {
        let mut f = Filter::default();
        for term in fields.split(',').filter(|t| !t.is_empty()) {
            let (key, eq, value) =
                split_term(term).ok_or_else(|| format!("invalid field selector: {term}"))?;
            match key {
                "metadata.name" | "metadata.namespace" => {
                    f.field_terms.push((key.to_string(), eq, value.to_string()))
                }
                _ => {
                    return Err(format!("field label not supported: {key}"));
                }
            }
        }
        for term in labels.split(',').filter(|t| !t.is_empty()) {
            f.label_terms.push(match split_term(term) {
                Some((k, true, v)) => LabelTerm::Eq(k.to_string(), v.to_string()),
                Some((k, false, v)) => LabelTerm::NotEq(k.to_string(), v.to_string()),
                None => match term.strip_prefix('!') {
                    Some(k) => LabelTerm::NotExists(k.trim().to_string()),
                    None => LabelTerm::Exists(term.trim().to_string()),
                },
            });
        }
        Ok(f)
    }

    pub fn matches(&self, lease: &Lease) -> bool {
        let name = lease.metadata.name.as_deref().unwrap_or("");
        let ns = lease.metadata.namespace.as_deref().unwrap_or("");
        if self.namespace.as_deref().is_some_and(|n| n != ns)
            || self.name.as_deref().is_some_and(|n| n != name)
        {
            return false;
        }
        let fields_ok = self.field_terms.iter().all(|(k, eq, v)| {
            let actual = if k == "metadata.name" { name } else { ns };
            (actual == v) == *eq
        });
        let empty = Default::default();
        let labels = lease.metadata.labels.as_ref().unwrap_or(&empty);
        let labels_ok = self.label_terms.iter().all(|t| match t {
            LabelTerm::Eq(k, v) => labels.get(k) == Some(v),
            LabelTerm::NotEq(k, v) => labels.get(k) != Some(v),
            LabelTerm::Exists(k) => labels.contains_key(k),
            LabelTerm::NotExists(k) => !labels.contains_key(k),
        });
        fields_ok && labels_ok
    }
}

/// `k=v`, `k==v` → (k, true, v); `k!=v` → (k, false, v).
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    if let Some((k, v)) = term.split_once("!=") {
        return Some((k.trim(), false, v.trim()));
    }
    let (k, v) = term.split_once('=')?;
    Some((k.trim(), true, v.strip_prefix('=').unwrap_or(v).trim()))
}

pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_selectors() {
        let q = parse_query("fieldSelector=metadata.name%3Dcpvip&watch=true&x");
        assert_eq!(query_get(&q, "fieldSelector"), Some("metadata.name=cpvip"));
        assert!(is_watch(&q));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        let f = Filter::parse("metadata.name==a", "app=x,!gone").expect("parse");
        let mut l = Lease::default();
        l.metadata.name = Some("a".into());
        l.metadata.labels = Some([("app".to_string(), "x".to_string())].into());
        assert!(f.matches(&l));
        l.metadata.name = Some("b".into());
        assert!(!f.matches(&l));
        assert!(Filter::parse("spec.holderIdentity=a", "").is_err());
    }
}
