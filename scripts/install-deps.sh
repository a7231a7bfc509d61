#!/usr/bin/env bash
# Installs the system packages the build needs on Debian/Ubuntu, only those missing: protoc
# (tonic-prost-build), libclang (RocksDB's bindgen), a C++ compiler (RocksDB itself) and
# promtool (Debian's prometheus package: the metrics test checks the /metrics page with it)
# curl (the HTTP gateway's test drives it as a hospital system would) and chromium (the
# dashboard's test signs in and reads the pages in headless Chromium).
set -euo pipefail
need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# buf (protobuf lint) from PyPI's buf-bin, which ships the binary.
if ! command -v buf >/dev/null 2>&1; then
  echo "installing: buf-bin (PyPI)"
  python3 -m pip install --quiet buf-bin 2>/dev/null || python3 -m pip install --quiet --break-system-packages buf-bin
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi
