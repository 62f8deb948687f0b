#!/usr/bin/env bash
# iop-agent's mesh against babeld on the same namespace topologies (see bench/mesh-vs-babeld.ts).
# Needs root, babeld and nftables (apt-get install babeld nftables).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in babeld nft ip; do
  command -v "$tool" >/dev/null || { echo "bench/mesh-vs-babeld.sh: $tool is not installed (apt-get install babeld nftables iproute2)" >&2; exit 2; }
done
exec node_modules/.bin/node bench/mesh-vs-babeld.ts "$@"
