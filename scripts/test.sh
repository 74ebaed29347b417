#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, every test (unit, property, real
# routers in network namespaces), the fuzz targets built, and a check that nothing was left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
if [ -f fuzz/Cargo.toml ]; then
  echo "== fuzz targets build"
  cargo build --manifest-path fuzz/Cargo.toml --locked --quiet
fi

echo "== tests"
# Namespaces of tests are named cpvt-*; none may exist before or after.
before=$(ip netns list | awk '$1 ~ /^cpvt-/ {print $1}')
if [ -n "$before" ]; then
  echo "note: stale test namespaces from an earlier run are swept by the tests: $before"
fi
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

left=$(ip netns list | awk '$1 ~ /^cpvt-/ {print $1}')
if [ -n "$left" ]; then
  echo "error: tests left network namespaces behind: $left" >&2
  exit 1
fi
