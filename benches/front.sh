#!/usr/bin/env bash
# The authorization front's /authorize as users run it: the release binary
# with the front on, in front of node oidc-provider (an RFC 7591 upstream),
# beside oidc-provider's own /auth, in the same run. Each /authorize checks
# the client and the request, seals the login into the provider-side state
# and answers 302 (it writes nothing); each /auth of oidc-provider opens an
# interaction in its in-memory adapter and answers 303. The gateway is
# measured in several back-to-back runs, to show it stays flat however many
# logins were started before.
#   bash benches/front.sh [SECONDS] [CONNECTIONS] [RUNS]
# Settings changed from the defaults: the listen address, the front on, and
# the per-address quotas set to "unlimited", since all load comes from one
# address (the limiter still runs on every request).
# Needs wrk (apt-get install wrk), node 20+ and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-6}"
connections="${2:-32}"
runs="${3:-4}"
root=$(pwd)
. benches/lib.sh
bench_start
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

cargo build --release --quiet --bin dcr-gateway
(cd tests/interop/oidc-provider && npm ci --no-audit --no-fund --loglevel=error)

peer_port=$(free_port)
node tests/interop/oidc-provider/server.mjs "$peer_port" >/dev/null 2>&1 &
pids+=($!)
peer="http://127.0.0.1:$peer_port"
wait_for "$peer/.well-known/openid-configuration"

port=$(free_port)
gateway="http://127.0.0.1:$port"
(
    cd "$work"
    DCR_GATEWAY__SERVER__LISTEN="127.0.0.1:$port" \
    DCR_GATEWAY__SERVER__PUBLIC_URL="$gateway" \
    DCR_GATEWAY__STORE__ENCRYPTION_KEY="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY" \
    DCR_GATEWAY__PROVIDER__KIND=rfc7591 \
    DCR_GATEWAY__PROVIDER__ISSUER="$peer" \
    DCR_GATEWAY__PROVIDER__REGISTRATION_ENDPOINT="$peer/reg" \
    DCR_GATEWAY__FRONT__ENABLED=true \
    DCR_GATEWAY__FRONT__AUTHORIZE_PER_IP=unlimited \
    DCR_GATEWAY__LIMITS__REGISTER_PER_IP=unlimited \
    exec "$root/target/release/dcr-gateway" serve >"$work/gateway.log" 2>&1
) &
pids+=($!)
wait_for "$gateway/healthz"

# One public native client at each, and the authorization request of each.
client='{"redirect_uris":["http://127.0.0.1/cb"],"application_type":"native","token_endpoint_auth_method":"none","grant_types":["authorization_code"],"response_types":["code"]}'
ours=$(curl -sf -X POST "$gateway/register" -H 'Content-Type: application/json' -d "$client" | json '["client_id"]')
theirs=$(curl -sf -X POST "$peer/reg" -H 'Content-Type: application/json' -d "$client" | json '["client_id"]')
challenge=$(python3 -c 'import base64,hashlib; print(base64.urlsafe_b64encode(hashlib.sha256(b"v"*64).digest()).rstrip(b"=").decode())')
query="response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcb&scope=openid&state=s&code_challenge=$challenge&code_challenge_method=S256"

measure() { # URL PATH: "requests/s p50 p99 non2xx/3xx" (latencies in ms)
    wrk -t1 -c"$connections" -d"${seconds}s" --latency -s benches/wrk/get.lua "$1" -- "$2" | wrk_summary
}
row() { set -- "$1" $2; printf '| %-34s | %10s | %7s | %7s | %7s |\n' "$1" "$2" "$3" "$4" "$5"; }
started() { awk -v n="${1%% *}" -v s="$seconds" 'BEGIN { printf "%d", n * s }'; }

peer_auth=$(measure "$peer" "/auth?client_id=$theirs&$query")
echo
echo "wrk -t1 -c$connections -d${seconds}s, HTTP/1.1 keep-alive"
echo
echo "| run                                |  requests/s | p50 ms  | p99 ms  | non-2xx/3xx |"
echo "|------------------------------------|------------:|--------:|--------:|--------:|"
row "oidc-provider GET /auth" "$peer_auth"
first=""
total=0
for run in $(seq 1 "$runs"); do
    result=$(measure "$gateway" "/authorize?client_id=$ours&$query")
    first=${first:-$result}
    row "gateway GET /authorize, run $run (after $total)" "$result"
    total=$((total + $(started "$result")))
    last=$result
done
echo
echo "authorize (first run) / oidc-provider auth: $(ratio "$first" "$peer_auth")"
echo "authorize (last run) / first run:           $(ratio "$last" "$first")"
echo "logins started in all:                       $total"
