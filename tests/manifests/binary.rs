//! The `cpvip` binary needs no shared library beyond the C runtime, so the image can be
//! distroless/cc (or anything with glibc). The debug binary under test links the same set as the
//! release binary (same dependencies, same target); `target/release/cpvip` is checked as well
//! when it has been built.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Libraries of glibc and the compiler runtime, present on every glibc system and in
/// distroless/cc.
const LIBC_FAMILY: &[&str] = &[
    "linux-vdso.so",
    "libc.so",
    "libm.so",
    "libgcc_s.so",
    "libpthread.so",
    "libdl.so",
    "librt.so",
    "ld-linux",
];

/// The libraries `ldd` lists for `binary` (first word of each line).
fn shared_libraries(binary: &Path) -> Vec<String> {
    let output = Command::new("ldd").arg(binary).output().expect("ldd runs");
    assert!(
        output.status.success(),
        "ldd {}: {}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(|name| {
            // ld-linux is listed by path.
            name.rsplit('/').next().unwrap_or(name).to_owned()
        })
        .collect()
}

#[test]
fn the_binary_needs_only_libc_family_libraries() {
    cpvip_lab::netns::require_binary("ldd", "apt-get install -y libc-bin");
    let mut binaries = vec![PathBuf::from(env!("CARGO_BIN_EXE_cpvip"))];
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/cpvip");
    if release.exists() {
        binaries.push(release);
    }
    for binary in binaries {
        let libraries = shared_libraries(&binary);
        assert!(
            libraries.iter().any(|name| name.starts_with("libc.so")),
            "{} is expected to link glibc dynamically: {libraries:?}",
            binary.display()
        );
        let foreign: Vec<&String> = libraries
            .iter()
            .filter(|name| !LIBC_FAMILY.iter().any(|allowed| name.starts_with(allowed)))
            .collect();
        assert!(
            foreign.is_empty(),
            "{} needs libraries beyond libc: {foreign:?}",
            binary.display()
        );
    }
}
