//! `cpvip-lab lease-server`: runs the Lease test server as its own process (so it can live in any
//! network namespace), prints one JSON line describing it, and serves until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{LeaseServer, LeaseServerConfig};

/// Flags of `cpvip-lab lease-server`.
#[derive(Debug, clap::Args)]
pub struct LeaseServerArgs {
    /// HTTPS listen address (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Directory for ca.crt, kubeconfig-token.yaml, kubeconfig-cert.yaml, server.json.
    #[arg(long)]
    pub dir: PathBuf,
    /// Bearer token to accept (default: random, written into kubeconfig-token.yaml).
    #[arg(long)]
    pub token: Option<String>,
    /// Admin (fault switches) listen address, plain HTTP; keep it on loopback.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub admin: SocketAddr,
    /// Extra IP SANs for the server certificate (repeatable).
    #[arg(long = "san")]
    pub sans: Vec<std::net::IpAddr>,
}

/// Runs the server until SIGTERM or SIGINT.
pub async fn run(args: LeaseServerArgs) -> anyhow::Result<()> {
    let server = LeaseServer::start(LeaseServerConfig {
        listen: args.listen,
        dir: args.dir,
        token: args.token,
        admin_listen: Some(args.admin),
        extra_sans: args.sans,
    })
    .await?;
    println!("{}", server.describe());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    server.stop();
    Ok(())
}
