#!/usr/bin/env bash
# Unique-visitor accuracy benchmark (issue 10): the real-time counters' figures for
# BENCH_VISITORS (100,000) distinct visitors, counted through TWO curtain-api processes that
# share one PostgreSQL database, one queue/cache Redis and three counter shards, with one
# curtain-worker ingesting. Each redirect carries its visitor in X-Forwarded-For
# (TRUSTED_PROXY=127.0.0.1), 10.x.y.z, one address per visitor.
#  1. phase 1: one redirect per visitor, visitor i through api (i mod 2);
#  2. phase 2: the SAME visitors again, each through the OTHER api (the visitor hash is keyed
#     by the salt kept in the database, so both processes must hash a visitor the same way).
# After each phase, once the worker has stored as many redirect events as the generator got
# 302s, GET /urls/<id>/analytics/realtime (from both api) must answer total_clicks equal to
# that count exactly, and unique_visitors within ±BENCH_MAX_ERROR_PCT (2.5) % of the visitors
# (HyperLogLog, 2^14 registers: standard error 0.81%). Every request must be answered 302.
# The exact distinct visitor hashes in PostgreSQL must equal the visitors.
# Writes ops/bench-results/uniques-<time>.json (uniques-latest.json); exits non-zero on any
# failed check. Knobs: BENCH_VISITORS, BENCH_CONNECTIONS (32 per api), BENCH_MAX_ERROR_PCT,
# BENCH_SKIP_BUILD=1 (binaries already built), BENCH_BIN (target/release).
set -euo pipefail
cd "$(dirname "$0")/.."
VISITORS=${BENCH_VISITORS:-100000}
CONNS=${BENCH_CONNECTIONS:-32}
MAX_ERR=${BENCH_MAX_ERROR_PCT:-2.5}
PGURL_ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB=curtain_bench_uniques
OUT=ops/bench-results
# Ports of their own (bench.sh uses 6400-6403 and 5900-5902, bench-cache.sh 6410 and 5911,
# bench-rollup.sh 5912).
RQ=6420 SHARD_PORTS=(6421 6422 6423) API1=127.0.0.1:5921 API2=127.0.0.1:5922 WORKER=127.0.0.1:5923
mkdir -p "$OUT"
log() { printf '[bench-uniques %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  timeout 1800 cargo build --release --workspace --bins -q
fi
BIN=${BENCH_BIN:-target/release}

pids=()
WORK=$(mktemp -d)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  timeout 30 psql -q "$PGURL_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for port in $RQ "${SHARD_PORTS[@]}"; do
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null & pids+=($!)
done
timeout 60 psql -q "$PGURL_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
PG=${PGURL_ADMIN%/*}/$DB
for port in $RQ "${SHARD_PORTS[@]}"; do
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
SHARDS=$(printf '127.0.0.1:%s,' "${SHARD_PORTS[@]}"); SHARDS=${SHARDS%,}
export DATABASE_URL=$PG REDIS_URL=redis://127.0.0.1:$RQ/ CACHE_REDIS_URL=redis://127.0.0.1:$RQ/ \
  REDIS_SHARDS=$SHARDS CACHE_PREFIX=benchuniq CLICK_QUEUE=benchuniq:clicks WARM_QUEUE=benchuniq:warm COUNTERS_QUEUE=benchuniq:counters HEALTH_QUEUE=benchuniq:health WEBHOOK_QUEUE=benchuniq:webhooks \
  CLICK_DURABILITY=ack TRUSTED_PROXY=127.0.0.1 RUST_LOG=warn

wait_http() { for _ in $(seq 150); do curl -s -m 2 -o /dev/null "$1" && return 0; sleep 0.2; done; fail "no answer from $1"; }
# The first api runs the migrations and stores the generated salts; the second reads them.
CURTAIN_LISTEN=$API1 CLICK_SPOOL_DIR=$WORK/spool1 $BIN/curtain-api & pids+=($!)
wait_http "http://$API1/health"
CURTAIN_LISTEN=$API2 CLICK_SPOOL_DIR=$WORK/spool2 $BIN/curtain-api & pids+=($!)
CURTAIN_LISTEN=$WORKER $BIN/curtain-worker & pids+=($!)
wait_http "http://$API2/health"
wait_http "http://$WORKER/health"

LINK=$(curl -s -m 10 -XPOST "http://$API1/urls" -H 'content-type: application/json' -d '{"original_url":"https://example.com/uniques"}')
CODE=$(echo "$LINK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["short_code"])')
URL_ID=$(echo "$LINK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
log "link $URL_ID /r/$CODE; $VISITORS visitors, $CONNS connections per api"

# generate PHASE -> JSON {"sent", "found", "other", "errors", "seconds", "per_api"}:
# one GET /r/<code> per visitor i (X-Forwarded-For 10.x.y.z from i) through api (i + PHASE)
# mod 2, keep-alive connections, every answer's status counted by the generator itself.
generate() {
  timeout 300 python3 - "$1" "$VISITORS" "$CONNS" "$CODE" "$API1" "$API2" <<'PY'
import asyncio, json, sys, time
phase, visitors, conns, code = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
apis = sys.argv[5:7]
stats = {"sent": 0, "found": 0, "other": {}, "errors": 0,
         "per_api": {a: {"sent": 0, "found": 0} for a in apis}}

def ip(i):
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"

async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() == "close"

async def connection(api, todo):
    host, port = api.rsplit(":", 1)
    reader = writer = None
    while todo:
        i = todo.pop()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(f"GET /r/{code} HTTP/1.1\r\nHost: {api}\r\nX-Forwarded-For: {ip(i)}\r\n"
                         f"User-Agent: bench-uniques\r\n\r\n".encode())
            stats["sent"] += 1
            stats["per_api"][api]["sent"] += 1
            status, close = await asyncio.wait_for(read_response(reader), 30)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError):
            stats["errors"] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        if status == 302:
            stats["found"] += 1
            stats["per_api"][api]["found"] += 1
        else:
            stats["other"][str(status)] = stats["other"].get(str(status), 0) + 1
        if close:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()

async def main():
    tasks = []
    for a, api in enumerate(apis):
        todo = [i for i in range(visitors) if (i + phase) % 2 == a]
        todo.reverse()
        tasks += [connection(api, todo) for _ in range(conns)]
    await asyncio.gather(*tasks)

t0 = time.monotonic()
asyncio.run(main())
stats["seconds"] = round(time.monotonic() - t0, 2)
print(json.dumps(stats))
PY
}
events() { timeout 30 psql -At "$PG" -c "SELECT count(*) FROM events WHERE url_id = $URL_ID AND event_type = 'redirect'"; }
realtime() { # api -> "total_clicks unique_visitors unavailable_shards"
  curl -s -m 10 "http://$1/urls/$URL_ID/analytics/realtime" | python3 -c '
import json,sys; r=json.load(sys.stdin); print(r["total_clicks"], r["unique_visitors"], r["unavailable_shards"])'
}

PHASES=()
EXPECTED=0
for phase in 0 1; do
  log "phase $((phase + 1)): $VISITORS visitors through both api (visitor i -> api $(( phase + 1 )) if i is even)"
  GEN=$(generate "$phase") || fail "load generator failed or timed out"
  read -r SENT FOUND ERRS SECS < <(echo "$GEN" | python3 -c '
import json,sys; g=json.load(sys.stdin); print(g["sent"], g["found"], g["errors"], g["seconds"])')
  log "phase $((phase + 1)): $FOUND of $SENT answered 302 in $SECS s ($(python3 -c "print(round($SENT/$SECS))") req/s); $ERRS connection errors; generator: $GEN"
  EXPECTED=$((EXPECTED + FOUND))
  T0=$(date +%s.%N)
  deadline=$((SECONDS + 300))
  while [ "$(events)" -lt "$EXPECTED" ]; do
    [ $SECONDS -lt $deadline ] || fail "after 300 s the worker has stored $(events) redirect events, expected $EXPECTED"
    sleep 0.5
  done
  INGEST_S=$(python3 -c "print(round($(date +%s.%N) - $T0, 2))")
  STORED=$(events)
  # The counters are updated right after the events are stored: wait for them too (bounded).
  deadline=$((SECONDS + 30))
  while :; do
    read -r T1 U1 X1 < <(realtime "$API1" || echo "0 0 0") || true
    read -r T2 U2 X2 < <(realtime "$API2" || echo "0 0 0") || true
    T1=${T1:-0} U1=${U1:-0} X1=${X1:-0} T2=${T2:-0} U2=${U2:-0} X2=${X2:-0}
    { [ "$T1" -ge "$EXPECTED" ] && [ "$T2" -ge "$EXPECTED" ]; } || [ $SECONDS -ge $deadline ] && break
    sleep 0.5
  done
  DISTINCT=$(timeout 60 psql -At "$PG" -c "SELECT count(DISTINCT visitor_hash) FROM events WHERE url_id = $URL_ID AND event_type = 'redirect'")
  ERR_PCT=$(python3 -c "print(round(($U1 - $VISITORS) * 100 / $VISITORS, 3))")
  log "phase $((phase + 1)): events $STORED (ingested $INGEST_S s after the last answer); realtime api1 total $T1 uniques $U1, api2 total $T2 uniques $U2; exact distinct visitor hashes $DISTINCT; uniques error $ERR_PCT %"
  PHASES+=("{\"phase\":$((phase + 1)),\"generator\":$GEN,\"events_stored\":$STORED,\"ingest_seconds_after_load\":$INGEST_S,
    \"realtime\":{\"api1\":{\"total_clicks\":$T1,\"unique_visitors\":$U1,\"unavailable_shards\":$X1},\"api2\":{\"total_clicks\":$T2,\"unique_visitors\":$U2,\"unavailable_shards\":$X2}},
    \"expected_total_clicks\":$EXPECTED,\"distinct_visitor_hashes\":$DISTINCT,\"unique_visitors_error_pct\":$ERR_PCT}")
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
set +e
python3 - "$OUT/uniques-$STAMP.json" "$MAX_ERR" <<PY
import json,sys
path, max_err = sys.argv[1], float(sys.argv[2])
r={"time":"$STAMP","machine":{"cores":$(nproc)},"visitors":$VISITORS,"api_processes":2,"counter_shards":${#SHARD_PORTS[@]},
   "connections_per_api":$CONNS,"max_error_pct":max_err,"hll_standard_error_pct":0.81,
   "phases":[$(IFS=,; echo "${PHASES[*]}")]}
failures=[]
for p in r["phases"]:
    g, n = p["generator"], p["phase"]
    if g["errors"] or g["other"] or g["found"] != g["sent"]:
        failures.append(f"phase {n}: {g['found']} of {g['sent']} answered 302 (other {g['other']}, errors {g['errors']})")
    for api, rt in p["realtime"].items():
        if rt["total_clicks"] != p["expected_total_clicks"]:
            failures.append(f"phase {n}: {api} total_clicks {rt['total_clicks']}, the generator got {p['expected_total_clicks']} 302s")
        if rt["unavailable_shards"]:
            failures.append(f"phase {n}: {api} reports {rt['unavailable_shards']} unavailable shards")
    if p["realtime"]["api1"]["unique_visitors"] != p["realtime"]["api2"]["unique_visitors"]:
        failures.append(f"phase {n}: the two api disagree on unique_visitors")
    if abs(p["unique_visitors_error_pct"]) > max_err:
        failures.append(f"phase {n}: unique_visitors {p['realtime']['api1']['unique_visitors']} is {p['unique_visitors_error_pct']}% off {r['visitors']} (limit ±{max_err}%)")
    if p["distinct_visitor_hashes"] != r["visitors"]:
        failures.append(f"phase {n}: {p['distinct_visitor_hashes']} distinct visitor hashes stored, expected {r['visitors']}")
r["failures"]=failures
r["pass"]=not failures
json.dump(r,open(path,"w"),indent=2)
print(json.dumps(r,indent=2))
p1, p2 = r["phases"]
print(f"\nuniques of {r['visitors']} visitors through 2 api: phase 1 {p1['realtime']['api1']['unique_visitors']} ({p1['unique_visitors_error_pct']:+.2f}%), "
      f"phase 2 (same visitors, other api) {p2['realtime']['api1']['unique_visitors']} ({p2['unique_visitors_error_pct']:+.2f}%), limit ±{max_err}% | "
      f"total_clicks {p2['realtime']['api1']['total_clicks']} = {p2['expected_total_clicks']} 302s | "
      f"{p1['generator']['seconds']} s + {p2['generator']['seconds']} s of load | {'PASS' if r['pass'] else 'FAIL: ' + '; '.join(failures)}")
sys.exit(0 if r["pass"] else 1)
PY
STATUS=$?
set -e
cp "$OUT/uniques-$STAMP.json" "$OUT/uniques-latest.json"
exit $STATUS
