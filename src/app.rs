//! What the binary does with a parsed command line: validate, set up logging, dispatch, and map
//! the outcome to the exit status of DESIGN.md (0 ok, 1 runtime failure, 2 usage or config).

use std::net::SocketAddr;

use std::process::ExitCode;

use crate::cli::{Cli, Command, ManifestArgs, RunArgs, StatusArgs};
use crate::config::{Config, ConfigError, HostFacts, defaults};
use crate::logging;

/// Exit status of a clean exit.
pub const EXIT_OK: u8 = 0;
/// Exit status of a runtime failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status of a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// The version line of `cpvip version`: crate version and the git commit it was built from.
pub fn version_line() -> String {
    format!(
        "cpvip {} (commit {})",
        env!("CARGO_PKG_VERSION"),
        env!("CPVIP_GIT_COMMIT")
    )
}

/// Runs the parsed command line and returns the process's exit status.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run_daemon(&args),
        Command::Manifest(args) => manifest(&args),
        Command::Status(args) => status(&args),
        Command::Version => {
            println!("{}", version_line());
            ExitCode::from(EXIT_OK)
        }
    }
}

/// Prints a configuration error as its one line and returns exit status 2.
fn usage_error(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(EXIT_USAGE)
}

fn run_daemon(args: &RunArgs) -> ExitCode {
    let validated = match Config::from_args(args, &HostFacts::from_system()) {
        Ok(validated) => validated,
        Err(error) => return usage_error(error),
    };
    if let Err(error) = logging::init(&validated.config.log) {
        return usage_error(error);
    }
    for warning in &validated.warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(version = %version_line(), "configuration: {}", validated.config.summary());
    start_daemon(validated.config)
}

/// Runs the daemon on a small runtime (two workers: the work is a few sockets and timers).
fn start_daemon(config: Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let code = runtime.block_on(crate::daemon::start::run_logged(config));
    // Background tasks (a stuck connection, a watch) must not hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn manifest(args: &ManifestArgs) -> ExitCode {
    match crate::manifest::render(args) {
        Ok(rendered) => {
            for warning in &rendered.warnings {
                eprintln!("warning: {warning}");
            }
            print!("{}", rendered.text);
            ExitCode::from(EXIT_OK)
        }
        Err(crate::manifest::ManifestError::Config(error)) => usage_error(error),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn status(args: &StatusArgs) -> ExitCode {
    let text = args.http.as_deref().unwrap_or(defaults::HTTP_LISTEN);
    let Ok(addr) = text.parse::<SocketAddr>() else {
        return usage_error(ConfigError::value(
            "--http",
            text,
            "must be an IP address and port, like 127.0.0.1:2112",
        ));
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cpvip status: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(crate::status::run_status(addr, args.json)) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(EXIT_FAILURE)),
        Err(error) => {
            eprintln!("error: cpvip status: {error}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
