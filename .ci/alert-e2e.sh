#!/usr/bin/env bash
# CI: an alert proven end to end, and every dashboard panel answered with data.
#   On loopback, on free ports: curtain-api and curtain-worker from target/debug (a fresh
#   PostgreSQL database, a Redis key namespace), a stand-in Discord that records what it is
#   sent, a real Prometheus scraping both binaries with the real alert rules, and a real
#   Alertmanager posting to the api's /alerts/alertmanager. Configs are derived from
#   monitoring/ by .ci/alert_e2e.py `configs` (its comments list each rewrite; in the rules
#   only CurtainHigh5xxRatio's `for:` changes, 5m -> 10s).
#   1. Traffic (a user, links, redirects, 404s, analytics), then one burst of 500s from
#      /debug/fail (the route's first failures): the 5xx ratio passes 1%, CurtainHigh5xxRatio
#      fires, and the stand-in Discord must receive "[FIRING] CurtainHigh5xxRatio" (severity
#      and ratio read from the message) through Prometheus -> Alertmanager -> api -> Redis
#      queue -> worker -> Discord within ALERT_E2E_DEADLINE seconds (default 120). The
#      stand-in answers that message's first attempt 500, so it arrives through a retry.
#   2. Every dashboard panel's query answers with at least one number from that Prometheus,
#      and those the traffic determines lie in their range (.ci/alert_e2e.py EXPECTED_VALUES;
#      EXCUSED_PANELS, empty, would list queries allowed to stay empty).
#   Prints the alert, the seconds from the first 500 to Discord, and the panels answered.
# Needs: target/debug/curtain-api, curtain-worker; PostgreSQL on 127.0.0.1:5432 (user
# postgres); Redis on 127.0.0.1:6379. Installs prometheus and prometheus-alertmanager (Debian)
# if missing.
# ALERT_E2E_WRONG_WEBHOOK=1 (scratch runs only) gives the worker a webhook the stand-in does
# not know (Discord's 404 Unknown Webhook): the alert cannot reach Discord and the script must
# fail.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug}
deadline=${ALERT_E2E_DEADLINE:-120}
started=$(date +%s)

if ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null || ! command -v promtool >/dev/null; then
  pkgs=(prometheus prometheus-alertmanager)
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; }
fi
python3 -c 'import yaml' 2>/dev/null || apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null; }

work=$(mktemp -d)
db=curtain_ci_alert_e2e_$$
ns=ci-alert-e2e-$$
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  redis-cli -p 6379 --scan --pattern "$ns*" | xargs -r redis-cli -p 6379 del >/dev/null || true
  # ALERT_E2E_KEEP=<dir> (scratch runs): keep the configs, logs and Discord record there.
  [ -z "${ALERT_E2E_KEEP:-}" ] || cp -r "$work" "$ALERT_E2E_KEEP" || true
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 143" TERM INT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Polls `curl $1 | grep -q $2` for up to 60 s; on failure shows the log $3.
wait_for() {
  for _ in $(seq 600); do
    curl -fsS "$1" 2>/dev/null | grep -q -- "$2" && return 0
    sleep 0.1
  done
  echo "alert e2e: $1 never showed $2"; tail -40 "$3"; return 1
}

api_port=$(free_port)
worker_port=$(free_port)
discord_port=$(free_port)
prom_port=$(free_port)
am_port=$(free_port)
api=http://127.0.0.1:$api_port
worker=http://127.0.0.1:$worker_port
prom=http://127.0.0.1:$prom_port
am=http://127.0.0.1:$am_port
webhook=/api/webhooks/4242/e2e-token
worker_webhook=$webhook
[ "${ALERT_E2E_WRONG_WEBHOOK:-}" = 1 ] && worker_webhook=/api/webhooks/4242/wrong-token
token=e2e-$$-$RANDOM$RANDOM
printf '%s' "$token" >"$work/webhook_token"

python3 .ci/alert_e2e.py configs "$work/monitoring" --api-port "$api_port" --worker-port "$worker_port" \
  --am-port "$am_port" --token-file "$work/webhook_token"
promtool check config "$work/monitoring/prometheus.yml" >/dev/null
amtool check-config "$work/monitoring/alertmanager.yml" >/dev/null

PGOPTIONS=--client-min-messages=warning psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
common=(PATH="$PATH" DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db REDIS_URL=redis://127.0.0.1:6379/
  CACHE_REDIS_URL=redis://127.0.0.1:6379/ CACHE_PREFIX="$ns" CLICK_QUEUE="$ns:clicks" ALERT_QUEUE="$ns:alerts" COUNTERS_QUEUE="$ns:counters" HEALTH_QUEUE="$ns:health" WEBHOOK_QUEUE="$ns:webhooks"
  WARM_QUEUE="$ns:warm" RUST_LOG=info NO_COLOR=1)

# Its first message naming the alert is answered 500 (a Discord hiccup): the worker must retry.
python3 .ci/alert_e2e.py discord --port "$discord_port" --record "$work/discord.jsonl" --webhook "$webhook" \
  --hiccup "[FIRING] CurtainHigh5xxRatio" \
  >"$work/discord.log" 2>&1 &
pids+=($!)
# The worker first: it migrates the fresh database. It delivers alerts and rolls up every 2 s.
env -i "${common[@]}" CURTAIN_LISTEN=127.0.0.1:$worker_port ROLLUP_EVERY_SECONDS=2 \
  DISCORD_WEBHOOK_URL="http://127.0.0.1:$discord_port$worker_webhook" \
  "$bin/curtain-worker" >"$work/worker.log" 2>&1 &
pids+=($!)
wait_for "$worker/health" '"status":"ok"' "$work/worker.log"
env -i "${common[@]}" CURTAIN_LISTEN=127.0.0.1:$api_port CURTAIN_INSTANCE=127.0.0.1 \
  CLICK_SPOOL_DIR="$work/spool" ENABLE_INCIDENT_DEBUG_ROUTES=true ALERTMANAGER_WEBHOOK_TOKEN="$token" \
  "$bin/curtain-api" >"$work/api.log" 2>&1 &
pids+=($!)
wait_for "$api/health" '"status":"ok"' "$work/api.log"
prometheus --config.file="$work/monitoring/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
  --web.listen-address=127.0.0.1:$prom_port >"$work/prometheus.log" 2>&1 &
pids+=($!)
prometheus-alertmanager --config.file="$work/monitoring/alertmanager.yml" --storage.path="$work/alertmanager" \
  --web.listen-address=127.0.0.1:$am_port --cluster.listen-address= >"$work/alertmanager.log" 2>&1 &
pids+=($!)
wait_for "$prom/-/ready" 'Ready' "$work/prometheus.log"
wait_for "$am/-/ready" 'OK' "$work/alertmanager.log"
# Both jobs scraped, and the rules loaded.
wait_for "$prom/api/v1/query?query=sum(up%7Bjob%3D~%22curtain-api%7Ccurtain-worker%22%7D)" '"value":\[[0-9.]*,"2"]' "$work/prometheus.log"
wait_for "$prom/api/v1/rules" '"name":"CurtainHigh5xxRatio"' "$work/prometheus.log"

# The 500 series of /debug/fail is scraped at 0 before the incident (the api creates it at start).
wait_for "$prom/api/v1/query?query=http_requests_total%7Bpath%3D%22%2Fdebug%2Ffail%22%2Cstatus_code%3D%22500%22%7D" '"value":\[[0-9.]*,"0"]' "$work/prometheus.log"

echo "alert e2e: services up after $(($(date +%s) - started)) s (api :$api_port, worker :$worker_port, Prometheus :$prom_port, Alertmanager :$am_port, Discord stand-in :$discord_port)"
python3 .ci/alert_e2e.py traffic "$api"
# The incident: one burst of 20 requests answered 500 (beside the ~150 of the traffic above, a
# 5xx ratio far above the rule's 1%). The first 500s of /debug/fail: the alert fires only if
# Prometheus sees them as an increase (the api pre-creates every operation's 500 series).
trigger=$(python3 .ci/alert_e2e.py fail "$api" --count 20)
python3 .ci/alert_e2e.py wait-alert "$work/discord.jsonl" CurtainHigh5xxRatio --webhook "$webhook" \
  --since "$trigger" --deadline "$deadline" --prom "$prom" --am "$am" \
  --log "$work/api.log" --log "$work/worker.log" --log "$work/alertmanager.log" --result "$work/alert.seconds" --expect-retry

python3 .ci/alert_e2e.py panels "$prom" --api "$api" --deadline 90 --result "$work/panels.result"

echo "alert e2e: OK: CurtainHigh5xxRatio fired from real 500s and reached Discord $(cat "$work/alert.seconds") s after the first one;" \
  "dashboard queries answered with data: $(cat "$work/panels.result"); $(($(date +%s) - started)) s in all"
