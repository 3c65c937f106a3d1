#!/usr/bin/env bash
# Browser check: Curtain's HTML pages driven in Debian's Chromium through Playwright
# (.ci/browser_check.py) against a running curtain-api (embedded default, a fresh SQLite file,
# workers in process) and a target site served on loopback (no internet): the shorten form,
# the redirect, Swagger UI's "Try it out" on GET /health, /admin/queues, the link page and a
# password link's form.
# Fails on any JavaScript console or page error and on any missing element. Screenshots
# (1280x800 PNG) go to SHOTS_DIR (default: a temporary folder, removed afterwards).
# Usage: .ci/browser-check.sh [BIN_DIR] (target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug}
VENV=${BROWSER_VENV:-/tmp/curtain-browser-venv}
PLAYWRIGHT="playwright==1.65.2"
# Playwright drives the system Chromium: it never downloads a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
fi
/usr/bin/chromium --version
if ! "$VENV/bin/python" -c 'import playwright' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "$PLAYWRIGHT"
fi
"$VENV/bin/pip" show playwright | grep '^Version'

WORK=$(mktemp -d)
SHOTS=${SHOTS_DIR:-$WORK/shots}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
API_PORT=$(free_port)
TARGET_PORT=$(free_port)

mkdir -p "$WORK/site"
printf '<!doctype html><html lang="en"><title>Target</title><h1 id="landed">Landed</h1></html>\n' \
  > "$WORK/site/landing.html"
printf '' > "$WORK/site/favicon.ico"
python3 -m http.server "$TARGET_PORT" --bind 127.0.0.1 --directory "$WORK/site" \
  > "$WORK/site.log" 2>&1 &
pids+=($!)

# The embedded default: no REDIS_URL, no cache Redis, whatever the caller's environment says.
env -u REDIS_URL -u CACHE_REDIS_URL -u REDIS_SHARDS -u RATE_LIMIT_REDIS_URL \
  CURTAIN_LISTEN=127.0.0.1:$API_PORT DATABASE_URL="sqlite://$WORK/browser.db?mode=rwc" \
  CLICK_SPOOL_DIR="$WORK/spool" RUST_LOG=warn "$BIN/curtain-api" > "$WORK/api.log" 2>&1 &
pids+=($!)
up=""
for _ in $(seq 150); do
  if curl -s -o /dev/null "http://127.0.0.1:$API_PORT/health" \
    && curl -s -o /dev/null "http://127.0.0.1:$TARGET_PORT/landing.html"; then up=1; break; fi
  sleep 0.1
done
[ -n "$up" ] || { echo "curtain-api or the target site did not start"; cat "$WORK/api.log" "$WORK/site.log"; exit 1; }

status=0
"$VENV/bin/python" .ci/browser_check.py "http://127.0.0.1:$API_PORT" \
  "http://127.0.0.1:$TARGET_PORT/landing.html" "$SHOTS" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- curtain-api log"; tail -50 "$WORK/api.log"
  exit "$status"
fi
ls -l "$SHOTS"
echo "browser check passed: 6 pages, screenshots in $SHOTS"
