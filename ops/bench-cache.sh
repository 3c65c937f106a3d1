#!/usr/bin/env bash
# Cache benchmark: random redirects over BENCH_LINKS (10,000) links, with and without another
# client creating BENCH_CREATE_RATE (20) links/s, on the production shape (PostgreSQL, a
# queue/cache Redis, curtain-api with its in-process redirect tier). Before per-key
# invalidation every create emptied every cache; now a create touches only its own keys and
# the lists, so the rate with creates should stay within 10% of the rate without.
# Runs alternate (without, with) BENCH_CACHE_ROUNDS (2) times; medians are compared.
# Prints the ratio and writes ops/bench-results/cache-<time>.json (cache-latest.json).
# Knobs: BENCH_SECONDS (10), BENCH_CONNECTIONS (64), BENCH_LINKS, BENCH_CREATE_RATE,
# BENCH_CACHE_ROUNDS, BENCH_SKIP_BUILD=1 (binaries already built), BENCH_BIN (target/release).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-64}
LINKS=${BENCH_LINKS:-10000}
CREATE_RATE=${BENCH_CREATE_RATE:-20}
ROUNDS=${BENCH_CACHE_ROUNDS:-2}
PGURL_ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB=curtain_bench_cache
OUT=ops/bench-results
mkdir -p "$OUT"
log() { printf '[bench-cache %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

command -v wrk >/dev/null || { log "installing wrk"; apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; }
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  cargo build --release --workspace --bins -q
fi
BIN=${BENCH_BIN:-target/release}

pids=()
WORK=$(mktemp -d)
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

redis-server --port 6410 --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null & pids+=($!)
psql -q "$PGURL_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
PG=${PGURL_ADMIN%/*}/$DB
sleep 0.5
export DATABASE_URL=$PG REDIS_URL=redis://127.0.0.1:6410/ CACHE_REDIS_URL=redis://127.0.0.1:6410/ \
  CACHE_PREFIX=benchcache CLICK_QUEUE=benchcache:clicks WARM_QUEUE=benchcache:warm COUNTERS_QUEUE=benchcache:counters HEALTH_QUEUE=benchcache:health WEBHOOK_QUEUE=benchcache:webhooks \
  CLICK_DURABILITY=ack CLICK_SPOOL_DIR=$WORK/spool RUST_LOG=warn
API=http://127.0.0.1:5911
CURTAIN_LISTEN=127.0.0.1:5911 $BIN/curtain-api & pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "$API/health" && break; sleep 0.1; done

log "seeding $LINKS links"
psql -q "$PG" -c "INSERT INTO urls (short_code, original_url, original_url_hash, is_active, created_at, updated_at)
  SELECT 'b' || lpad(i::text, 5, '0'), 'https://example.com/seed/' || i, i, true, now(), now()
  FROM generate_series(1, $LINKS) AS i"
psql -At "$PG" -c "SELECT short_code FROM urls ORDER BY id" > "$WORK/codes"
export CODES_FILE=$WORK/codes

wrk_rps() { # -> "rps non_3xx"
  wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" -s ops/bench-cache.lua "$API" | python3 -c '
import re,sys
t=sys.stdin.read()
non=re.search(r"Non-2xx or 3xx responses: (\d+)",t)
print(float(re.search(r"Requests/sec:\s+([\d.]+)",t).group(1)), int(non.group(1)) if non else 0)'
}
creator() { # creates CREATE_RATE links/s until SIGTERM; prints how many (exec: $! is python)
  exec python3 - "$API" "$CREATE_RATE" <<'PY'
import json, signal, sys, time, urllib.request
api, rate = sys.argv[1], float(sys.argv[2])
made = 0
def done(*_):
    print(made, flush=True); sys.exit(0)
signal.signal(signal.SIGTERM, done)
start = time.monotonic()
while True:
    body = json.dumps({"original_url": f"https://example.com/new/{time.time_ns()}"}).encode()
    req = urllib.request.Request(api + "/urls", body, {"content-type": "application/json"})
    urllib.request.urlopen(req).read()
    made += 1
    time.sleep(max(0.0, start + made / rate - time.monotonic()))
PY
}
metric() { curl -s "$API/metrics" | awk -v s="$1" 'index($0, s) == 1 {print $2}'; }

log "warm-up pass"
wrk_rps >/dev/null
QUIET=(); BUSY=(); CREATED=0; BAD=0
for round in $(seq "$ROUNDS"); do
  read -r rps bad < <(wrk_rps); QUIET+=("$rps"); BAD=$((BAD + bad))
  log "round $round/$ROUNDS: no creates: $rps rps"
  creator > "$WORK/created" & cpid=$!
  read -r rps bad < <(wrk_rps); BUSY+=("$rps"); BAD=$((BAD + bad))
  kill -TERM "$cpid"; wait "$cpid" || true
  CREATED=$((CREATED + $(cat "$WORK/created" || echo 0)))
  log "round $round/$ROUNDS: $CREATE_RATE creates/s: $rps rps"
done
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
Q=$(median "${QUIET[@]}"); B=$(median "${BUSY[@]}")
MEM_HIT=$(metric 'curtain_cache_requests_total{result="hit",tier="memory"}')
MEM_MISS=$(metric 'curtain_cache_requests_total{result="miss",tier="memory"}')
REDIS_HIT=$(metric 'curtain_cache_requests_total{result="hit",tier="redis"}')
REDIS_MISS=$(metric 'curtain_cache_requests_total{result="miss",tier="redis"}')
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
python3 - "$OUT/cache-$STAMP.json" <<PY
import json,sys
r={"time":"$STAMP","machine":{"cores":$(nproc)},"links":$LINKS,"connections":$CONNS,
 "seconds":$SECONDS_RUN,"rounds":$ROUNDS,"create_rate_per_s":$CREATE_RATE,
 "without_creates":{"rps":$Q,"runs_rps":[$(IFS=,; echo "${QUIET[*]}")]},
 "with_creates":{"rps":$B,"runs_rps":[$(IFS=,; echo "${BUSY[*]}")],"links_created":$CREATED},
 "non_3xx":$BAD,"ratio_rps":round($B/$Q,3),
 "cache_requests":{"memory_hit":${MEM_HIT:-0},"memory_miss":${MEM_MISS:-0},"redis_hit":${REDIS_HIT:-0},"redis_miss":${REDIS_MISS:-0}}}
json.dump(r,open(sys.argv[1],"w"),indent=2)
print(json.dumps(r,indent=2))
print(f"\nrandom redirects over {r['links']} links: {r['without_creates']['rps']:.0f} rps without creates, {r['with_creates']['rps']:.0f} rps with {r['create_rate_per_s']} creates/s | ratio {r['ratio_rps']:.2f} (target >= 0.90)")
PY
cp "$OUT/cache-$STAMP.json" "$OUT/cache-latest.json"
