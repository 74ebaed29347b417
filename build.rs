//! Embeds the git commit (`git rev-parse --short HEAD`) as `CPVIP_GIT_COMMIT` for
//! `cpvip version`; "unknown" outside a git checkout. `CPVIP_GIT_COMMIT` in the build
//! environment wins (for builds from a tarball).

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=CPVIP_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(commit) = std::env::var("CPVIP_GIT_COMMIT") {
        println!("cargo:rustc-env=CPVIP_GIT_COMMIT={commit}");
        return;
    }
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    // In a worktree HEAD lives in the worktree's git dir and branches in the common dir.
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let git_dir = PathBuf::from(git_dir);
        println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
        let common = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
            .map(PathBuf::from)
            .unwrap_or_else(|| git_dir.clone());
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!(
                "cargo:rerun-if-changed={}",
                common.join(reference).display()
            );
        }
        // A path that does not exist would make cargo rerun this script on every build.
        let packed = common.join("packed-refs");
        if packed.exists() {
            println!("cargo:rerun-if-changed={}", packed.display());
        }
    }
    println!("cargo:rustc-env=CPVIP_GIT_COMMIT={commit}");
}
