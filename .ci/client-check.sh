#!/usr/bin/env bash
# Generate a Python client from the checked-in openapi.json with openapi-python-client and run
# .ci/client_check.py through it against a running curtain-api (embedded default, a fresh SQLite
# file): a user, a link, the redirect, analytics, real-time analytics, the time series, lists.
# Usage: .ci/client-check.sh [BIN_DIR] (target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug}
VENV=${PY_VENV:-/tmp/curtain-pytools}
if [ ! -x "$VENV/bin/openapi-python-client" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "openapi-python-client==0.29.1"
fi
WORK=$(mktemp -d)
PORT=5962
CURTAIN_LISTEN=127.0.0.1:$PORT DATABASE_URL="sqlite://$WORK/client.db?mode=rwc" \
  CLICK_SPOOL_DIR="$WORK/spool" RUST_LOG=warn "$BIN/curtain-api" > "$WORK/api.log" 2>&1 &
api=$!
trap 'kill $api 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$VENV/bin/openapi-python-client" generate --path openapi.json --meta none \
  --output-path "$WORK/curtain_client" > "$WORK/generate.log" 2>&1 || { cat "$WORK/generate.log"; exit 1; }
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/health" && break; sleep 0.1; done
PYTHONPATH=$WORK "$VENV/bin/python" .ci/client_check.py "http://127.0.0.1:$PORT"
