//! The `cpvip` binary: parses the command line and hands over to the library.
//! Clap reports its own usage errors (exit 2) and prints help/version (exit 0).

use clap::Parser;

fn main() -> std::process::ExitCode {
    cpvip::app::run(cpvip::cli::Cli::parse())
}
