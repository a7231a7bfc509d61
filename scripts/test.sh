#!/usr/bin/env bash
# The one test command: installs what a fresh Debian machine lacks, then runs the read-only
# gate (format, clippy with -D warnings) and every test: pure-domain unit and property tests,
# openraft's storage suite on RocksDB, cluster tests with real medmesh processes, and (when a
# Docker engine is present) the compose mesh in containers under docker kill and pause.
# Everything builds in one cargo profile (release, with overflow checks and debug assertions).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
# The API: buf lint with the STANDARD rules (one request and one response message per rpc,
# documented fields); see proto/buf.yaml.
(cd proto && buf lint)
echo "proto: buf lint clean"
# No silent break for a hospital integration: buf breaking (FILE rules, proto/buf.yaml) against
# the API as of the commit in proto/BREAKING_BASELINE. A deliberate break moves that file to the
# breaking commit, with the reason in its message.
baseline=$(cat proto/BREAKING_BASELINE)
if ! git cat-file -e "$baseline^{commit}" 2>/dev/null; then
    echo "proto: baseline commit $baseline is not in this clone (shallow?); fetch it" >&2
    exit 1
fi
(cd proto && buf breaking --against "../.git#ref=$baseline,subdir=proto")
echo "proto: no breaking change since ${baseline:0:12}"
# Helm chart: rendered and linted by real Helm (helm-python-sdk) and validated against the
# Kubernetes schemas offline (kubernetes-validate); compose file: parsed by docker-compose.
./scripts/validate-chart.sh
if command -v docker-compose >/dev/null 2>&1; then
  MEDMESH_DIRECTORY_SECRET=compose-config-check docker-compose -f deploy/docker-compose.yml config -q && echo "compose: deploy/docker-compose.yml valid"
else
  echo "compose: docker-compose not installed, compose file check skipped"
fi
cargo clippy --release --workspace --all-targets -- -D warnings
cargo build --release --workspace --bins
if command -v cargo-nextest >/dev/null 2>&1 || cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --workspace --no-fail-fast --test-threads 2
else
  cargo test --release --workspace --no-fail-fast -- --test-threads 2
fi
