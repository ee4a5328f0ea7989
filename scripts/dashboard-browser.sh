#!/usr/bin/env bash
# The dashboard driven in Debian's chromium with playwright-core (npm, pinned): sign-in by
# keyboard, closing and reopening a period, a MARKETER at phone width, no request to another
# host. Needs Node.js 18+, npm and chromium. Usage: scripts/dashboard-browser.sh [path/to/funnelgraph]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/debug/funnelgraph}"
[ -x "$BIN" ] || cargo build --quiet --bin funnelgraph
WORK="$(mktemp -d)"
trap '[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
(cd "$WORK" && npm init -y >/dev/null 2>&1 && npm install --silent --no-audit --no-fund playwright-core@1.49.1 >/dev/null)
cp scripts/dashboard-browser.mjs "$WORK/"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export FUNNELGRAPH_DATABASE_URL="$WORK/dashboard.db"
export FUNNELGRAPH_BIND="127.0.0.1:$PORT"
"$BIN" serve --dev --demo >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
TOKEN=$(curl -sf "http://127.0.0.1:$PORT/dev/tokens" | python3 -c 'import json,sys; print([t["token"] for t in json.load(sys.stdin) if t["role"]=="ADMIN"][0])')
node "$WORK/dashboard-browser.mjs" "http://127.0.0.1:$PORT" "$TOKEN"
