#!/usr/bin/env bash
# The one test command: installs what a fresh Debian machine lacks, then runs the read-only
# gate (format, clippy with -D warnings) and every test: pure-domain unit and property tests,
# openraft's storage suite on RocksDB, and cluster tests with real medmesh processes.
# Everything builds in one cargo profile (release, with overflow checks and debug assertions).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
command -v g++ >/dev/null 2>&1 || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo build --release --workspace --bins
if command -v cargo-nextest >/dev/null 2>&1 || cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --workspace --no-fail-fast --test-threads 2
else
  cargo test --release --workspace --no-fail-fast -- --test-threads 2
fi
