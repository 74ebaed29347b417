//! `cpvip manifest`: the golden files in `manifests/` equal what the binary and the lab render
//! (`CPVIP_BLESS=1` rewrites them), the static pod is a valid `Pod` carrying every flag, the
//! systemd unit passes `systemd-analyze verify`, the env file round-trips through systemd's and
//! the shell's quoting rules, the env a manifest sets is what `cpvip run` reads, the router
//! examples parse in real BIRD and FRR, and the binary links only libc-family libraries.

mod binary;
mod env_path;
mod golden;
mod pod;
mod rbac;
mod systemd;

use std::process::{Command, Output};

/// The example command line of every golden file: the lab's addressing (VIP 10.99.200.1 and
/// fd99:200::1, router 10.99.0.1 / fd99::1 in AS 65000, nodes in AS 65001), BFD and TCP-MD5 like
/// the router examples.
pub const EXAMPLE_FLAGS: &[&str] = &[
    "--vip",
    "10.99.200.1",
    "--vip",
    "fd99:200::1",
    "--bgp-as",
    "65001",
    "--bgp-peer",
    "10.99.0.1,as=65000,bfd,password=cpvip-example-md5",
    "--bgp-peer",
    "fd99::1,as=65000,bfd,password=cpvip-example-md5",
];

/// The TCP-MD5 password of the examples (router side and node side).
pub const EXAMPLE_PASSWORD: &str = "cpvip-example-md5";

/// Runs `cpvip <args>` with an empty environment plus `env`.
pub fn cpvip(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cpvip"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the cpvip binary runs")
}

/// `cpvip manifest <kind> <flags>`: asserts exit 0 and returns (stdout, stderr).
pub fn manifest(kind: &str, flags: &[&str]) -> (String, String) {
    manifest_env(kind, flags, &[])
}

/// [`manifest`] with extra environment variables.
pub fn manifest_env(kind: &str, flags: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let mut args = vec!["manifest", kind];
    args.extend_from_slice(flags);
    let output = cpvip(&args, env);
    let stdout = String::from_utf8(output.stdout).expect("manifest output is UTF-8");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "cpvip {args:?} must succeed; stderr: {stderr}"
    );
    (stdout, stderr)
}
