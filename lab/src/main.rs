//! `cpvip-lab`: command-line entry to the lab (demo, up/down/status/exec, bench).

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cpvip-lab", about = "cpvip network-namespace lab")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Kubernetes Lease test server (HTTPS) in this process.
    LeaseServer(cpvip_lab::lease_server::cli::LeaseServerArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::LeaseServer(args) => cpvip_lab::lease_server::cli::run(args).await,
    }
}
