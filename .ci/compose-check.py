#!/usr/bin/env python3
"""Checks that docker-compose.yml would start as written (no Docker engine needed).

Usage: compose-check.py [TARGET_DIR]   (default target/debug: the built curtain-api/-worker)

- Every environment variable compose sets on a Curtain service exists in the configuration of
  the binary it runs (read from `<binary> --help`, clap's `[env: NAME=]`), plus RUST_LOG
  (tracing's EnvFilter) and the names of .ci/pending-env.txt (other branches').
- Every `${VAR}` compose interpolates is documented in .env.example and has a default.
- Ports: each Curtain service listens (CURTAIN_LISTEN) where its health check, the Prometheus
  scrape target and (api) the load balancer's upstream expect it; CURTAIN_INSTANCE is the
  service name; Prometheus scrapes exactly the api and worker services; the Alertmanager,
  webhook, Grafana datasource and TRUSTED_PROXY addresses name real services and ports.
- Every file or directory compose bind-mounts exists; PostgreSQL, the shards, Prometheus and
  Grafana keep their data in declared named volumes; Grafana's provisioning points at the
  mounted dashboards; the Dockerfile runs as a non-root user with a HEALTHCHECK and copies
  every binary compose runs; .dockerignore keeps target/ out of the build context.
"""

import pathlib
import re
import subprocess
import sys
from urllib.parse import urlsplit

try:
    import yaml
except ImportError:  # CI image without PyYAML: Debian's package, as the other CI tools
    apt = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "python3-yaml"]
    if subprocess.run(apt, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(apt, check=True)
    import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
problems = []


def problem(msg):
    problems.append(msg)


def load(rel):
    return yaml.safe_load((ROOT / rel).read_text())


def binary_env(target, binary):
    out = subprocess.run(
        [str(target / binary), "--help"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return set(re.findall(r"\[env: ([A-Z0-9_]+)", out))


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def listed(rel):
    return {
        l.strip()
        for l in (ROOT / rel).read_text().splitlines()
        if l.strip() and not l.startswith("#")
    }


def main():
    target = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/debug"
    compose_text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(compose_text)
    services = compose["services"]
    envs = {b: binary_env(target, b) for b in ("curtain-api", "curtain-worker")}
    pending_env = listed(".ci/pending-env.txt")
    used_pending = set()
    not_clap = {"RUST_LOG"}  # read by tracing_subscriber's EnvFilter, not clap

    # --- interpolated variables: documented, with a working default --------------------------
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    for m in re.finditer(r"\$\{([A-Z0-9_]+)(:?[-?+])?([^}]*)\}", compose_text):
        var, op = m.group(1), m.group(2)
        if var not in documented:
            problem(f"${{{var}}} is not documented in .env.example")
        if op not in (":-", "-"):
            problem(f"${{{var}}} has no default: `docker compose up` would fail without .env")

    # --- Curtain services ---------------------------------------------------------------------
    curtain = {}
    for name, svc in services.items():
        command = svc.get("command") or []
        if command and command[0] in envs:
            curtain[name] = (command[0], svc)
    apis = sorted(n for n, (b, _) in curtain.items() if b == "curtain-api")
    workers = sorted(n for n, (b, _) in curtain.items() if b == "curtain-worker")
    if len(apis) < 2 or not workers:
        problem(f"expected two or more api services and a worker, got {apis} and {workers}")
    listen = {}
    for name, (binary, svc) in curtain.items():
        env = svc.get("environment") or {}
        if not isinstance(env, dict):
            problem(f"{name}: environment must be a mapping")
            continue
        for var in sorted(env):
            if var in envs[binary] or var in not_clap:
                continue
            if var in pending_env:
                used_pending.add(var)
                continue
            problem(f"{name}: {var} is not a {binary} setting (see `{binary} --help`)")
        if env.get("CURTAIN_INSTANCE") != name:
            problem(f"{name}: CURTAIN_INSTANCE must be {name!r} (Prometheus names the target so)")
        if "CURTAIN_LISTEN" not in env or not str(env["CURTAIN_LISTEN"]).startswith("0.0.0.0:"):
            problem(f"{name}: CURTAIN_LISTEN must be set to 0.0.0.0:<port> (the default is loopback)")
            continue
        listen[name] = port_of(env["CURTAIN_LISTEN"])
        check = " ".join(svc.get("healthcheck", {}).get("test", []))
        m = re.search(r"http://127\.0\.0\.1:(\d+)/health", check)
        if not m or int(m.group(1)) != listen[name]:
            problem(f"{name}: health check {check!r} does not probe :{listen[name]}/health")
        if svc.get("build", {}).get("dockerfile") != "Dockerfile":
            problem(f"{name}: must build from the Dockerfile")
    for var in sorted(pending_env - used_pending):
        problem(f".ci/pending-env.txt: {var} is set by no service: delete its line")
    for var in sorted(used_pending):
        if any(var in e for e in envs.values()):
            problem(f".ci/pending-env.txt: {var} is a real setting now: delete its line")

    # --- Prometheus targets -----------------------------------------------------------------
    prom = load("monitoring/prometheus.yml")
    jobs = {}
    for job in prom["scrape_configs"]:
        targets = [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        jobs[job["job_name"]] = targets
        if not job.get("honor_labels"):
            problem(f"prometheus.yml {job['job_name']}: honor_labels must be true (the contract's instance label)")
    for job, expected in (("curtain-api", apis), ("curtain-worker", workers)):
        targets = jobs.get(job, [])
        hosts = sorted(t.rsplit(":", 1)[0] for t in targets)
        if hosts != expected:
            problem(f"prometheus.yml {job} scrapes {hosts}, compose runs {expected}")
        for t in targets:
            host = t.rsplit(":", 1)[0]
            if host in listen and port_of(t) != listen[host]:
                problem(f"prometheus.yml {job}: {t}, but {host} listens on {listen[host]}")
    for am in prom.get("alerting", {}).get("alertmanagers", []):
        for sc in am.get("static_configs", []):
            for t in sc["targets"]:
                host = t.rsplit(":", 1)[0]
                if "alertmanager" not in services.get(host, {}).get("image", "") or port_of(t) != 9093:
                    problem(f"prometheus.yml alertmanager target {t} is not the alertmanager service on 9093")
    for rule_file in prom.get("rule_files", []):
        mounted = [v for v in services["prometheus"].get("volumes", []) if v.endswith(f"/etc/prometheus/{rule_file}:ro")]
        if not mounted:
            problem(f"prometheus.yml rule file {rule_file} is not mounted into /etc/prometheus")

    # --- load balancer ----------------------------------------------------------------------
    lb = services.get("lb", {})
    nginx_rel = "ops/lb/nginx.conf"
    nginx = (ROOT / nginx_rel).read_text()
    upstreams = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", nginx, re.M)
    if sorted(h for h, _ in upstreams) != apis:
        problem(f"{nginx_rel} balances {sorted(h for h, _ in upstreams)}, compose runs {apis}")
    for host, port in upstreams:
        if host in listen and int(port) != listen[host]:
            problem(f"{nginx_rel}: {host}:{port}, but {host} listens on {listen[host]}")
    lb_listen = [int(p) for p in re.findall(r"^\s*listen\s+(\d+)", nginx, re.M)]
    if not any(str(p).endswith(f":{lb_listen[0] if lb_listen else 0}") for p in lb.get("ports", [])):
        problem(f"lb: no published port maps to nginx's listen {lb_listen}")
    if not any(f"{nginx_rel}:/etc/nginx/conf.d/default.conf" in v for v in lb.get("volumes", [])):
        problem(f"lb: {nginx_rel} is not mounted as nginx's default.conf")
    lb_ip = lb.get("networks", {}).get("default", {}).get("ipv4_address")
    for name in apis:
        proxy = curtain[name][1]["environment"].get("TRUSTED_PROXY")
        if proxy != lb_ip:
            problem(f"{name}: TRUSTED_PROXY {proxy} is not the load balancer's address {lb_ip}")

    # --- Alertmanager webhook and Grafana datasource ----------------------------------------
    am = load("monitoring/alertmanager.yml")
    for receiver in am.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            url = urlsplit(hook["url"])
            if url.hostname != "lb" or (url.port or 80) not in lb_listen or url.path != "/alerts/alertmanager":
                problem(f"alertmanager.yml webhook {hook['url']} is not the load balancer's /alerts/alertmanager")
            token_file = hook.get("http_config", {}).get("authorization", {}).get("credentials_file", "")
            if token_file not in " ".join(services["alertmanager"].get("command", [])):
                problem(f"alertmanager.yml credentials_file {token_file} is not written by the alertmanager service")
    for ds in load("monitoring/grafana/provisioning/datasources/prometheus.yml")["datasources"]:
        url = urlsplit(ds["url"])
        if url.hostname != "prometheus" or url.port != 9090:
            problem(f"Grafana datasource {ds['url']} is not the prometheus service on 9090")

    # --- mounts and volumes -----------------------------------------------------------------
    declared = set(compose.get("volumes") or {})
    mounts = {}
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            source, target_path = vol.split(":")[:2]
            mounts.setdefault(name, {})[target_path] = source
            if source.startswith((".", "/")):
                if not (ROOT / source).exists():
                    problem(f"{name}: mounts {source}, which does not exist")
            elif source not in declared:
                problem(f"{name}: named volume {source} is not declared under volumes:")
    for name, path in [("postgres", "/var/lib/postgresql/data"), ("prometheus", "/prometheus"),
                       ("grafana", "/var/lib/grafana"), ("redis", "/data"),
                       ("shard0", "/data"), ("shard1", "/data"), ("shard2", "/data")]:
        if mounts.get(name, {}).get(path) not in declared:
            problem(f"{name}: {path} must be a named volume")
    for provider in load("monitoring/grafana/provisioning/dashboards/curtain.yml")["providers"]:
        path = provider["options"]["path"]
        if mounts.get("grafana", {}).get(path) != "./monitoring/grafana/dashboards":
            problem(f"Grafana provider path {path} is not where compose mounts the dashboards")
    if mounts.get("grafana", {}).get("/etc/grafana/provisioning") != "./monitoring/grafana/provisioning":
        problem("grafana: monitoring/grafana/provisioning is not mounted at /etc/grafana/provisioning")

    # --- Dockerfile and .dockerignore -------------------------------------------------------
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    if not users or users[-1] in ("root", "0"):
        problem("Dockerfile: the runtime stage must switch to a non-root USER")
    if not re.search(r"^HEALTHCHECK\s", dockerfile, re.M):
        problem("Dockerfile: no HEALTHCHECK")
    for binary in envs:
        if f"/usr/local/bin/{binary}" not in dockerfile:
            problem(f"Dockerfile: {binary} is not installed into /usr/local/bin")
    # The dependency-cache layer stubs every workspace member: one left out fails the build.
    members = re.search(r"^members\s*=\s*\[([^\]]*)\]", (ROOT / "Cargo.toml").read_text(), re.M)
    members = set(re.findall(r'"([^"]+)"', members.group(1))) if members else set()
    crates = re.search(r'^ARG CRATES="([^"]*)"', dockerfile, re.M)
    crates = set(crates.group(1).split()) if crates else set()
    if members != crates:
        problem(f"Dockerfile: CRATES {sorted(crates)} must be the workspace members {sorted(members)}")
    for crate in sorted(members):
        if f"COPY {crate}/Cargo.toml {crate}/" not in dockerfile:
            problem(f"Dockerfile: the dependency layer does not copy {crate}/Cargo.toml")
    ignored = listed(".dockerignore")
    if not {"target/", ".git"} <= ignored:
        problem(".dockerignore must exclude target/ and .git")

    for p in problems:
        print(f"compose check: {p}")
    print(
        f"compose check: {len(services)} services ({len(apis)} api, {len(workers)} worker), "
        f"{len(used_pending)} pending variables, {len(problems)} problems"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
