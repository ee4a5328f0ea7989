#!/usr/bin/env bash
# Mixed-workload load test (issue 6, item 10): wrk against a release server on loopback over a
# generated company (default: small = 10k leads), reads from four roles and ingest from the
# sync job, for DURATION seconds. Prints throughput, latency percentiles, errors and the
# server's peak RSS. Needs wrk (Debian package `wrk`).
# Usage: scripts/load.sh [sqlite|postgres] [DURATION] [SCALE]
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND="${1:-sqlite}"
DURATION="${2:-60}"
SCALE="${3:-small}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet --bin funnelgraph
BIN=target/release/funnelgraph
WORK="$(mktemp -d)"
PGDB="fg_load_$$"
cleanup() {
    for pid in "${PID:-}" "${SAMPLER:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null; done; true
    [ "$BACKEND" = postgres ] && psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" postgres >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
if [ "$BACKEND" = postgres ]; then
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $PGDB" postgres
    export FUNNELGRAPH_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$PGDB"
else
    export FUNNELGRAPH_DATABASE_URL="$WORK/load.db"
fi
export FUNNELGRAPH_JWT_SECRET="load-test-secret-load-test-secret-load"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export FUNNELGRAPH_BIND="127.0.0.1:$PORT"
export RUST_LOG=warn
"$BIN" generate --scale "$SCALE" --seed 7 >/dev/null
"$BIN" serve >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break; sleep 0.1; done
export TOKEN_ANALYST=$("$BIN" token --sub a0 --role ANALYST --ttl 7200)
export TOKEN_MANAGER=$("$BIN" token --sub mm0 --role MARKETING_MANAGER --ttl 7200)
export TOKEN_FINANCE=$("$BIN" token --sub f0 --role FINANCE --ttl 7200)
export TOKEN_REP=$("$BIN" token --sub s0 --role SALES_REP --ttl 7200)
export TOKEN_SYNC=$("$BIN" token --sub sync --role INTEGRATION --ttl 7200)
# Peak resident memory of the server, sampled every 200 ms.
( peak=0; while kill -0 "$PID" 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss && echo "$peak" >"$WORK/peak"
    sleep 0.2
  done ) &
SAMPLER=$!
echo "== $BACKEND, $SCALE company, ${DURATION}s, 2 threads x 16 connections"
wrk -t2 -c16 -d"${DURATION}s" --timeout 30s -s scripts/load.lua "http://127.0.0.1:$PORT/graphql"
echo "server peak RSS: $(( $(cat "$WORK/peak") / 1024 )) MiB"
grep -ciE "panicked|error" "$WORK/server.log" | xargs -I{} echo "server log lines with error/panic: {}"
