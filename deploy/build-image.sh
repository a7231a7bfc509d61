#!/usr/bin/env bash
# Builds the medmesh container image without pulling anything: the release binary plus the
# shared libraries `ldd` reports, in a FROM scratch image tagged medmesh:dev (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-medmesh:dev}"
cargo build --release --bin medmesh
ctx=target/image-context
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/etc" "$ctx/rootfs/tmp" "$ctx/data"
cp deploy/image/Dockerfile "$ctx/Dockerfile"
cp target/release/medmesh "$ctx/rootfs/medmesh"
# Every library the binary links, at the same path, plus the dynamic loader.
ldd target/release/medmesh | grep -oE '/[^ ]+' | sort -u | while read -r lib; do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
echo 'medmesh:x:10001:10001:medmesh:/var/lib/medmesh:/medmesh' > "$ctx/rootfs/etc/passwd"
echo 'medmesh:x:10001:' > "$ctx/rootfs/etc/group"
chmod 1777 "$ctx/rootfs/tmp"
docker build -q -t "$tag" "$ctx"
echo "built $tag"
