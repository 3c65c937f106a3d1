#!/usr/bin/env bash
# Curtain benchmark: builds release binaries, starts the real stack on loopback (PostgreSQL,
# a queue/cache Redis, three counter shards) and measures in one run:
#   1. bare      a bare poem server answering 302 (the ceiling)
#   2. curtain   curtain-api redirecting a hot link, every click durably enqueued (ack), no
#                worker competing for the cores
#   3. drain     curtain-worker draining the clicks of (2) plus a synthetic backlog up to
#                BENCH_BACKLOG clicks into PostgreSQL and the counters
#   4. lag       redirects at a steady BENCH_RATE/s with the worker running; p99 ingestion lag
#   5. rebuild   every counter rebuilt from the events (curtain-ops counters rebuild --inline):
#                clicks rebuilt per second, and the real-time total still equal to the events
# Prints ratios to the bare baseline and writes ops/bench-results/<time>.json.
# Knobs: BENCH_SECONDS (10), BENCH_CONNECTIONS (64), BENCH_BACKLOG (1000000), BENCH_RATE (5000),
# BENCH_ROUNDS (3: bare and Curtain alternate this many times; medians are compared).
# Then ops/bench-rollup.sh (uncached analytics of a 1,000,000-click link before and after the
# rollup; BENCH_ROLLUP=0 skips it), ops/bench-cache.sh (random redirects over 10,000 links with and without 20 creates/s;
# BENCH_CACHE=0 skips it) and ops/bench-uniques.sh (unique-visitor accuracy for 100,000 visitors
# through two api processes; BENCH_UNIQUES=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-64}
BACKLOG=${BENCH_BACKLOG:-1000000}
RATE=${BENCH_RATE:-5000}
ROUNDS=${BENCH_ROUNDS:-3}
PGURL_ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB=curtain_bench
OUT=ops/bench-results
mkdir -p "$OUT"
log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

command -v wrk >/dev/null || { log "installing wrk"; apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; }
log "building release binaries"
cargo build --release --workspace --bins -q
BIN=target/release

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

for port in 6400 6401 6402 6403; do
  redis-server --port $port --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null & pids+=($!)
done
psql -q "$PGURL_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
PG=${PGURL_ADMIN%/*}/$DB
sleep 0.5
export DATABASE_URL=$PG REDIS_URL=redis://127.0.0.1:6400/ CACHE_REDIS_URL=redis://127.0.0.1:6400/ \
  REDIS_SHARDS=127.0.0.1:6401,127.0.0.1:6402,127.0.0.1:6403 CACHE_PREFIX=bench CLICK_QUEUE=bench:clicks COUNTERS_QUEUE=bench:counters HEALTH_QUEUE=bench:health WEBHOOK_QUEUE=bench:webhooks \
  CLICK_DURABILITY=ack CLICK_SPOOL_DIR=$(mktemp -d) RUST_LOG=warn

wrk_run() { # url -> "rps p99_ms requests"
  wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --latency "$1" | python3 -c '
import re,sys
t=sys.stdin.read()
rps=float(re.search(r"Requests/sec:\s+([\d.]+)",t).group(1))
m=re.search(r"99%\s+([\d.]+)(us|ms|s)\b",t); v=float(m.group(1)); u=m.group(2)
p99={"us":v/1000,"ms":v,"s":v*1000}[u]
n=int(re.search(r"(\d+) requests in",t).group(1))
non=re.search(r"Non-2xx or 3xx responses: (\d+)",t)
print(rps,p99,n,int(non.group(1)) if non else 0)'
}
wait_http() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; log "no answer from $1"; exit 1; }

$BIN/curtain-ops bench-bare --listen 127.0.0.1:5900 & pids+=($!)
CURTAIN_LISTEN=127.0.0.1:5901 $BIN/curtain-api & pids+=($!)
wait_http http://127.0.0.1:5900/r/x
wait_http http://127.0.0.1:5901/health
LINK=$(curl -s -XPOST http://127.0.0.1:5901/urls -H 'content-type: application/json' -d '{"original_url":"https://example.com/bench"}')
CODE=$(echo "$LINK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["short_code"])')
URL_ID=$(echo "$LINK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -s -o /dev/null "http://127.0.0.1:5901/r/$CODE"

# The VM is noisy (±10% between back-to-back runs): bare and Curtain alternate, ROUNDS times
# each, and the medians are compared. Both servers idle while the other is measured.
BARE_RUNS=(); CUR_RUNS=()
CUR_N=0; CUR_BAD=0
for round in $(seq "$ROUNDS"); do
  log "round $round/$ROUNDS: bare poem baseline"
  read -r rps p99 _ _ < <(wrk_run http://127.0.0.1:5900/r/hot123)
  BARE_RUNS+=("$rps $p99")
  log "round $round/$ROUNDS: curtain-api, ack durability, no worker"
  read -r rps p99 n bad < <(wrk_run "http://127.0.0.1:5901/r/$CODE")
  CUR_RUNS+=("$rps $p99")
  CUR_N=$((CUR_N + n)); CUR_BAD=$((CUR_BAD + bad))
  log "round $round: bare ${BARE_RUNS[-1]%% *} rps, curtain $rps rps, curtain p99 $p99 ms"
done
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
BARE_RPS=$(median $(for r in "${BARE_RUNS[@]}"; do echo "${r%% *}"; done))
BARE_P99=$(median $(for r in "${BARE_RUNS[@]}"; do echo "${r##* }"; done))
CUR_RPS=$(median $(for r in "${CUR_RUNS[@]}"; do echo "${r%% *}"; done))
CUR_P99=$(median $(for r in "${CUR_RUNS[@]}"; do echo "${r##* }"; done))
CUR_P99_MAX=$(python3 -c 'import sys; print(max(float(x) for x in sys.argv[1:]))' $(for r in "${CUR_RUNS[@]}"; do echo "${r##* }"; done))
BARE_LIST=$(printf '%s\n' "${BARE_RUNS[@]}" | awk '{printf "%s%s", (NR>1?",":""), $1}')
CUR_LIST=$(printf '%s\n' "${CUR_RUNS[@]}" | awk '{printf "%s%s", (NR>1?",":""), $1}')
ENQ=$(curl -s http://127.0.0.1:5901/metrics | awk '/^curtain_clicks_enqueued_total/{print $2}')
SPOOLED=$(curl -s http://127.0.0.1:5901/metrics | awk '/^curtain_clicks_spooled_total/{print $2}')
log "curtain: $CUR_RPS rps, p99 $CUR_P99 ms, $ENQ clicks enqueued, $SPOOLED spooled, $CUR_BAD non-302"

EXTRA=$(( BACKLOG > ENQ ? BACKLOG - ENQ : 0 ))
log "synthetic backlog: $EXTRA more clicks"
$BIN/curtain-ops bench-enqueue --redis-url "$REDIS_URL" --queue "$CLICK_QUEUE" --url-id "$URL_ID" --code "$CODE" --clicks "$EXTRA" >&2
TOTAL=$(( ENQ + EXTRA ))
count() { psql -At "$PG" -c "SELECT count(*) FROM events WHERE event_type='redirect'"; }

log "drain $TOTAL clicks"
T0=$(date +%s.%N)
CURTAIN_LISTEN=127.0.0.1:5902 CLICK_WORKER_CONCURRENCY=${BENCH_WORKER_CONCURRENCY:-128} $BIN/curtain-worker & pids+=($!)
# Progress from the worker's own counter: a count(*) of a table growing to millions of rows
# every half second would take a good part of a core from the drain it measures. The events
# table is counted once at the end.
ingested() { curl -s http://127.0.0.1:5902/metrics | awk '/^curtain_worker_clicks_ingested_total/{printf "%d", $2}'; }
while [ "$(ingested)" -lt "$TOTAL" ] 2>/dev/null || [ -z "$(ingested)" ]; do sleep 0.2; done
T1=$(date +%s.%N)
[ "$(count)" -eq "$TOTAL" ] || { log "events $(count) != $TOTAL after the worker counted them ingested"; exit 1; }
DRAIN_S=$(python3 -c "print($T1-$T0)")
DRAIN_RATE=$(python3 -c "print($TOTAL/($T1-$T0))")
DISTINCT=$(psql -At "$PG" -c "SELECT count(DISTINCT click_id) FROM events WHERE event_type='redirect'")
REALTIME=$(curl -s "http://127.0.0.1:5901/urls/$URL_ID/analytics/realtime" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_clicks"])')
log "drained $TOTAL in $DRAIN_S s ($DRAIN_RATE clicks/s); distinct click ids $DISTINCT; counters $REALTIME"

log "steady $RATE redirects/s with the worker running"
BEFORE=$(curl -s http://127.0.0.1:5902/metrics | grep '^curtain_worker_ingest_lag_seconds_bucket' || true)
$BIN/curtain-ops bench-load --url "http://127.0.0.1:5901/r/$CODE" --rate "$RATE" --seconds "$SECONDS_RUN" >&2
sleep 2
AFTER=$(curl -s http://127.0.0.1:5902/metrics | grep '^curtain_worker_ingest_lag_seconds_bucket' || true)
LAG_P99=$(python3 - "$BEFORE" "$AFTER" <<'PY'
import re,sys
def parse(t): return {m.group(1): float(m.group(2)) for m in re.finditer(r'le="([^"]+)"\} ([\d.e+]+)', t)}
b,a=parse(sys.argv[1]),parse(sys.argv[2])
d={k:a[k]-b.get(k,0) for k in a}
tot=d.get("+Inf",0)
les=sorted((float(k),v) for k,v in d.items() if k!="+Inf")
print(next((le for le,v in les if tot and v>=0.99*tot), "inf"))
PY
)
log "ingestion lag p99 <= $LAG_P99 s (histogram bucket bound)"

log "counter rebuild from the events (curtain-ops counters rebuild --inline)"
realtime() { curl -s "http://127.0.0.1:5901/urls/$URL_ID/analytics/realtime" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_clicks"])'; }
REBUILD=$($BIN/curtain-ops counters rebuild --inline)
log "$REBUILD"
REBUILD_RATE=$(echo "$REBUILD" | sed -E 's/.*\(([0-9]+) clicks\/s\).*/\1/')
EVENTS_NOW=$(count); REALTIME_NOW=$(realtime)
[ "$EVENTS_NOW" = "$REALTIME_NOW" ] || { log "after the rebuild: real-time $REALTIME_NOW != events $EVENTS_NOW"; exit 1; }

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
python3 - "$OUT/$STAMP.json" <<PY
import json,sys
r={"time":"$STAMP","machine":{"cores":$(nproc)},"connections":$CONNS,"seconds":$SECONDS_RUN,
 "rounds":$ROUNDS,
 "bare":{"rps":$BARE_RPS,"p99_ms":$BARE_P99,"runs_rps":[$BARE_LIST]},
 "curtain":{"rps":$CUR_RPS,"p99_ms":$CUR_P99,"p99_ms_worst":$CUR_P99_MAX,"runs_rps":[$CUR_LIST],"requests":$CUR_N,"non_302":$CUR_BAD,"clicks_enqueued":$ENQ,"clicks_spooled":$SPOOLED,"durability":"ack"},
 "ratio_rps":round($CUR_RPS/$BARE_RPS,3),
 "drain":{"clicks":$TOTAL,"seconds":round($DRAIN_S,2),"clicks_per_s":round($DRAIN_RATE),"distinct_click_ids":$DISTINCT,"counter_total":$REALTIME},
 "lag":{"rate_per_s":$RATE,"p99_le_seconds":"$LAG_P99"},
 "rebuild":{"events":$EVENTS_NOW,"clicks_per_s":$REBUILD_RATE,"realtime_after":$REALTIME_NOW}}
json.dump(r,open(sys.argv[1],"w"),indent=2)
print(json.dumps(r,indent=2))
print(f"\nbare {r['bare']['rps']:.0f} rps | curtain {r['curtain']['rps']:.0f} rps | ratio {r['ratio_rps']:.2f} | curtain p99 {r['curtain']['p99_ms']} ms")
print(f"drain {r['drain']['clicks_per_s']} clicks/s | lag p99 <= {r['lag']['p99_le_seconds']} s at {r['lag']['rate_per_s']}/s | counter rebuild {r['rebuild']['clicks_per_s']} clicks/s")
PY
cp "$OUT/$STAMP.json" "$OUT/latest.json"

if [ "${BENCH_CACHE:-1}" != 0 ]; then
  cleanup
  BENCH_SKIP_BUILD=1 ops/bench-cache.sh
fi
if [ "${BENCH_ROLLUP:-1}" != 0 ]; then
  # Analytics of one link with 1,000,000 clicks, uncached, before and after the rollup.
  BENCH_SKIP_BUILD=1 BENCH_BIN=$BIN ops/bench-rollup.sh
fi
if [ "${BENCH_UNIQUES:-1}" != 0 ]; then
  # Unique visitors of 100,000 distinct visitors through two api processes, then the same
  # visitors again through the other api: within ±2.5% both times.
  cleanup
  BENCH_SKIP_BUILD=1 BENCH_BIN=$BIN ops/bench-uniques.sh
fi
