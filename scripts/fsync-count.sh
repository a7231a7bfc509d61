#!/usr/bin/env bash
# No durability shortcut, shown (issue 15): while medmesh-bench drives local claims, strace counts
# the fsync and fdatasync calls of each replica of province 110000; the bench prints the Raft
# entries the leader appended and the settlements acknowledged in the same phase. Every entry is
# made durable on the leader and on each follower before it counts (RocksDB's WAL synced per
# append), so each replica's syncs are at least the entries appended.
#
# Usage: scripts/fsync-count.sh [seconds, default 10] (after `cargo build --release --workspace --bins`)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-10}
if ! command -v strace >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq --no-install-recommends strace >/dev/null
fi
out=$(mktemp -d)
./target/release/medmesh-bench --mode local --seconds "$run" --concurrency 64 --persons 500 --base-port 7800 \
  > "$out/bench.log" 2>&1 &
bench=$!
until grep -q "mesh ready" "$out/bench.log"; do
  kill -0 "$bench" 2>/dev/null || { cat "$out/bench.log"; exit 1; }
  sleep 0.2
done
tracers=()
for p in /proc/[0-9]*; do
  env=$( (tr '\0' '\n' < "$p/environ") 2>/dev/null || true)
  if grep -qx "MEDMESH_PROVINCE=110000" <<<"$env" && grep -qx "MEDMESH_PARENT_PID=$bench" <<<"$env"; then
    id=$(grep '^MEDMESH_ID=' <<<"$env" | cut -d= -f2)
    timeout -s INT "$run" strace -f -c -e trace=fsync,fdatasync -o "$out/strace.$id" -p "${p#/proc/}" 2>/dev/null &
    tracers+=($!)
  fi
done
wait "$bench"
for t in "${tracers[@]}"; do wait "$t" || true; done
grep -v "^mesh ready" "$out/bench.log" | grep -E "settlements:|Raft entries"
for f in "$out"/strace.*; do
  calls=$(awk '$NF=="fsync" || $NF=="fdatasync" {n += $4} END {print n+0}' "$f")
  echo "replica ${f##*.} of 110000: $calls fsync/fdatasync calls in ${run} s"
done
