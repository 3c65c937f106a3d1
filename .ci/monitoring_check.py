#!/usr/bin/env python3
"""Checks monitoring/ against what curtain-api and curtain-worker really export.

Usage: monitoring_check.py API_METRICS WORKER_METRICS   (two scraped /metrics texts)

1. Label rules of the expositions: no family carries `job`; only the contract's two HTTP
   families carry `instance` (the worker: none); every curtain_queue_* family has `queue`.
2. The Grafana dashboards: valid JSON, the structure Grafana needs, unique uids and panel
   ids, panels inside the 24-column grid, every panel on the provisioned Prometheus uid.
3. Every PromQL expression in monitoring/alerts.yml and the dashboards (panel targets and
   `label_values(..)` variables) names only metrics the binaries export (or Prometheus'
   own `up`/`ALERTS`), with only label names those metrics have (plus `instance`, `job`,
   and `le` on histogram buckets). monitoring/pending-metrics.txt lists names of other
   branches: accepted while unexported, an error once exported or no longer used.
Exits non-zero with one line per problem.
"""

import json
import os
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
# CURTAIN_MONITORING_DIR: a copy to check instead (the CI script proves with a doctored copy
# that an unknown metric fails the check).
MON = pathlib.Path(os.environ.get("CURTAIN_MONITORING_DIR", ROOT / "monitoring"))
CONTRACT_INSTANCE_FAMILIES = {"http_requests_total", "http_request_duration_seconds"}
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "ALERTS_FOR_STATE"}
TARGET_LABELS = {"instance", "job"}
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "start", "end",
}
problems = []


def problem(msg):
    problems.append(msg)


# --- expositions -------------------------------------------------------------------------

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')


def parse_exposition(text):
    """{family: {"type": t, "labels": set, "samples": set of sample names}}"""
    types, families = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            types[name] = kind
            families[name] = {"type": kind, "labels": set(), "samples": set()}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m:
            continue
        sample, labels = m.group(1), LABEL.findall(m.group(2) or "")
        family = sample
        if sample not in families:
            for suffix in ("_bucket", "_sum", "_count"):
                base = sample[: -len(suffix)]
                if sample.endswith(suffix) and types.get(base) in ("histogram", "summary"):
                    family = base
        if family not in families:
            problem(f"sample {sample} has no # TYPE line")
            continue
        families[family]["samples"].add(sample)
        families[family]["labels"].update(l for l in labels if l != "le")
    return families


def check_label_rules(binary, families):
    for name, fam in sorted(families.items()):
        labels = fam["labels"]
        if "job" in labels:
            problem(f"{binary}: {name} carries a `job` label (Prometheus sets it per target)")
        if "instance" in labels and not (binary == "curtain-api" and name in CONTRACT_INSTANCE_FAMILIES):
            problem(f"{binary}: {name} carries an `instance` label (Prometheus sets it per target)")
        if name.startswith("curtain_queue_") and "queue" not in labels:
            problem(f"{binary}: {name} has no `queue` label")
    if binary == "curtain-api":
        for name in CONTRACT_INSTANCE_FAMILIES:
            want = {"method", "path", "status_code", "instance"}
            got = families.get(name, {}).get("labels", set())
            if not want <= got:
                problem(f"curtain-api: {name} lacks the contract's labels {sorted(want - got)}")


# --- PromQL names --------------------------------------------------------------------------

STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
TOKEN = re.compile(
    r"(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-zA-Z]*)"
    r"|(?P<var>\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?)"
    r"|(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"|(?P<brace>\{[^}]*\})"
    r"|(?P<range>\[[^\]]*\])"
    r"|(?P<other>.)",
    re.S,
)
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def promql_refs(expr):
    """[(metric name, set of label names used with it)] and the grouping label names."""
    expr = STRING.sub('""', expr)
    grouping = set()
    for m in GROUPING.finditer(expr):
        grouping.update(l.strip() for l in m.group(2).split(",") if l.strip())
    expr = GROUPING.sub(" ", expr)
    tokens = [(m.lastgroup, m.group()) for m in TOKEN.finditer(expr)]
    refs = []
    for i, (kind, text) in enumerate(tokens):
        if kind == "brace" and (i == 0 or tokens[i - 1][0] != "ident"):
            refs.append((None, set(MATCHER.findall(text))))  # {__name__=..} style: unsupported
        if kind != "ident" or text in KEYWORDS:
            continue
        rest = [t for t in tokens[i + 1 :] if not (t[0] == "other" and t[1].isspace())]
        if rest and rest[0] == ("other", "("):
            continue  # a function or aggregation
        labels = set(MATCHER.findall(rest[0][1])) if rest and rest[0][0] == "brace" else set()
        refs.append((text, labels))
    return refs, grouping


def self_test():
    refs, grouping = promql_refs(
        'histogram_quantile(0.99, sum by (le, path) (rate(http_request_duration_seconds_bucket'
        '{path="/r/<short_code>", status_code=~"5.."}[$__rate_interval]))) > 0.05 '
        'and on() absent(up{job="x"} == 1) or time() - max(foo_seconds offset 5m) > 1e3'
    )
    names = [n for n, _ in refs]
    assert names == ["http_request_duration_seconds_bucket", "up", "foo_seconds"], names
    assert refs[0][1] == {"path", "status_code"}, refs
    assert grouping == {"le", "path"}, grouping
    assert promql_refs('sum(rate(a_total{q=~"$queue"}[5m])) / sum(b)')[0] == [
        ("a_total", {"q"}),
        ("b", set()),
    ]


def family_of(name, families):
    if name in families:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and families.get(base, {}).get("type") in ("histogram", "summary"):
            return base
    return None


def check_expr(where, expr, families, pending, used_pending):
    refs, grouping = promql_refs(expr)
    if not refs:
        problem(f"{where}: no metric found in {expr!r}")
    known_labels = set(TARGET_LABELS)
    for name, labels in refs:
        if name is None:
            problem(f"{where}: selector without a metric name in {expr!r}")
            continue
        if name in PROMETHEUS_OWN:
            continue
        family = family_of(name, families)
        if family is None:
            if name in pending:
                used_pending.add(name)
                known_labels = None  # labels of a metric not exported yet cannot be checked
                continue
            problem(f"{where}: {name} is exported by neither curtain-api nor curtain-worker")
            continue
        allowed = families[family]["labels"] | TARGET_LABELS
        if name.endswith("_bucket"):
            allowed = allowed | {"le"}
        for label in sorted(labels - allowed):
            problem(f"{where}: {name} has no label {label!r}")
        if known_labels is not None:
            known_labels |= allowed
    if known_labels is not None:
        for label in sorted(grouping - known_labels):
            problem(f"{where}: grouping by {label!r}, which no metric of the expression has")


# --- dashboards ----------------------------------------------------------------------------


def datasource_uids():
    uids = set()
    for path in sorted((MON / "grafana/provisioning/datasources").glob("*.yml")):
        for ds in yaml.safe_load(path.read_text()).get("datasources", []):
            uids.add(ds.get("uid"))
    return uids


def dashboard_exprs():
    """Checks each dashboard's structure; yields (where, expr)."""
    ds_uids, board_uids = datasource_uids(), set()
    boards = sorted((MON / "grafana/dashboards").glob("*.json"))
    if len(boards) < 2:
        problem("monitoring/grafana/dashboards: expected the service and workers dashboards")
    for path in boards:
        rel = path.relative_to(MON.parent)
        try:
            board = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            problem(f"{rel}: invalid JSON: {e}")
            continue
        for key, kind in [("uid", str), ("title", str), ("schemaVersion", int), ("panels", list)]:
            if not isinstance(board.get(key), kind):
                problem(f"{rel}: `{key}` missing or not a {kind.__name__}")
        if board.get("uid") in board_uids:
            problem(f"{rel}: uid {board.get('uid')!r} used twice")
        board_uids.add(board.get("uid"))
        ids = set()
        for panel in board.get("panels", []):
            pid, title = panel.get("id"), panel.get("title")
            where = f"{rel} panel {pid} {title!r}"
            if not isinstance(pid, int) or pid in ids:
                problem(f"{where}: id missing or not unique")
            ids.add(pid)
            if not title or not panel.get("type"):
                problem(f"{where}: needs a title and a type")
            grid = panel.get("gridPos", {})
            if not all(isinstance(grid.get(k), int) for k in "hwxy") or grid["x"] + grid["w"] > 24:
                problem(f"{where}: gridPos must hold integers h, w, x, y inside 24 columns")
            if panel.get("type") == "row":
                continue
            if panel.get("datasource", {}).get("uid") not in ds_uids:
                problem(f"{where}: datasource uid is not a provisioned one {sorted(ds_uids)}")
            targets = panel.get("targets") or []
            if not targets:
                problem(f"{where}: no targets")
            for t in targets:
                if not t.get("expr") or not t.get("refId"):
                    problem(f"{where}: a target needs refId and expr")
                else:
                    yield where, t["expr"]
        for var in board.get("templating", {}).get("list", []):
            query = var.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            if var.get("type") == "query":
                m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_]\w*)\s*\)\s*", query or "")
                if not m:
                    problem(f"{rel} variable {var.get('name')}: expected label_values(<metric>, <label>)")
                    continue
                yield f"{rel} variable {var.get('name')}", f"{m.group(1)}{{{m.group(2)}!=\"\"}}"


def rule_exprs():
    rules = yaml.safe_load((MON / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            if rule.get("alert"):
                if "for" not in rule:
                    problem(f"alerts.yml {name}: needs a `for:` duration (0m to fire at once)")
                annotations = rule.get("annotations", {})
                if not annotations.get("summary") or not annotations.get("description"):
                    problem(f"alerts.yml {name}: needs summary and description annotations")
                if rule.get("labels", {}).get("severity") not in ("page", "warn"):
                    problem(f"alerts.yml {name}: severity must be page or warn")
            yield f"monitoring/alerts.yml {name}", rule["expr"]


def main():
    self_test()
    api = parse_exposition(pathlib.Path(sys.argv[1]).read_text())
    worker = parse_exposition(pathlib.Path(sys.argv[2]).read_text())
    check_label_rules("curtain-api", api)
    check_label_rules("curtain-worker", worker)
    families = {}
    for fams in (api, worker):
        for name, fam in fams.items():
            merged = families.setdefault(name, {"type": fam["type"], "labels": set(), "samples": set()})
            merged["labels"] |= fam["labels"]
            merged["samples"] |= fam["samples"]
    pending = {
        l.strip()
        for l in (MON / "pending-metrics.txt").read_text().splitlines()
        if l.strip() and not l.startswith("#")
    }
    used_pending, checked = set(), 0
    for where, expr in list(rule_exprs()) + list(dashboard_exprs()):
        check_expr(where, expr, families, pending, used_pending)
        checked += 1
    for name in sorted(pending):
        if family_of(name, families):
            problem(f"pending-metrics.txt: {name} is exported now: delete its line")
        elif name not in used_pending:
            problem(f"pending-metrics.txt: {name} is used by no rule or panel: delete its line")
    for p in problems:
        print(f"monitoring check: {p}")
    print(
        f"monitoring check: {checked} expressions, {len(api)} api and {len(worker)} worker "
        f"families, {len(used_pending)} pending names, {len(problems)} problems"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
