#!/usr/bin/env bash
# The operator's SIGKILL scenario, in a loop: release binaries, PostgreSQL, a queue Redis and two
# counter shards on loopback, one curtain-api and one curtain-worker (defaults). Each iteration
# runs wrk on one hot /r/<code> and SIGKILLs the worker at random moments, restarting it after a
# random pause; then it waits (up to KILL_SETTLE seconds) until the link's redirect events and its
# real-time total equal wrk's count of 302s. wrk does not count the requests still in flight when
# it stops, so the events may exceed its count by at most one per connection; fewer is a loss.
# Knobs: KILL_ITERATIONS (5), KILL_SECONDS (12), KILLS_PER_ITERATION (2), KILL_CONNECTIONS (32),
# KILL_SETTLE (65), KILL_BIN (target/release; CI passes target/debug to reuse the test build).
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${KILL_ITERATIONS:-5}
DUR=${KILL_SECONDS:-12}
KILLS=${KILLS_PER_ITERATION:-2}
CONNS=${KILL_CONNECTIONS:-32}
SETTLE=${KILL_SETTLE:-65}
BIN=${KILL_BIN:-target/release}
PGURL_ADMIN=${KILL_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB=curtain_kill_loop
log() { printf '[kill-loop %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

command -v wrk >/dev/null || { log "installing wrk"; apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; }
if [ "$BIN" = target/release ]; then
  log "building release binaries"
  cargo build --release --workspace --bins -q
fi

pids=()
worker=""
cleanup() {
  [ -n "$worker" ] && kill -9 "$worker" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

for port in 6410 6411 6412; do
  redis-server --port $port --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null & pids+=($!)
done
psql -q "$PGURL_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
PG=${PGURL_ADMIN%/*}/$DB
sleep 0.5
export DATABASE_URL=$PG REDIS_URL=redis://127.0.0.1:6410/ CACHE_REDIS_URL=redis://127.0.0.1:6410/ \
  REDIS_SHARDS=127.0.0.1:6411,127.0.0.1:6412 CACHE_PREFIX=killloop CLICK_QUEUE=killloop:clicks COUNTERS_QUEUE=killloop:counters HEALTH_QUEUE=killloop:health WEBHOOK_QUEUE=killloop:webhooks \
  CLICK_SPOOL_DIR=$(mktemp -d) RUST_LOG=warn
API=http://127.0.0.1:5911
wait_http() { for _ in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; log "no answer from $1"; exit 1; }
start_worker() { CURTAIN_LISTEN=127.0.0.1:5912 "$BIN/curtain-worker" >>/tmp/curtain-kill-loop-worker.log 2>&1 & worker=$!; }

CURTAIN_LISTEN=127.0.0.1:5911 "$BIN/curtain-api" 2>/tmp/curtain-kill-loop-api.log & pids+=($!)
wait_http $API/health
: > /tmp/curtain-kill-loop-worker.log
start_worker

failures=0
HANDED_BEFORE=0
for i in $(seq "$ITER"); do
  LINK=$(curl -s -XPOST $API/urls -H 'content-type: application/json' -d "{\"original_url\":\"https://example.com/kill/$i\"}")
  CODE=$(echo "$LINK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["short_code"])')
  ID=$(echo "$LINK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  wrk -t1 -c"$CONNS" -d"${DUR}s" "$API/r/$CODE" > /tmp/curtain-kill-loop-wrk.txt &
  wrk_pid=$!
  # Kill moments: random, at least 0.5 s apart, inside the run.
  moments=$(python3 -c "import random; print(' '.join(f'{x:.2f}' for x in sorted(random.uniform(0.5, $DUR - 2) for _ in range($KILLS))))")
  t0=$(date +%s.%N)
  for m in $moments; do
    now=$(python3 -c "import time; print(time.time() - $t0)")
    python3 -c "import time; time.sleep(max(0, $m - $now))"
    kill -9 "$worker" 2>/dev/null || true
    wait "$worker" 2>/dev/null || true
    python3 -c "import random, time; time.sleep(random.uniform(0, 1))"
    start_worker
  done
  wait $wrk_pid
  N=$(awk '/requests in/{print $1}' /tmp/curtain-kill-loop-wrk.txt)
  NON=$(awk '/Non-2xx or 3xx/{print $5}' /tmp/curtain-kill-loop-wrk.txt); NON=${NON:-0}
  OK=$((N - NON))
  # The api's own count of clicks it handed on (queue or spool) is exact; wrk's is within CONNS.
  metric() { curl -s $API/metrics | awk -v m="$1" '$1==m{printf "%d", $2}'; }
  HANDED=$(( $(metric curtain_clicks_enqueued_total) + $(metric curtain_clicks_spooled_total) - HANDED_BEFORE ))
  HANDED_BEFORE=$(( HANDED_BEFORE + HANDED ))
  deadline=$(( $(date +%s) + SETTLE ))
  events=0; total=0
  while :; do
    events=$(psql -At "$PG" -c "SELECT count(*) FROM events WHERE url_id = $ID AND event_type = 'redirect'")
    total=$(curl -s "$API/urls/$ID/analytics/realtime" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_clicks"])')
    if [ "$events" -ge "$HANDED" ] && [ "$total" -eq "$events" ]; then break; fi
    [ "$(date +%s)" -ge "$deadline" ] && break
    sleep 1
  done
  verdict=ok
  if [ "$NON" -ne 0 ] || [ "$events" -lt "$OK" ] || [ "$events" -gt $((OK + CONNS)) ] || [ "$events" -ne "$HANDED" ] || [ "$total" -ne "$events" ]; then
    verdict=FAIL; failures=$((failures + 1))
    redis-cli -p 6410 --scan --pattern 'killloop:clicks:*' | grep -v ':meta:' | while read -r k; do
      printf '  %s %s\n' "$k" "$(redis-cli -p 6410 type "$k")"
    done >&2
  fi
  log "iteration $i/$ITER: kills at ${moments}s; wrk 302s $OK (non-302 $NON), clicks handed on $HANDED, events $events, real-time total $total: $verdict"
done
log "$failures of $ITER iterations lost or doubled clicks"
[ "$failures" -eq 0 ]
