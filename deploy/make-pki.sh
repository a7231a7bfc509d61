#!/usr/bin/env bash
# Issues the development PKI of the compose mesh (deploy/docker-compose.yml) into deploy/pki
# (or $1): a CA, a certificate per replica naming medmesh://replica/{group}/{id} and its fixed
# address on the compose network, and client certificates for each province's agency and demo
# institutions, the national administration and each group's operator, and each province's
# seal key (seal-{code}.key). Prints the directory secret to export. Issuing again keeps what
# exists.
#
#   deploy/make-pki.sh && export MEDMESH_DIRECTORY_SECRET=$(cat deploy/pki/directory-secret)
#   docker-compose -f deploy/docker-compose.yml up -d
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-deploy/pki}"
bin="${MEDMESH_BIN:-target/release/medmesh}"
[ -x "$bin" ] || cargo build --release --bin medmesh
issue() { "$bin" pki issue --dir "$dir" "$@" >/dev/null; }
provinces=(110000 310000 440000)
for p in 1 2 3; do
  code="${provinces[$((p - 1))]}"
  for r in 1 2 3; do
    issue --identity "medmesh://replica/$code/$r" --host "172.28.0.$p$r" --host "node-$code-$r"
  done
  issue --identity "medmesh://replica/000000/$p" --host "172.28.0.${p}4" --host "fed-$p"
  issue --identity "medmesh://agency/$code"
  for n in 01 02; do issue --identity "medmesh://province/$code/institution/H$code-$n"; done
  issue --identity "medmesh://operator/$code"
  [ -s "$dir/seal-$code.key" ] || "$bin" pki seal-key --out "$dir/seal-$code.key" >/dev/null
done
issue --identity "medmesh://operator/000000"
issue --identity "medmesh://national"
[ -s "$dir/directory-secret" ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$dir/directory-secret"
# The replicas run as uid 10001 in the image; they must read their keys.
if [ "$(id -u)" -eq 0 ]; then chown 10001:10001 "$dir"/*.key; else chmod 0644 "$dir"/*.key; fi
echo "PKI in $dir (CA $dir/ca.pem); export MEDMESH_DIRECTORY_SECRET=$(cat "$dir/directory-secret")"
