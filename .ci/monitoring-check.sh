#!/usr/bin/env bash
# CI: monitoring/ is valid and names only what Curtain exports.
#   promtool check config / check rules / test rules, amtool check-config, then the real
#   curtain-api (embedded SQLite) and curtain-worker (PostgreSQL + Redis on loopback) from
#   target/debug are started and scraped, and .ci/monitoring_check.py checks the dashboards and
#   every PromQL expression against those expositions (see its docstring). Finally a doctored
#   copy of monitoring/ naming an unknown metric must fail that check.
# Needs: target/debug/curtain-api and curtain-worker (cargo test --workspace builds them),
# PostgreSQL on 127.0.0.1:5432 (user postgres) and Redis on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null; then
  pkgs=(prometheus prometheus-alertmanager)
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; }
fi
python3 -c 'import yaml' 2>/dev/null || apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null; }

promtool check config monitoring/prometheus.yml
promtool check rules monitoring/alerts.yml
promtool test rules monitoring/alerts.test.yml
amtool check-config monitoring/alertmanager.yml

work=$(mktemp -d)
db=curtain_ci_monitoring_$$
ns=ci-monitoring-$$
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  redis-cli -p 6379 --scan --pattern "$ns*" | xargs -r redis-cli -p 6379 del >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Polls `curl $1 | grep -q $2` for up to 30 s.
wait_for() {
  for _ in $(seq 300); do
    curl -fsS "$1" 2>/dev/null | grep -q -- "$2" && return 0
    sleep 0.1
  done
  echo "monitoring check: $1 never showed $2"; return 1
}

api_port=$(free_port)
worker_port=$(free_port)
api=http://127.0.0.1:$api_port
worker=http://127.0.0.1:$worker_port
PGOPTIONS=--client-min-messages=warning psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
env -i PATH="$PATH" CURTAIN_LISTEN=127.0.0.1:$api_port DATABASE_URL="sqlite://$work/curtain.db?mode=rwc" \
  CLICK_SPOOL_DIR="$work/spool" RUST_LOG=warn target/debug/curtain-api >"$work/api.log" 2>&1 &
pids+=($!)
env -i PATH="$PATH" CURTAIN_LISTEN=127.0.0.1:$worker_port DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db \
  REDIS_URL=redis://127.0.0.1:6379/ CLICK_QUEUE="$ns:clicks" COUNTERS_QUEUE="$ns:counters" HEALTH_QUEUE="$ns:health" WEBHOOK_QUEUE="$ns:webhooks" CACHE_PREFIX="$ns" RUST_LOG=warn \
  target/debug/curtain-worker >"$work/worker.log" 2>&1 &
pids+=($!)

wait_for "$api/health" '"status":"ok"' || { cat "$work/api.log"; exit 1; }
# Some traffic, so the per-route series exist besides the pre-created redirect ones.
code=$(curl -fsS -X POST "$api/urls" -H 'content-type: application/json' \
  -d '{"original_url":"https://example.com/monitoring"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["short_code"])')
curl -sS -o /dev/null "$api/r/$code"
curl -sS -o /dev/null "$api/users/424242"
curl -fsS "$api/metrics" >"$work/api.metrics"
# The queue gauges are written by the worker's first upkeep tick.
wait_for "$worker/metrics" "curtain_queue_workers_alive{queue=\"$ns:clicks\"} [1-9]" || { cat "$work/worker.log"; exit 1; }
curl -fsS "$worker/metrics" >"$work/worker.metrics"

python3 .ci/monitoring_check.py "$work/api.metrics" "$work/worker.metrics"

# The check can fail: a rule naming a metric nobody exports is reported.
cp -r monitoring "$work/doctored"
sed -i '0,/curtain_queue_workers_alive/s//curtain_queue_workers_alive_typo/' "$work/doctored/alerts.yml"
if out=$(CURTAIN_MONITORING_DIR="$work/doctored" python3 .ci/monitoring_check.py "$work/api.metrics" "$work/worker.metrics"); then
  echo "monitoring check: a rule naming curtain_queue_workers_alive_typo passed the check"; exit 1
fi
grep -q "curtain_queue_workers_alive_typo is exported by neither" <<<"$out" \
  || { echo "monitoring check: unexpected report for the doctored copy: $out"; exit 1; }
echo "monitoring check: OK"
