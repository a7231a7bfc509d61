#!/usr/bin/env bash
# Runs the local mesh (`medmesh dev`): installs protoc and libclang if missing, builds the
# release binary and starts provinces x 3 replicas on 127.0.0.1 with demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --bin medmesh
exec ./target/release/medmesh dev "$@"
