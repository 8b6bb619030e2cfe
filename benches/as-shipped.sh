#!/usr/bin/env bash
# The gateway as users run it: the release binary, `dcr-gateway serve` on its
# embedded defaults (logging at info, SQLite with synchronous=FULL), driven
# by wrk (an external load generator, HTTP/1.1 keep-alive), beside a bare
# hyper server answering a body of the same size, and node oidc-provider, all
# in the same run.
#   bash benches/as-shipped.sh [SECONDS] [CONNECTIONS]
# The only settings changed from the defaults: the listen address (a free
# port) and the quotas, set to "unlimited" so that the limiter (which still
# runs on every request) does not answer 429 in place of the path measured.
# Needs wrk (apt-get install wrk), node 20+ and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
connections="${2:-32}"
root=$(pwd)
work=$(mktemp -d)
pids=()
cleanup() {
    # Children first: `cargo bench` runs the bare server as its child.
    for pid in "${pids[@]}"; do pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
. benches/lib.sh

cargo build --release --quiet --bin dcr-gateway
cargo bench --quiet --bench throughput --no-run 2>/dev/null
(cd tests/interop/oidc-provider && npm ci --no-audit --no-fund --loglevel=error)

# The gateway, from an empty directory, so it creates data/dcr-gateway.db.
port=$(free_port)
(
    cd "$work"
    DCR_GATEWAY__SERVER__LISTEN="127.0.0.1:$port" \
    DCR_GATEWAY__SERVER__PUBLIC_URL="http://127.0.0.1:$port" \
    DCR_GATEWAY__LIMITS__REGISTER_PER_IP=unlimited \
    DCR_GATEWAY__LIMITS__MANAGE_PER_CLIENT=unlimited \
    exec "$root/target/release/dcr-gateway" serve >"$work/gateway.log" 2>&1
) &
pids+=($!)
gateway="http://127.0.0.1:$port"
wait_for "$gateway/healthz"

# One client for the read, and the size of its read.
body='{"redirect_uris":["https://app.example.com/cb"],"client_name":"Benchmark client","grant_types":["authorization_code","refresh_token"],"scope":"openid"}'
answer=$(curl -sf -X POST "$gateway/register" -H 'Content-Type: application/json' -d "$body")
read_path=$(python3 -c 'import json,sys,urllib.parse; print(urllib.parse.urlsplit(json.load(sys.stdin)["registration_client_uri"]).path)' <<<"$answer")
read_token=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["registration_access_token"])' <<<"$answer")
read_size=$(curl -sf "$gateway$read_path" -H "Authorization: Bearer $read_token" | wc -c)

# The bare hyper baseline, answering a JSON body of that size.
cargo bench --quiet --bench throughput -- --serve-bare "$read_size" >"$work/bare.addr" 2>/dev/null &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$work/bare.addr" ] && break; sleep 0.1; done
bare="http://$(head -1 "$work/bare.addr")"

# node oidc-provider, in-memory adapter, registration open.
peer_port=$(free_port)
node tests/interop/oidc-provider/server.mjs "$peer_port" >/dev/null 2>&1 &
pids+=($!)
peer="http://127.0.0.1:$peer_port"
wait_for "$peer/.well-known/openid-configuration"

# One wrk run: measure URL SCRIPT [SCRIPT ARGS...]; prints
# "requests/s p50 p99 non2xx" (latencies in ms).
measure() {
    local url=$1 script=$2
    shift 2
    wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$script" "$url" -- "$@" | wrk_summary
}
row() { # name, "rps p50 p99 bad"
    set -- "$1" $2
    printf '| %-28s | %12s | %7s | %7s | %7s |\n' "$1" "$2" "$3" "$4" "$5"
}

lua=benches/wrk
credentials="$work/credentials"
bare_read=$(measure "$bare" "$lua/read.lua" / none)
gateway_read=$(measure "$gateway" "$lua/read.lua" "$read_path" "$read_token")
gateway_register=$(WRK_COLLECT=1 measure "$gateway" "$lua/register.lua" /register "$credentials")
gateway_replace=$(measure "$gateway" "$lua/replace.lua" "$credentials")
gateway_delete=$(measure "$gateway" "$lua/delete.lua" "$credentials")
peer_register=$(measure "$peer" "$lua/register.lua" /reg)
registered=$(wc -l <"$credentials")

echo
echo "wrk -t1 -c$connections -d${seconds}s, HTTP/1.1 keep-alive; read body $read_size bytes; $registered clients registered"
echo
echo "| run                          |   requests/s | p50 ms  | p99 ms  | non-2xx |"
echo "|------------------------------|-------------:|--------:|--------:|--------:|"
row "bare hyper, fixed body" "$bare_read"
row "gateway read (RFC 7592 GET)" "$gateway_read"
row "gateway register" "$gateway_register"
row "gateway replace (PUT)" "$gateway_replace"
row "gateway delete" "$gateway_delete"
row "oidc-provider register" "$peer_register"
echo
echo "read / bare hyper:             $(ratio "$gateway_read" "$bare_read")"
echo "replace / register:            $(ratio "$gateway_replace" "$gateway_register")"
echo "delete / register:             $(ratio "$gateway_delete" "$gateway_register")"
echo "register / oidc-provider:      $(ratio "$gateway_register" "$peer_register")"
