#!/usr/bin/env bash
# Rollup benchmark (issue 7): one link with BENCH_CLICKS (1,000,000) redirect events spread
# over the last 30 days, on PostgreSQL, served by the release curtain-api.
#  1. GET /urls/<id>/analytics before any rollup (every hour marked, so it counts the raw
#     events: what analytics cost before rollups),
#  2. `curtain-ops rollup` (its rate in events/s),
#  3. GET /urls/<id>/analytics again, and the hourly and daily time series.
# Every analytics read is uncached: a POST /events before each one invalidates the cached
# payload (and adds an event to the open hour, as live traffic does); only X-Cache: MISS
# answers are timed, after 10 untimed reads (the first reads after start-up open the pool's
# database connections, and a new PostgreSQL backend's first queries load its catalog caches:
# tens of ms once per connection, not per read). GET /health is timed the same way as the
# bare baseline of the same run.
# Prints medians, p95 and max, and writes ops/bench-results/rollup-<time>.json
# (rollup-latest.json). Knobs: BENCH_CLICKS, BENCH_READS (50), BENCH_SKIP_BUILD=1,
# BENCH_BIN (target/release).
set -euo pipefail
cd "$(dirname "$0")/.."
CLICKS=${BENCH_CLICKS:-1000000}
READS=${BENCH_READS:-50}
PGURL_ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB=curtain_bench_rollup
OUT=ops/bench-results
mkdir -p "$OUT"
log() { printf '[bench-rollup %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  cargo build --release --workspace --bins -q
fi
BIN=${BENCH_BIN:-target/release}

pids=()
WORK=$(mktemp -d)
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

psql -q "$PGURL_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
PG=${PGURL_ADMIN%/*}/$DB
# Embedded pipeline on PostgreSQL, no scheduled rollup: this script runs it when it means to.
export DATABASE_URL=$PG ROLLUP_EVERY_SECONDS=0 CACHE_PREFIX=benchrollup RUST_LOG=warn
API=http://127.0.0.1:5912
CURTAIN_LISTEN=127.0.0.1:5912 $BIN/curtain-api & pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "$API/health" && break; sleep 0.1; done
ID=$(curl -s -X POST "$API/urls" -H 'content-type: application/json' \
  -d '{"original_url":"https://example.com/million"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

log "inserting $CLICKS redirect events of link $ID over 30 days (50,000 visitors)"
t0=$(date +%s.%N)
psql -q "$PG" -c "INSERT INTO events (url_id, event_type, timestamp, click_id, visitor_hash)
  SELECT $ID, 'redirect', date_trunc('second', now() at time zone 'utc' - interval '30 days' * (i::float8 / $CLICKS)),
         md5('c' || i) , md5('v' || (i % 50000)) || md5('w' || (i % 50000))
  FROM generate_series(1, $CLICKS) AS i"
psql -q "$PG" -c "VACUUM ANALYZE events" -c "VACUUM ANALYZE rollup_pending"
log "inserted in $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s"

# time_reads PATH N -> one line of seconds per MISS answer
time_reads() {
  local path=$1 n=$2 invalidate=$3
  for _ in $(seq "$n"); do
    if [ "$invalidate" = 1 ]; then
      curl -s -o /dev/null -X POST "$API/events" -H 'content-type: application/json' -d "{\"event_type\":\"view\",\"url_id\":$ID}"
    fi
    curl -s -o /dev/null -D "$WORK/h" -w '%{time_total}\n' "$API$path" > "$WORK/t"
    if [ "$invalidate" = 0 ] || grep -qi '^x-cache: MISS' "$WORK/h"; then cat "$WORK/t"; fi
  done
}
stats() { python3 -c '
import json,statistics,sys
v=sorted(float(x)*1000 for x in sys.stdin.read().split())
print(json.dumps({"n":len(v),"median_ms":round(statistics.median(v),2),"p95_ms":round(v[int(0.95*(len(v)-1))],2),"max_ms":round(v[-1],2)}))'; }

log "baseline: GET /health"
HEALTH=$(time_reads /health "$READS" 0 | stats)
time_reads "/urls/$ID/analytics" 10 1 > /dev/null
log "analytics before the rollup (raw events)"
RAW=$(time_reads "/urls/$ID/analytics" "$READS" 1 | stats)
log "rolling up"
t0=$(date +%s.%N)
$BIN/curtain-ops rollup
ROLL_S=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
log "analytics after the rollup"
time_reads "/urls/$ID/analytics" 10 1 > /dev/null
ROLLED=$(time_reads "/urls/$ID/analytics" "$READS" 1 | stats)
HOURS=$(time_reads "/urls/$ID/analytics/timeseries?granularity=hour" "$READS" 0 | stats)
DAYS=$(time_reads "/urls/$ID/analytics/timeseries?granularity=day" "$READS" 0 | stats)
TOTAL=$(curl -s "$API/urls/$ID/analytics" | python3 -c 'import json,sys; print(json.load(sys.stdin)["redirect_count"])')
[ "$TOTAL" = "$CLICKS" ] || { log "FAIL: redirect_count $TOTAL, expected $CLICKS"; exit 1; }

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
python3 - "$OUT/rollup-$STAMP.json" <<PY
import json,sys
r={"clicks":$CLICKS,"health":$HEALTH,"analytics_raw":$RAW,"analytics_rolled_up":$ROLLED,
   "timeseries_hour_24":$HOURS,"timeseries_day_30":$DAYS,"rollup_seconds":$ROLL_S,
   "rollup_events_per_second":round($CLICKS/$ROLL_S) if $ROLL_S else None}
r["raw_over_rolled_up_median"]=round(r["analytics_raw"]["median_ms"]/r["analytics_rolled_up"]["median_ms"],1)
r["rolled_up_over_health_median"]=round(r["analytics_rolled_up"]["median_ms"]/r["health"]["median_ms"],1)
r["under_50_ms"]=r["analytics_rolled_up"]["max_ms"]<50
json.dump(r,open(sys.argv[1],"w"),indent=2)
print(json.dumps(r,indent=2))
PY
cp "$OUT/rollup-$STAMP.json" "$OUT/rollup-latest.json"
