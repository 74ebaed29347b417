//! Logging set-up: tracing-subscriber to stderr, text or JSON, filtered by `--log-level` unless
//! `RUST_LOG` is set (then `RUST_LOG` wins, as every Rust program's users expect).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// The environment variable that overrides `--log-level`.
pub const RUST_LOG: &str = "RUST_LOG";

/// `RUST_LOG` (or `--log-level`) could not be used. Displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `RUST_LOG` is set but is not a valid filter.
    #[error(
        "RUST_LOG {value:?}: must be a tracing filter like info or cpvip=debug,info ({reason})"
    )]
    BadRustLog {
        /// The variable's value.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// `--log-level` is not a valid filter (config validation normally catches this first).
    #[error("--log-level {value:?}: must be a tracing filter ({reason})")]
    BadLevel {
        /// The flag's value.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A global subscriber was already installed.
    #[error("logging was already initialised: {0}")]
    AlreadyInitialised(String),
}

/// The filter in effect: `RUST_LOG` when set and not empty, else `level`.
pub fn filter(level: &str, rust_log: Option<&str>) -> Result<EnvFilter, LoggingError> {
    match rust_log.filter(|value| !value.trim().is_empty()) {
        Some(value) => {
            EnvFilter::builder()
                .parse(value)
                .map_err(|error| LoggingError::BadRustLog {
                    value: value.to_owned(),
                    reason: error.to_string(),
                })
        }
        None => EnvFilter::builder()
            .parse(level)
            .map_err(|error| LoggingError::BadLevel {
                value: level.to_owned(),
                reason: error.to_string(),
            }),
    }
}

/// Installs the global subscriber, writing to stderr.
pub fn init(log: &LogConfig) -> Result<(), LoggingError> {
    let rust_log = std::env::var(RUST_LOG).ok();
    let filter = filter(&log.level, rust_log.as_deref())?;
    // Colour only for a person at a terminal; journald and kubectl logs get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    installed.map_err(|error| LoggingError::AlreadyInitialised(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_the_level() {
        let chosen = filter("info", Some("cpvip=trace")).expect("valid filter");
        assert_eq!(chosen.to_string(), "cpvip=trace");
        let chosen = filter("debug", Some("  ")).expect("blank RUST_LOG is ignored");
        assert_eq!(chosen.to_string(), "debug");
        assert!(matches!(
            filter("info", Some("=[")),
            Err(LoggingError::BadRustLog { .. })
        ));
    }
}
