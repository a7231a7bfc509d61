#!/usr/bin/env bash
# Where the time goes (issue 15): while medmesh-bench drives claims, `perf record` samples one
# replica process with DWARF call graphs and inferno draws the flame graph. Machines without
# hardware counters (like the project's VM) sample the cpu-clock software event.
#
# Usage: scripts/profile.sh [local|nonlocal] [group, e.g. 110000 or 000000] [replica id 1-3]
#        [seconds sampled, default 5] [output.svg]
# (after `cargo build --release --workspace --bins`). Defaults: local 110000 1 5
# target/profile-<mode>-<group>-<id>.svg. Replica 1 of each group is its first leader.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-local}
group=${2:-110000}
id=${3:-1}
secs=${4:-5}
svg=${5:-target/profile-$mode-$group-$id.svg}
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
command -v perf >/dev/null 2>&1 || $SUDO apt-get install -y -qq --no-install-recommends linux-perf >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
command -v inferno-flamegraph >/dev/null 2>&1 || cargo install --locked inferno >/dev/null
out=$(mktemp -d)
./target/release/medmesh-bench --mode "$mode" --seconds $((secs + 10)) --concurrency 256 --persons 2000 \
  --base-port 7900 > "$out/bench.log" 2>&1 &
bench=$!
until grep -q "mesh ready" "$out/bench.log"; do
  kill -0 "$bench" 2>/dev/null || { cat "$out/bench.log"; exit 1; }
  sleep 0.2
done
sleep 3
pid=""
for p in /proc/[0-9]*; do
  env=$( (tr '\0' '\n' < "$p/environ") 2>/dev/null || true)
  if grep -qx "MEDMESH_PROVINCE=$group" <<<"$env" && grep -qx "MEDMESH_ID=$id" <<<"$env" \
    && grep -qx "MEDMESH_PARENT_PID=$bench" <<<"$env"; then
    pid=${p#/proc/}
  fi
done
[ -n "$pid" ] || { echo "no replica $id of $group under the bench" >&2; exit 1; }
perf record -e cpu-clock -F 299 --call-graph dwarf,16384 -p "$pid" -o "$out/perf.data" -- sleep "$secs" 2>/dev/null
wait "$bench"
grep -E "settlements:|settle call" "$out/bench.log"
perf script -i "$out/perf.data" 2>/dev/null | inferno-collapse-perf > "$out/folded"
inferno-flamegraph --minwidth 0.5 --title "medmesh $mode: replica $id of $group" < "$out/folded" > "$svg"
echo "flame graph: $svg (folded stacks: $out/folded)"
