#!/usr/bin/env python3
"""Helpers of .ci/alert-e2e.sh: an alert driven from a real cause to a (stand-in) Discord,
and every dashboard panel answered with data by the same Prometheus.

Subcommands (the shell script starts and stops the processes; this file only talks to them):

  configs OUT --api-port P --worker-port P --am-port P --token-file F
      Writes OUT/prometheus.yml, OUT/alerts.yml and OUT/alertmanager.yml, derived from
      monitoring/ by the rewrites listed in this function's comments (nothing else changes).
  discord --port P --record FILE --webhook PATH [--hiccup TITLE]
      The Discord stand-in: records every request as a JSON line in FILE and answers like
      Discord: POST to PATH with `?wait=true` -> 200 with the stored message, without -> 204;
      any other path -> 404 `Unknown Webhook`; a body Discord would refuse -> 400; the first
      message with an embed titled TITLE -> 500 (a Discord hiccup the worker must retry).
  traffic API              a user, links, redirects, 404s, analytics reads (the panels' series)
  fail API --count N       N requests to /debug/fail (500s) at once; prints the time of the first
  wait-alert FILE NAME --webhook PATH --since T --deadline S --prom URL --am URL --api-log F
      Waits until FILE holds a message Discord accepted at PATH whose embed is `[FIRING] NAME`;
      prints the seconds since T. On timeout prints Prometheus' and Alertmanager's alerts,
      every recorded request and the api log tail, and exits 1.
  panels PROM --deadline S --api API
      Every target `expr` of monitoring/grafana/**/*.json, with Grafana's variables
      substituted, must answer /api/v1/query with at least one sample that is a number
      (not NaN). Retries (with fresh traffic) until all pass or the deadline; then reports.
"""

import argparse
import copy
import http.client
import http.server
import json
import math
import pathlib
import re
import sys
import threading
import time
import urllib.parse
import urllib.request

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
MON = ROOT / "monitoring"

# The alert this test drives, and the one mechanical change made to the rules' copy: its
# `for:` goes from 5m to 10s. Why: holding 5 minutes would add 5 minutes to every CI run and
# prove nothing the 10 s hold does not (Prometheus' pending -> firing is the same code path);
# the expression, its 5m rate windows and its 1% threshold are left exactly as written, so the
# alert fires for the real reason (5xx answers of the running api), not a doctored one.
DRIVEN_ALERT = "CurtainHigh5xxRatio"
FOR_REWRITE = {DRIVEN_ALERT: ("5m", "10s")}

# Panel queries are named `<dashboard file>#<panel id>/<refId>`.
# Those that may answer no data, with the reason. Empty: every query is answered.
EXCUSED_PANELS = {}
# Those whose value the traffic (and the alert) determine: at least one sample must lie in
# [low, high]. The others may be 0 in a healthy run (spooled or lost clicks, shard failures,
# dead jobs, queue depth and age, pool restarts, dead deliveries), or are not determined by
# this run: the links deleted before ingestion race the worker, pruning runs on its own clock.
POSITIVE = (1e-9, math.inf)
EXPECTED_VALUES = {
    "service.json#2/A": POSITIVE,  # requests/s by route
    "service.json#3/A": POSITIVE,  # requests/s by instance
    "service.json#4/A": (1, 1),  # one api and one worker up
    "service.json#5/A": POSITIVE,  # redirects/s
    "service.json#6/A": POSITIVE,  # clicks enqueued/s
    "service.json#8/A": POSITIVE,  # redirect latency p50
    "service.json#8/B": POSITIVE,  # redirect latency p99
    "service.json#9/A": POSITIVE,  # p99 by route
    "service.json#11/A": (1e-9, 1),  # 5xx ratio: the drill's 500s
    "service.json#12/A": POSITIVE,  # 404s and 500s
    "service.json#14/A": (1e-9, 1),  # cache hit ratio
    "service.json#15/A": POSITIVE,  # cache lookups/s
    # CPU of both processes (each did work in the window): above 0 since the CPU seconds are
    # counted in fractions (storage/src/process.rs; whole seconds showed 0 here).
    "service.json#20/A": POSITIVE,
    "service.json#21/A": (1e6, 1e10),  # resident memory, bytes
    "workers.json#5/A": (1, math.inf),  # workers alive
    "workers.json#6/A": (1, 1),  # worker processes up
    "workers.json#9/A": POSITIVE,  # jobs processed/s
    "workers.json#9/B": POSITIVE,  # jobs failed/s: the stand-in's 500 to the alert
    "workers.json#9/C": POSITIVE,  # jobs retried/s: the same delivery, retried
    "workers.json#10/A": POSITIVE,  # clicks ingested/s
    "workers.json#11/A": POSITIVE,  # jobs/s by worker process
    "workers.json#14/A": POSITIVE,  # job duration p50
    "workers.json#14/B": POSITIVE,  # job duration p99
    "workers.json#15/A": POSITIVE,  # ingestion lag p50
    "workers.json#15/B": POSITIVE,  # ingestion lag p99
    "workers.json#17/A": POSITIVE,  # Discord deliveries/s: the alert
    "workers.json#17/B": POSITIVE,  # Discord failures/s: the stand-in's 500
    "workers.json#18/A": (0, 30),  # seconds since the last rollup (the worker rolls up every 2 s)
    "workers.json#20/A": POSITIVE,  # worker CPU
    "workers.json#21/A": (1e6, 1e10),  # worker resident memory, bytes
}
# Of those, the ones where every series (not just one) must be in range: one per process.
EVERY_SERIES = {"service.json#4/A", "service.json#20/A", "service.json#21/A"}

# What Grafana would put for its built-in variables at a 1 h range (the test's range is a few
# minutes; 1m keeps >= 2 samples at the 1-2 s scrape interval in every rate window).
GRAFANA_VARS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
}


# --- configs -------------------------------------------------------------------------------


def cmd_configs(a):
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    # alerts.yml: a copy with FOR_REWRITE applied; every other rule byte-for-byte the same
    # after parsing (checked below).
    rules = yaml.safe_load((MON / "alerts.yml").read_text())
    original = copy.deepcopy(rules)
    seen = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert")
            if name in FOR_REWRITE:
                old, new = FOR_REWRITE[name]
                if rule.get("for") != old:
                    sys.exit(f"alert e2e: {name} has for: {rule.get('for')!r}, expected {old!r}: update FOR_REWRITE")
                rule["for"] = new
                seen.add(name)
    if seen != set(FOR_REWRITE):
        sys.exit(f"alert e2e: alerts.yml lacks {sorted(set(FOR_REWRITE) - seen)}")
    changed = [
        r.get("alert")
        for g, og in zip(rules["groups"], original["groups"])
        for r, o in zip(g["rules"], og["rules"])
        if r != o
    ]
    assert changed == list(FOR_REWRITE), changed
    (out / "alerts.yml").write_text(yaml.safe_dump(rules, sort_keys=False))

    # prometheus.yml: the same jobs, metrics paths, honor_labels and relabeling; rewritten:
    # scrape/evaluation interval (1 s), the rule file (the copy above), the Alertmanager
    # target and every job's targets (the loopback ports of this run).
    prom = yaml.safe_load((MON / "prometheus.yml").read_text())
    prom["global"]["scrape_interval"] = "1s"
    prom["global"]["evaluation_interval"] = "1s"
    prom["rule_files"] = [str(out / "alerts.yml")]
    prom["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{a.am_port}"]}]}]}
    ports = {"curtain-api": a.api_port, "curtain-worker": a.worker_port}
    jobs = [sc["job_name"] for sc in prom["scrape_configs"]]
    if sorted(jobs) != sorted(ports):
        sys.exit(f"alert e2e: prometheus.yml jobs {jobs}, this script knows {sorted(ports)}")
    for sc in prom["scrape_configs"]:
        sc["static_configs"] = [{"targets": [f"127.0.0.1:{ports[sc['job_name']]}"]}]
    (out / "prometheus.yml").write_text(yaml.safe_dump(prom, sort_keys=False))

    # alertmanager.yml: the same route, grouping and inhibitions; rewritten: the webhook URL
    # (this run's api), the token file, and the group timers (1 s instead of 30 s / 5 m, so
    # the first notification leaves at once).
    am = yaml.safe_load((MON / "alertmanager.yml").read_text())
    receivers = am["receivers"]
    hooks = [w for r in receivers for w in r.get("webhook_configs", [])]
    if len(hooks) != 1 or am["route"]["receiver"] != receivers[0]["name"]:
        sys.exit("alert e2e: alertmanager.yml: expected one receiver with one webhook")
    hook = hooks[0]
    if urllib.parse.urlsplit(hook["url"]).path != "/alerts/alertmanager":
        sys.exit(f"alert e2e: the webhook goes to {hook['url']}, not Curtain's /alerts/alertmanager")
    hook["url"] = f"http://127.0.0.1:{a.api_port}/alerts/alertmanager"
    hook["http_config"]["authorization"]["credentials_file"] = a.token_file
    am["route"]["group_wait"] = "1s"
    am["route"]["group_interval"] = "2s"
    (out / "alertmanager.yml").write_text(yaml.safe_dump(am, sort_keys=False))
    print(f"alert e2e: configs in {out}; {DRIVEN_ALERT} for: {FOR_REWRITE[DRIVEN_ALERT][0]} -> {FOR_REWRITE[DRIVEN_ALERT][1]}")


# --- the Discord stand-in ------------------------------------------------------------------


def titles(body):
    return [e.get("title") for e in (body or {}).get("embeds") or [] if isinstance(e, dict)]


def discord_violation(body):
    """What Discord's 400 would name, or None (the limits alerts/src/discord.rs cuts to)."""
    if not isinstance(body, dict):
        return "body is not an object"
    embeds = body.get("embeds") or []
    if len(body.get("content") or "") > 2000:
        return "content > 2000"
    if not body.get("content") and not embeds:
        return "empty message"
    if len(embeds) > 10:
        return "more than 10 embeds"
    total = len(body.get("content") or "")
    for e in embeds:
        fields = e.get("fields") or []
        if len(e.get("title") or "") > 256 or len(e.get("description") or "") > 4096 or len(fields) > 25:
            return "embed over its limits"
        for f in fields:
            if len(f.get("name") or "") > 256 or len(f.get("value") or "") > 1024:
                return "field over its limits"
            total += len(f.get("name") or "") + len(f.get("value") or "")
        total += len(e.get("title") or "") + len(e.get("description") or "")
    return "more than 6000 characters" if total > 6000 else None


def cmd_discord(a):
    lock = threading.Lock()
    counter = [0]
    hiccups = [a.hiccup]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, body=None):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return status

        def do_POST(self):
            url = urllib.parse.urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            wait = urllib.parse.parse_qs(url.query).get("wait") == ["true"]
            if url.path != a.webhook:
                status = self.answer(404, {"message": "Unknown Webhook", "code": 10015})
            elif body is None or not self.headers.get("content-type", "").startswith("application/json"):
                status = self.answer(400, {"message": "Cannot send an empty message", "code": 50006})
            elif discord_violation(body):
                status = self.answer(400, {"message": "Invalid Form Body", "code": 50035, "errors": discord_violation(body)})
            else:
                with lock:
                    hiccup = hiccups[0] is not None and hiccups[0] in titles(body)
                    if hiccup:
                        hiccups[0] = None
                    counter[0] += 1
                    mid = str(counter[0])
                if hiccup:
                    status = self.answer(500, {"message": "500: Internal Server Error", "code": 0})
                elif wait:
                    status = self.answer(200, dict(body, id=mid, channel_id="1", type=0))
                else:
                    status = self.answer(204)
            with lock, open(a.record, "a") as f:
                f.write(json.dumps({"at": time.time(), "path": url.path, "query": url.query, "status": status, "body": body}) + "\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.serve_forever()


# --- traffic -------------------------------------------------------------------------------


class Api:
    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port

    def call(self, method, path, body=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return resp.status, parsed


def expect(status, got, what):
    if got[0] != status:
        sys.exit(f"alert e2e: {what}: expected {status}, got {got[0]} {got[1]}")
    return got[1]


STATE = {}


def traffic(base, rounds=3):
    """Each series the panels read, from requests a user would make."""
    api = Api(base)
    if "links" not in STATE:
        stamp = int(time.time() * 1000)
        user = expect(201, api.call("POST", "/users", {"username": f"e2e{stamp}", "email": f"e2e{stamp}@example.com"}), "POST /users")
        links = [
            expect(201, api.call("POST", "/urls", {"original_url": f"https://example.com/e2e/{stamp}/{i}", "user_id": user["id"], "title": f"e2e {i}"}), "POST /urls")
            for i in range(4)
        ]
        STATE.update(user=user, links=links)
    for _ in range(rounds):
        for link in STATE["links"]:
            for _ in range(5):
                expect(302, api.call("GET", f"/r/{link['short_code']}"), "redirect")
            expect(200, api.call("GET", f"/urls/{link['id']}"), "GET /urls/<id>")
            expect(200, api.call("GET", f"/urls/{link['id']}/analytics"), "analytics")
        expect(302, api.call("GET", f"/urls/short/{STATE['links'][0]['short_code']}"), "redirect alias")
        expect(200, api.call("GET", "/urls?per_page=5"), "GET /urls")
        expect(200, api.call("GET", f"/users/{STATE['user']['id']}"), "GET /users/<id>")
        expect(404, api.call("GET", "/r/zzzzzz"), "unknown code")
        expect(404, api.call("GET", "/users/999999999"), "unknown user")
    # A link deleted after its clicks were answered and before the worker ingests them: the
    # worker drops them (the dropped-clicks panel), as in production.
    doomed = expect(201, api.call("POST", "/urls", {"original_url": f"https://example.com/e2e/doomed/{time.time_ns()}"}), "POST /urls")
    for _ in range(3):
        expect(302, api.call("GET", f"/r/{doomed['short_code']}"), "redirect")
    expect(204, api.call("DELETE", f"/urls/{doomed['id']}"), "DELETE /urls/<id>")


def cmd_traffic(a):
    traffic(a.api)
    print(f"alert e2e: traffic sent to {a.api}")


def cmd_fail(a):
    """The incident: one burst of a.count requests to /debug/fail (500s); prints the time of
    the first. One burst, not a sustained failure: the api creates every operation's 500
    series at 0 (api/src/metrics.rs create_failure_series), so even a route's first 500s must
    show in rate(); without that, this burst would be the series' first sample and the alert
    would never fire."""
    api = Api(a.api)
    first = time.time()
    for _ in range(a.count):
        expect(500, api.call("GET", "/debug/fail"), "/debug/fail")
    print(f"{first:.3f}")


# --- waiting for Discord -------------------------------------------------------------------


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def records(path):
    p = pathlib.Path(path)
    if not p.exists():
        return []
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]


def found(a, record, embed):
    """The message names the alert as firing; check what it says, as values."""
    labels = {f["name"]: f["value"] for f in embed.get("fields", [])}
    problems = []
    rules = yaml.safe_load((MON / "alerts.yml").read_text())
    severity = next(r["labels"]["severity"] for g in rules["groups"] for r in g["rules"] if r.get("alert") == a.name)
    if labels.get("severity") != severity:
        problems.append(f"severity {labels.get('severity')!r}, alerts.yml says {severity!r}")
    m = re.match(r"\*\*([0-9.]+)% of API requests fail with 5xx\*\*", embed.get("description", ""))
    if a.name == DRIVEN_ALERT and not (m and float(m.group(1)) > 1):
        problems.append(f"the summary does not give a 5xx ratio above 1%: {embed.get('description')!r}")
    earlier = [
        r for r in records(a.record) if r["at"] < record["at"] and r["path"] == a.webhook and embed["title"] in titles(r["body"])
    ]
    tried = ", ".join(str(r["status"]) for r in earlier + [record])
    seconds = record["at"] - a.since
    print(f"alert e2e: Discord got {embed['title']!r} {seconds:.1f} s after the trigger (answers to the worker: {tried}); {labels}")
    print(f"alert e2e: {embed.get('description', '').splitlines()[0]}")
    if a.expect_retry and not any(r["status"] == 500 for r in earlier):
        problems.append("the stand-in's 500 was not followed by a retry that delivered")
    for p in problems:
        print(f"alert e2e: {p}")
    if a.result:
        pathlib.Path(a.result).write_text(f"{seconds:.1f}")
    return 1 if problems else 0


def cmd_wait_alert(a):
    title = f"[FIRING] {a.name}"
    deadline = time.time() + a.deadline
    while time.time() < deadline:
        for r in records(a.record):
            if r["path"] != a.webhook or not 200 <= r["status"] < 300:
                continue
            for e in (r["body"] or {}).get("embeds", []):
                if e.get("title") == title and e.get("color") == 0xE01E5A:
                    return found(a, r, e)
        time.sleep(0.5)
    print(f"alert e2e: no Discord message {title!r} at {a.webhook} within {a.deadline} s")
    for what, url in [("Prometheus alerts", f"{a.prom}/api/v1/alerts"), ("Alertmanager alerts", f"{a.am}/api/v2/alerts")]:
        try:
            print(f"--- {what}:\n{json.dumps(get_json(url), indent=1)[:6000]}")
        except Exception as e:  # diagnostics only: report and go on
            print(f"--- {what}: {e}")
    print(f"--- stand-in Discord requests ({len(records(a.record))}):")
    for r in records(a.record):
        print(f"  {r['path']}?{r['query']} -> {r['status']}: {titles(r['body'])}")
    for log in a.log:
        lines = pathlib.Path(log).read_text(errors="replace").splitlines() if pathlib.Path(log).exists() else []
        # The drill's own 500s are logged once each: they would fill the tail.
        lines = [l for l in lines if "deliberate failure from /debug/fail" not in l]
        print(f"--- {log} (last 40 lines but the drill's 500s):")
        print("\n".join(lines[-40:]))
    return 1


# --- dashboard panels ----------------------------------------------------------------------


def panel_targets():
    for path in sorted((MON / "grafana").rglob("*.json")):
        board = json.loads(path.read_text())
        if "panels" not in board:
            continue

        def walk(panels):
            for p in panels:
                yield p
                yield from walk(p.get("panels") or [])

        variables = [v for v in board.get("templating", {}).get("list", [])]
        for p in walk(board["panels"]):
            for t in p.get("targets") or []:
                if t.get("expr"):
                    yield path.relative_to(ROOT), p, t, variables


def substitute(expr, variables, prom):
    for name, value in GRAFANA_VARS.items():
        expr = expr.replace(name, value)
    for var in variables:
        query = var.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*", query or "")
        if not m:
            sys.exit(f"alert e2e: variable {var.get('name')}: only label_values(<metric>, <label>) is supported")
        values = get_json(f"{prom}/api/v1/label/{m.group(2)}/values?" + urllib.parse.urlencode({"match[]": m.group(1)}))["data"]
        if not values:
            return None, f"variable ${var['name']} has no values"
        # "All" of a multi-value variable: Grafana's regex of every value.
        regex = "(" + "|".join(re.escape(v) for v in values) + ")"
        expr = re.sub(r"\$\{?" + re.escape(var["name"]) + r"\b\}?", lambda _: regex.replace("\\", "\\\\"), expr)
    if "$" in expr:
        return None, f"unsubstituted variable in {expr}"
    return expr, None


def check_panels(prom):
    """[(name, title, expr, problem or "", [(labels, number)])] for every panel query."""
    results = []
    for board, panel, target, variables in panel_targets():
        name = f"{board.name}#{panel['id']}/{target.get('refId')}"
        expr, err = substitute(target["expr"], variables, prom)
        if err:
            results.append((name, panel["title"], target["expr"], err, []))
            continue
        answer = get_json(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        series = answer["data"]["result"] if answer["data"]["resultType"] == "vector" else []
        numbers = [(s["metric"], float(s["value"][1])) for s in series if not math.isnan(float(s["value"][1]))]
        if not numbers:
            problem = "no series" if not series else "only NaN"
        elif name in EXPECTED_VALUES:
            low, high = EXPECTED_VALUES[name]
            every = name in EVERY_SERIES
            in_range = (all if every else any)(low <= n <= high for _, n in numbers)
            problem = "" if in_range else f"{'not every' if every else 'no'} value in [{low:g}, {high:g}]"
        else:
            problem = ""
        results.append((name, panel["title"], expr, problem, numbers))
    return results


def cmd_panels(a):
    unknown = set(EXCUSED_PANELS) | set(EXPECTED_VALUES) | EVERY_SERIES
    deadline = time.time() + a.deadline
    while True:
        traffic(a.api, rounds=1)
        Api(a.api).call("GET", "/debug/fail")  # the 5xx ratio stays above 0 however long this takes
        time.sleep(3)  # a few scrapes of what the traffic changed
        results = check_panels(a.prom)
        failing = [r for r in results if r[3] and r[0] not in EXCUSED_PANELS]
        if not failing or time.time() > deadline:
            break
    for name, title, expr, problem, numbers in results:
        unknown.discard(name)
        mark = "ok  " if not problem else ("EXCUSED" if name in EXCUSED_PANELS else "FAIL")
        shown = ", ".join(
            ("{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "} " if labels else "") + f"{n:.4g}"
            for labels, n in numbers[:4]
        ) + (f" (+{len(numbers) - 4})" if len(numbers) > 4 else "")
        print(f"  {mark} {name} {title!r}: {shown}{' -- ' + problem if problem else ''}")
        if problem and name not in EXCUSED_PANELS:
            print(f"      query: {expr}")
    for name in sorted(unknown):
        print(f"alert e2e: {name} is listed in this script but is no panel query any more: update the lists")
    answered = sum(1 for r in results if r[4])
    checked = sum(1 for r in results if r[0] in EXPECTED_VALUES and not r[3])
    print(
        f"alert e2e: {answered}/{len(results)} panel queries answered with data; "
        f"{checked}/{len(EXPECTED_VALUES)} values in their expected range; {len(failing)} failing"
    )
    if a.result:
        pathlib.Path(a.result).write_text(f"{answered}/{len(results)} (values checked: {checked}/{len(EXPECTED_VALUES)})")
    return 1 if failing or unknown else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("configs")
    c.add_argument("out")
    for name in ("--api-port", "--worker-port", "--am-port"):
        c.add_argument(name, type=int, required=True)
    c.add_argument("--token-file", required=True)
    d = sub.add_parser("discord")
    d.add_argument("--port", type=int, required=True)
    d.add_argument("--record", required=True)
    d.add_argument("--webhook", required=True)
    d.add_argument("--hiccup")
    t = sub.add_parser("traffic")
    t.add_argument("api")
    f = sub.add_parser("fail")
    f.add_argument("api")
    f.add_argument("--count", type=int, required=True)
    w = sub.add_parser("wait-alert")
    w.add_argument("record")
    w.add_argument("name")
    w.add_argument("--webhook", required=True)
    w.add_argument("--since", type=float, required=True)
    w.add_argument("--deadline", type=float, required=True)
    w.add_argument("--prom", required=True)
    w.add_argument("--am", required=True)
    w.add_argument("--log", action="append", default=[])
    w.add_argument("--result")
    w.add_argument("--expect-retry", action="store_true")
    q = sub.add_parser("panels")
    q.add_argument("prom")
    q.add_argument("--api", required=True)
    q.add_argument("--deadline", type=float, required=True)
    q.add_argument("--result")
    a = p.parse_args()
    return {
        "configs": cmd_configs,
        "discord": cmd_discord,
        "traffic": cmd_traffic,
        "fail": cmd_fail,
        "wait-alert": cmd_wait_alert,
        "panels": cmd_panels,
    }[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
