#!/usr/bin/env bash
# The demo: a small data centre in network namespaces (a BIRD router, three control-plane nodes
# running cpvip, a Lease server, a client), cpvip doing its whole job, then torn down.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cargo build --release --locked -p cpvip -p cpvip-lab --bins
exec ./target/release/cpvip-lab demo --cpvip ./target/release/cpvip "$@"
