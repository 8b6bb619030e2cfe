#!/usr/bin/env bash
# Runs schemathesis (PyPI) against a gateway built from this tree, using the
# gateway's own OpenAPI document: every operation, every check, except
# `positive_data_acceptance` (a body can satisfy the JSON schema and still
# break an RFC 7591 rule the schema cannot express, e.g. redirect_uris being
# required for the code grant; those are 400 by design).
#   bash tests/schemathesis/run.sh [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/../.."
examples="${1:-300}"
command -v st >/dev/null 2>&1 || pip install -q schemathesis
cargo build -q --bin dcr-gateway
work="$(mktemp -d)"
port=18181
cat > "$work/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
public_url = "http://127.0.0.1:$port"
[store]
url = "sqlite://$work/gateway.db"
[limits]
register_per_ip = "unlimited"
manage_per_client = "unlimited"
[log]
filter = "warn"
TOML
"${CARGO_TARGET_DIR:-target}/debug/dcr-gateway" serve --config "$work/gateway.toml" &
gateway=$!
trap 'kill $gateway; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
st run "http://127.0.0.1:$port/openapi.json" --checks all \
    --exclude-checks positive_data_acceptance -n "$examples" -w 1
