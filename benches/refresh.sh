#!/usr/bin/env bash
# The refresh grant with the gateway's own tokens (issue 30) against node
# oidc-provider's own refresh grant, in the same run. The gateway runs as
# users run it (the release binary, embedded defaults but for the listen
# address, broker mode in front of that oidc-provider with
# `[front] tokens = "gateway"`, and the /token quota lifted since all load
# comes from one address): each refresh checks the client, rotates the
# refresh token in the store (SQLite, synchronous=FULL) and signs a new
# ES256 access token, without calling the provider. oidc-provider (in-memory
# adapter) refreshes for a public client of its own and rotates its refresh
# tokens the same way. Both are driven by wrk with CONNECTIONS token chains:
# every refresh token is used once.
#   bash benches/refresh.sh [SECONDS] [CONNECTIONS]
# Needs wrk (apt-get install wrk), node 20+, npm, curl, python3, openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-8}"
connections="${2:-32}"
root=$(pwd)
. benches/lib.sh
bench_start
query() { python3 -c "import sys,urllib.parse as u; print(dict(u.parse_qsl(u.urlsplit(sys.argv[1]).query))[sys.argv[2]])" "$1" "$2"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

cargo build --release --quiet --bin dcr-gateway
(cd tests/interop/oidc-provider && npm ci --no-audit --no-fund --loglevel=error)

gw_port=$(free_port)
op_port=$(free_port)
gateway="http://127.0.0.1:$gw_port"
peer="http://127.0.0.1:$op_port"
clients=$(python3 -c "import json; print(json.dumps([
  {'client_id': 'dcr-gateway', 'client_secret': 'bench-operator-secret-0123456789',
   'redirect_uris': ['$gateway/callback'], 'grant_types': ['authorization_code', 'refresh_token'],
   'response_types': ['code']},
  {'client_id': 'bench-native', 'token_endpoint_auth_method': 'none', 'application_type': 'native',
   'redirect_uris': ['http://127.0.0.1/cb'], 'grant_types': ['authorization_code', 'refresh_token'],
   'response_types': ['code']}]))")
OIDC_STATIC_CLIENTS="$clients" node tests/interop/oidc-provider/server.mjs "$op_port" >/dev/null 2>&1 &
pids+=($!)
wait_for "$peer/.well-known/openid-configuration"

cat >"$work/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:$gw_port"
public_url = "$gateway"
[store]
url = "sqlite://$work/data/gateway.db"
encryption_key = "$(head -c 32 /dev/urandom | base64)"
[provider]
kind = "oidc"
issuer = "$peer"
client_id = "dcr-gateway"
client_secret = "bench-operator-secret-0123456789"
[front]
enabled = true
tokens = "gateway"
allowed_resources = ["https://mcp.example.com"]
token_per_ip = "unlimited"
authorize_per_ip = "unlimited"
TOML
mkdir -p "$work/data"
"$root/target/release/dcr-gateway" serve --config "$work/gateway.toml" >"$work/gateway.log" 2>&1 &
pids+=($!)
wait_for "$gateway/healthz"

# One PKCE pair serves every sign-in.
verifier=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 60)
challenge=$(printf %s "$verifier" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=')

# Plays the user at the provider from its authorization URL: where it sends
# the browser back.
provider_login() {
    local jar=$1 url=$2 interaction back
    interaction=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$url")
    back=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" -d login=bench "$interaction/login")
    while [[ "$back" == "$peer"* ]]; do
        back=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$back")
    done
    echo "$back"
}

# The gateway's refresh tokens: one client, CONNECTIONS sign-ins (the first
# through the consent page, the rest remembered).
app=$(curl -sf -X POST "$gateway/register" -H 'content-type: application/json' \
    -d '{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","application_type":"native","grant_types":["authorization_code","refresh_token"]}' | field client_id)
jar="$work/gateway.jar"
authorize="$gateway/authorize?response_type=code&client_id=$app&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb&scope=openid&resource=https%3A%2F%2Fmcp.example.com&code_challenge=$challenge&code_challenge_method=S256"
for i in $(seq 1 "$connections"); do
    first=$(curl -s -c "$jar" -b "$jar" -o "$work/page" -w '%{http_code} %{redirect_url}' "$authorize")
    if [[ "$first" == 200* ]]; then
        token=$(grep -o 'name="consent" value="[^"]*"' "$work/page" | sed 's/.*value="//;s/"$//')
        to_provider=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" -H "Origin: $gateway" --data-urlencode "consent=$token" -d decision=allow "$gateway/consent")
    else
        to_provider=${first#* }
    fi
    callback=$(provider_login "$work/op-$i.jar" "$to_provider")
    back=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$callback")
    curl -sf "$gateway/token" -d grant_type=authorization_code --data-urlencode "code=$(query "$back" code)" \
        -d "client_id=$app" --data-urlencode redirect_uri=http://127.0.0.1:5555/cb -d "code_verifier=$verifier" \
        | field refresh_token >>"$work/gateway.tokens"
done

# oidc-provider's refresh tokens for its own public client.
for i in $(seq 1 "$connections"); do
    url="$peer/auth?response_type=code&client_id=bench-native&redirect_uri=http%3A%2F%2F127.0.0.1%3A7777%2Fcb&scope=openid&code_challenge=$challenge&code_challenge_method=S256"
    back=$(provider_login "$work/native-$i.jar" "$url")
    curl -sf "$peer/token" -d grant_type=authorization_code --data-urlencode "code=$(query "$back" code)" \
        -d client_id=bench-native --data-urlencode redirect_uri=http://127.0.0.1:7777/cb -d "code_verifier=$verifier" \
        | field refresh_token >>"$work/peer.tokens"
done

measure() {
    wrk -t1 -c"$connections" -d"${seconds}s" --latency -s benches/wrk/refresh.lua "$1" -- "$2" "$3" "$4" 2>"$work/wrk.err" | wrk_summary; cat "$work/wrk.err" >&2
}
row() { set -- "$1" $2; printf '| %-36s | %10s | %7s | %7s | %7s |\n' "$1" "$2" "$3" "$4" "$5"; }
peer_refresh=$(measure "$peer" /token bench-native "$work/peer.tokens")
gateway_refresh=$(measure "$gateway" /token "$app" "$work/gateway.tokens")

echo
echo "wrk -t1 -c$connections -d${seconds}s, HTTP/1.1 keep-alive; each refresh token used once"
echo
echo "| run                                  | requests/s | p50 ms  | p99 ms  | non-2xx |"
echo "|--------------------------------------|-----------:|--------:|--------:|--------:|"
row "oidc-provider refresh (public client)" "$peer_refresh"
row "gateway refresh (own tokens)" "$gateway_refresh"
echo
echo "gateway / oidc-provider:  $(ratio "$gateway_refresh" "$peer_refresh")"
