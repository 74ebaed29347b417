//! The one configuration error type: which flag, what value, what was expected.

use std::fmt;

/// A rejected setting. Displays as `--flag "value": expected` (or `--flag: expected` when the
/// problem is a missing value); `main` prefixes `error: ` and exits with status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The flag at fault, with its dashes (`--bgp-peer`).
    pub flag: &'static str,
    /// The value as given (with any password redacted), when there was one.
    pub value: Option<String>,
    /// What is wrong or what is expected, in one line.
    pub expected: String,
}

impl ConfigError {
    /// A bad value for `flag`.
    pub fn value(flag: &'static str, value: &str, expected: impl Into<String>) -> Self {
        Self {
            flag,
            value: Some(value.to_owned()),
            expected: expected.into(),
        }
    }

    /// A problem with `flag` as a whole (missing, or in conflict with another flag).
    pub fn flag(flag: &'static str, expected: impl Into<String>) -> Self {
        Self {
            flag,
            value: None,
            expected: expected.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug quoting escapes control characters, so the message always stays one line.
        let expected = self.expected.replace(['\n', '\r'], " ");
        match &self.value {
            Some(value) => write!(f, "{} {:?}: {}", self.flag, value, expected),
            None => write!(f, "{}: {}", self.flag, expected),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Something a flag's value parser reports; the caller adds the flag and the value.
pub type ParseResult<T> = Result<T, String>;

/// Attaches flag and value to a value parser's complaint.
pub(crate) fn at<T>(
    flag: &'static str,
    value: &str,
    parsed: ParseResult<T>,
) -> Result<T, ConfigError> {
    parsed.map_err(|expected| ConfigError::value(flag, value, expected))
}
