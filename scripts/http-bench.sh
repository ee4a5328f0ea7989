#!/usr/bin/env bash
# HTTP throughput (issue 7): wrk on loopback, in one run, against
#   1. GET /health               a plain actix route: the stack's ceiling
#   2. { me { id } }             GraphQL with JWT verification
#   2b. the same as a trusted document ({"documentId": "sha256:…"}, SPEC §11): no precheck,
#      parse or validation
#   3. campaign(externalId:)     a lookup by natural key, GraphQL with JWT
#   4. the same lookup through PostGraphile v4 (npm postgraphile@4) on the same PostgreSQL data
#   5. { hello } on actix-web + async-graphql alone (examples/graphql_floor.rs): the floor of
#      any GraphQL request on this stack, without token, precheck, database or metrics
# Usage: scripts/http-bench.sh [DURATION_SECONDS] [CONNECTIONS]
# Needs wrk, Node.js/npm (for PostGraphile) and a PostgreSQL at 127.0.0.1:5432 (user postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-15}"
CONNS="${2:-32}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet --bin funnelgraph --example graphql_floor
BIN=target/release/funnelgraph
WORK="$(mktemp -d)"
DB="fg_http_$$"
cleanup() {
    for pid in "${PID:-}" "${PGL:-}"; do [ -n "$pid" ] && [ "$pid" != 0 ] && kill "$pid" 2>/dev/null; done; true
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" postgres >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $DB" postgres
export FUNNELGRAPH_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export FUNNELGRAPH_JWT_SECRET="http-bench-secret-http-bench-secret-http"
export FUNNELGRAPH_LOG=warn
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export FUNNELGRAPH_BIND="127.0.0.1:$PORT"
"$BIN" generate --scale small --seed 7 >/dev/null 2>&1
printf '{ me { id } }' >"$WORK/me.graphql"
"$BIN" documents extract "$WORK/me.graphql" --out "$WORK/manifest.json" 2>/dev/null
ME_ID="sha256:$(python3 -c 'import hashlib; print(hashlib.sha256(b"{ me { id } }").hexdigest())')"
export FUNNELGRAPH_TRUSTED_DOCUMENTS="$WORK/manifest.json"
"$BIN" serve >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break; sleep 0.1; done
# "ana" is the generated analyst: a caller with a user row, as in production.
TOKEN=$("$BIN" token --sub ana --role ANALYST --ttl 7200)
# The lookup must find a campaign (a miss would measure a cheaper query on both sides).
FOUND=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"query":"{ campaign(externalId: \"c0007\") { id } }"}' "http://127.0.0.1:$PORT/graphql")
case "$FOUND" in *'"id"'*) ;; *) echo "the benchmarked campaign c0007 is missing: $FOUND" >&2; exit 1 ;; esac

post_script() { # $1 = file, $2 = JSON body, $3 = auth header or empty
    cat >"$1" <<LUA
wrk.method = "POST"
wrk.body = '$2'
wrk.headers["Content-Type"] = "application/json"
$( [ -n "$3" ] && echo "wrk.headers[\"Authorization\"] = \"$3\"" )
local bad = 0
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %.0f req/s p50 %.2f ms p99 %.2f ms errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
}
run() { # $1 = label, rest = wrk args
    local label="$1"; shift
    local line
    line=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" "$@" | grep RESULT || true)
    if [ -z "$line" ]; then
        line=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$@" | awk '/Requests\/sec/ {print "RESULT " $2 " req/s"}')
    fi
    printf "%-46s %s\n" "$label" "${line#RESULT }"
}
cat >"$WORK/plain.lua" <<'LUA'
function done(summary, latency, requests)
  io.write(string.format("RESULT %.0f req/s p50 %.2f ms p99 %.2f ms errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
post_script "$WORK/me.lua" '{"query":"{ me { id } }"}' "Bearer $TOKEN"
post_script "$WORK/trusted.lua" "{\"documentId\":\"$ME_ID\"}" "Bearer $TOKEN"
post_script "$WORK/campaign.lua" '{"query":"{ campaign(externalId: \\"c0007\\") { id name channel } }"}' "Bearer $TOKEN"
post_script "$WORK/floor.lua" '{"query":"{ hello }"}' ""
post_script "$WORK/pgl.lua" '{"query":"{ campaignByExternalId(externalId: \\"c0007\\") { id name channel } }"}' ""


echo "== wrk -t2 -c$CONNS -d${DURATION}s, loopback, release build, PostgreSQL, small company"
run "GET /health (plain actix route, ceiling)" -s "$WORK/plain.lua" "http://127.0.0.1:$PORT/health"
run "funnelgraph { me { id } } with JWT" -s "$WORK/me.lua" "http://127.0.0.1:$PORT/graphql"
run "  the same as a trusted document" -s "$WORK/trusted.lua" "http://127.0.0.1:$PORT/graphql"
run "funnelgraph campaign(externalId:) with JWT" -s "$WORK/campaign.lua" "http://127.0.0.1:$PORT/graphql"
kill "$PID"; PID=
FLOOR_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
FLOOR_BIND="127.0.0.1:$FLOOR_PORT" target/release/examples/graphql_floor >/dev/null 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf -X POST -H 'Content-Type: application/json' -d '{"query":"{ hello }"}' "http://127.0.0.1:$FLOOR_PORT/graphql" >/dev/null 2>&1 && break; sleep 0.1; done
run "async-graphql alone { hello } (GraphQL floor)" -s "$WORK/floor.lua" "http://127.0.0.1:$FLOOR_PORT/graphql"
kill "$PID"; PID=

if command -v npx >/dev/null 2>&1; then
    PGLDIR="${PGL_DIR:-$WORK/pgl}"
    if [ ! -x "$PGLDIR/node_modules/.bin/postgraphile" ]; then
        mkdir -p "$PGLDIR" && (cd "$PGLDIR" && npm init -y >/dev/null 2>&1 && npm install --silent --no-audit --no-fund postgraphile@4 >/dev/null 2>&1)
    fi
    PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$PGLDIR/node_modules/.bin/postgraphile" -c "$FUNNELGRAPH_DATABASE_URL" --host 127.0.0.1 --port "$PGPORT" \
        --disable-graphiql --disable-query-log >"$WORK/pgl.log" 2>&1 &
    PGL=$!
    for _ in $(seq 1 300); do curl -sf -X POST -H 'Content-Type: application/json' -d '{"query":"{ __typename }"}' "http://127.0.0.1:$PGPORT/graphql" >/dev/null 2>&1 && break; sleep 0.1; done
    run "PostGraphile v4 campaignByExternalId" -s "$WORK/pgl.lua" "http://127.0.0.1:$PGPORT/graphql"
else
    echo "*** SKIPPED: PostGraphile (Node.js not installed) ***"
fi
