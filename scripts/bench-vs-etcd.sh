#!/usr/bin/env bash
# medmesh next to etcd on this machine, in one run (issue 15.1): a 3-member etcd cluster from
# Debian's etcd-server package (members on loopback, data on the same disk as the mesh's, default
# fsync, mTLS) takes 1 KiB puts at each client concurrency; then the mesh (federation and two
# provinces, 3 replicas each, RocksDB with fsync, mTLS) takes whole claims (register, upload ten
# fee lines, settle) at the same concurrencies, local and non-local; one table compares them.
#
# Usage: scripts/bench-vs-etcd.sh [--seconds 15] [--concurrency 64,256] [other medmesh-bench flags]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
if ! command -v etcd >/dev/null 2>&1; then
  echo "installing: etcd-server (Debian)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
fi
cargo build --release --workspace --bins
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo), $(uname -r); etcd $(etcd --version | head -1 | awk '{print $3}')"
exec ./target/release/medmesh-bench --seconds 15 --concurrency 64,256 --etcd "$(command -v etcd)" "$@"
