#!/usr/bin/env bash
# GraphQL over HTTP compliance: runs the graphql-http audit suite (npm) against a server built
# from this tree on a throwaway SQLite database. Needs Node.js 18+ and npm; zero errors and
# zero warnings or it fails. Usage: scripts/graphql-http-audit.sh [path/to/funnelgraph]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/debug/funnelgraph}"
[ -x "$BIN" ] || cargo build --quiet --bin funnelgraph
WORK="$(mktemp -d)"
trap '[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
# The suite itself, pinned, installed once per run into a scratch directory.
(cd "$WORK" && npm init -y >/dev/null 2>&1 && npm install --silent --no-audit --no-fund graphql-http@1.23.1 graphql@16 >/dev/null)
cp scripts/graphql-http-audit.mjs "$WORK/"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export FUNNELGRAPH_DATABASE_URL="$WORK/audit.db"
export FUNNELGRAPH_JWT_SECRET="graphql-http-audit-secret-graphql-http-audit"
export FUNNELGRAPH_BIND="127.0.0.1:$PORT"
"$BIN" serve >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
TOKEN=$("$BIN" token --sub audit --role ADMIN)
node "$WORK/graphql-http-audit.mjs" "http://127.0.0.1:$PORT/graphql" "$TOKEN"
