#!/usr/bin/env bash
# Drain benchmark: the worker alone draining a backlog of small click batches (the size an api
# process enqueues under spread load) into PostgreSQL and three counter shards, and the CPU
# each process used per click. Runs each worker setting given in DRAIN_CONFIGS on the same
# backlog size, back to back, so their ratio is measured in one run.
#
# Knobs: DRAIN_CLICKS (1000000), DRAIN_BATCH (40 clicks per job), DRAIN_CONFIGS (a list of
# "CLICK_WORKER_CONCURRENCY:CLICK_INGEST_SLOTS" pairs; default "12:12 12:2": the first
# ingests each job alone almost always, the second is the default, groups of jobs),
# BENCH_BIN (target/release; built unless BENCH_SKIP_BUILD=1).
# Prints clicks/s and CPU µs per click (worker, PostgreSQL, Redis) per setting; exits non-zero
# if an events count, distinct click ids or the real-time total differs from the clicks sent.
set -euo pipefail
cd "$(dirname "$0")/.."
CLICKS=${DRAIN_CLICKS:-1000000}
BATCH=${DRAIN_BATCH:-40}
CONFIGS=${DRAIN_CONFIGS:-"12:12 12:2"}
BIN=${BENCH_BIN:-target/release}
PGURL_ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB=curtain_bench_drain
log() { printf '[drain %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || cargo build --release --workspace --bins -q

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
for port in 6420 6421 6422 6423; do
  redis-server --port $port --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null & pids+=($!)
done
sleep 0.5
PG=${PGURL_ADMIN%/*}/$DB
# CPU seconds (user + system) of processes whose command line matches $1.
cpu_of() {
  python3 - "$1" <<'PY'
import os,sys,re
pat=re.compile(sys.argv[1]); tck=os.sysconf("SC_CLK_TCK"); tot=0
for p in os.listdir("/proc"):
    if not p.isdigit(): continue
    try:
        cmd=open(f"/proc/{p}/cmdline","rb").read().replace(b"\0",b" ").decode()
        if not pat.search(cmd): continue
        f=open(f"/proc/{p}/stat").read().rsplit(")",1)[1].split()
        tot+=int(f[11])+int(f[12])
    except OSError: pass
print(tot/tck)
PY
}
results=()
for config in $CONFIGS; do
  conc=${config%%:*}; slots=${config##*:}
  psql -q "$PGURL_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
  for port in 6420 6421 6422 6423; do redis-cli -p $port flushall >/dev/null; done
  export DATABASE_URL=$PG REDIS_URL=redis://127.0.0.1:6420/ CACHE_REDIS_URL=redis://127.0.0.1:6420/ \
    REDIS_SHARDS=127.0.0.1:6421,127.0.0.1:6422,127.0.0.1:6423 CACHE_PREFIX=drain CLICK_QUEUE=drain:clicks \
    WARM_QUEUE=drain:warm COUNTERS_QUEUE=drain:counters HEALTH_QUEUE=drain:health WEBHOOK_QUEUE=drain:webhooks RUST_LOG=warn
  CURTAIN_LISTEN=127.0.0.1:5911 $BIN/curtain-api & api=$!; pids+=($api)
  for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:5911/health && break; sleep 0.1; done
  LINK=$(curl -s -XPOST http://127.0.0.1:5911/urls -H 'content-type: application/json' -d '{"original_url":"https://example.com/drain"}')
  CODE=$(echo "$LINK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["short_code"])')
  URL_ID=$(echo "$LINK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  $BIN/curtain-ops bench-enqueue --redis-url "$REDIS_URL" --queue "$CLICK_QUEUE" --url-id "$URL_ID" --code "$CODE" --clicks "$CLICKS" --batch "$BATCH" >&2
  w0=0; p0=$(cpu_of '^postgres: .*curtain_bench_drain'); r0=$(cpu_of 'redis-server 127.0.0.1:642[0-3]')
  log "config $config: draining $CLICKS clicks in batches of $BATCH"
  T0=$(date +%s.%N)
  CURTAIN_LISTEN=127.0.0.1:5912 CLICK_WORKER_CONCURRENCY=$conc CLICK_INGEST_SLOTS=$slots $BIN/curtain-worker & worker=$!; pids+=($worker)
  until [ "$(psql -At "$PG" -c "SELECT count(*) FROM events WHERE event_type='redirect'")" -ge "$CLICKS" ]; do sleep 0.2; done
  T1=$(date +%s.%N)
  w1=$(cpu_of "^$BIN/curtain-worker"); p1=$(cpu_of '^postgres: .*curtain_bench_drain'); r1=$(cpu_of 'redis-server 127.0.0.1:642[0-3]')
  groups=$(curl -s http://127.0.0.1:5912/metrics | awk '/^curtain_worker_click_ingest_groups_total/{print $2}')
  sleep 1
  EVENTS=$(psql -At "$PG" -c "SELECT count(*) FROM events WHERE event_type='redirect'")
  DISTINCT=$(psql -At "$PG" -c "SELECT count(DISTINCT click_id) FROM events WHERE event_type='redirect'")
  REALTIME=$(curl -s "http://127.0.0.1:5911/urls/$URL_ID/analytics/realtime" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_clicks"])')
  kill $worker $api; wait $worker $api 2>/dev/null || true
  line=$(python3 - <<PY
n=$CLICKS; s=$T1-$T0
w=$w1-$w0; p=$p1-$p0; r=$r1-$r0
jobs=n/$BATCH; g=float("${groups:-0}") or 1
print(f"{'$config':>6} {n/s:9.0f} clicks/s {s:6.1f} s | cpu us/click worker {w/n*1e6:5.1f} postgres {p/n*1e6:5.1f} redis {r/n*1e6:5.1f} total {(w+p+r)/n*1e6:5.1f} | jobs/group {jobs/g:5.1f} | events $EVENTS distinct $DISTINCT realtime $REALTIME")
PY
)
  log "$line"
  results+=("$line")
  if [ "$EVENTS" != "$CLICKS" ] || [ "$DISTINCT" != "$CLICKS" ] || [ "$REALTIME" != "$CLICKS" ]; then
    log "MISMATCH: events $EVENTS, distinct $DISTINCT, real-time $REALTIME, sent $CLICKS"; exit 1
  fi
done
echo "conc:slots  rate | CPU per click (all three processes on $(nproc) cores)"
printf '%s\n' "${results[@]}"
