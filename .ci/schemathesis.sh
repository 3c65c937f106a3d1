#!/usr/bin/env bash
# Fuzz the checked-in openapi.json against a running curtain-api (embedded default, a fresh
# SQLite file) with schemathesis: every operation, examples + coverage + fuzzing phases, every
# check but positive_data_acceptance. That one is left out on purpose: the contract's rules
# are stricter than a JSON Schema can say (a duplicate email is the contract's 422, not 409;
# NUL characters anywhere in `details`; a target URL's host rules; at most 1,000 time-series
# buckets; a CSV file's content), so schema-valid requests that the contract rejects with its
# own 400/422 are correct answers. Fails on any server error, undocumented status, content
# type or header, schema-violating response, accepted invalid data or 405 without Allow.
# Usage: .ci/schemathesis.sh [BIN_DIR] (target/debug); ST_EXAMPLES (50).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug}
EXAMPLES=${ST_EXAMPLES:-50}
VENV=${ST_VENV:-/tmp/curtain-schemathesis}
if [ ! -x "$VENV/bin/st" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==4.32.5"
fi
WORK=$(mktemp -d)
PORT=5961
CURTAIN_LISTEN=127.0.0.1:$PORT DATABASE_URL="sqlite://$WORK/st.db?mode=rwc" \
  ALERTMANAGER_WEBHOOK_TOKEN=schemathesis-token CLICK_SPOOL_DIR="$WORK/spool" RUST_LOG=warn \
  "$BIN/curtain-api" > "$WORK/api.log" 2>&1 &
api=$!
trap 'kill $api 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/health" && break; sleep 0.1; done
# A link and a user, so some generated ids exist.
curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/users" -H 'content-type: application/json' \
  -d '{"username":"fuzz","email":"fuzz@example.com"}'
curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/urls" -H 'content-type: application/json' \
  -d '{"original_url":"https://example.com/fuzz"}'
"$VENV/bin/st" run openapi.json --url "http://127.0.0.1:$PORT" \
  --checks all --exclude-checks positive_data_acceptance \
  -H 'Authorization: Bearer schemathesis-token' \
  --phases examples,coverage,fuzzing --max-examples "$EXAMPLES" --workers 2 \
  --seed 20261204 --warnings off
