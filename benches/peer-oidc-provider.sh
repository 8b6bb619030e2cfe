#!/usr/bin/env bash
# Runs the throughput bench with a real peer in the same run: node
# oidc-provider (its in-memory adapter, registration enabled), from the
# lockfile in tests/interop/oidc-provider. Prints the gateway's figures, the
# bare hyper ratios, and the gateway/peer ratios for register and read.
#   bash benches/peer-oidc-provider.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-3}"
(cd tests/interop/oidc-provider && npm ci --no-audit --no-fund --loglevel=error)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
node tests/interop/oidc-provider/server.mjs "$port" >/dev/null 2>&1 &
peer=$!
trap 'kill $peer' EXIT
for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$port/.well-known/openid-configuration" >/dev/null && break
    sleep 0.2
done
cargo bench --bench throughput -- --seconds "$seconds" \
    --peer-registration-endpoint "http://127.0.0.1:$port/reg"
