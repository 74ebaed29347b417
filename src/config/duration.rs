//! Durations on the command line: `500ms`, `3s`, `1m`, `1h`, and sums like `1m30s`.
//!
//! Our own small parser because the accepted grammar is part of the CLI contract and the error
//! text must say exactly what is expected.

use std::time::Duration;

use super::error::ParseResult;

/// What every duration error says is expected.
pub const DURATION_EXPECTED: &str = "must be a duration like 500ms, 3s, 1m or 1m30s";

/// Parses `500ms`, `3s`, `1m`, `2h`, `1m30s`, `1s500ms`. Each unit at most once, largest first;
/// a bare number or an empty string is rejected (a unit is always required).
pub fn parse_duration(text: &str) -> ParseResult<Duration> {
    const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
    let mut rest = text;
    let mut total_ms: u64 = 0;
    let mut smallest_unit_seen = usize::MAX;
    if rest.is_empty() {
        return Err(DURATION_EXPECTED.to_owned());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DURATION_EXPECTED.to_owned());
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| "is too large".to_owned())?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(DURATION_EXPECTED.to_owned());
        };
        if smallest_unit_seen != usize::MAX && index <= smallest_unit_seen {
            return Err(format!(
                "{DURATION_EXPECTED} (units largest first, each once)"
            ));
        }
        smallest_unit_seen = index;
        total_ms = number
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| "is too large".to_owned())?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration in the same grammar `parse_duration` accepts (`1m30s`, `500ms`, `0s`).
pub fn format_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (name, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{name}", ms / size));
            ms %= size;
        }
    }
    out
}

/// Serde helper: a duration as its text form.
pub(crate) fn serialize_duration<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_duration(*duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("500ms", ms(500)),
            ("3s", ms(3000)),
            ("1m", ms(60_000)),
            ("1m30s", ms(90_000)),
            ("1s500ms", ms(1500)),
            ("2h", ms(7_200_000)),
            ("0s", ms(0)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
            assert_eq!(
                parse_duration(&format_duration(want)),
                Ok(want),
                "round trip {text}"
            );
        }
    }

    #[test]
    fn rejects_everything_else() {
        for text in [
            "",
            "3",
            "s",
            "3 s",
            "-1s",
            "1.5s",
            "3sec",
            "30s1m",
            "1s1s",
            "1d",
            " 3s",
            "99999999999999999999s",
            "18446744073709551615h",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?} should be rejected");
        }
    }
}
