#!/usr/bin/env bash
# Runs the local mesh (`medmesh dev`): installs protoc and libclang if missing, builds the
# release binary and starts provinces x 3 replicas on 127.0.0.1 with demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
command -v g++ >/dev/null 2>&1 || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --bin medmesh
exec ./target/release/medmesh dev "$@"
