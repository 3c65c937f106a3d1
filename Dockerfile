# One image for curtain-api, curtain-worker and curtain-ops (docker-compose.yml picks the
# command). Build: `docker compose build` or `docker build -t curtain .`.
FROM rust:1.95-bookworm AS build
WORKDIR /src

# Dependency cache layer: the manifests and the lock file with stub sources, built once; it is
# rebuilt only when a Cargo.toml or Cargo.lock changes, not on every source edit.
# Every workspace member (Cargo.toml's `members`).
ARG CRATES="alerts api domain entity jobs migration ops storage telemetry webhooks worker"
COPY Cargo.toml Cargo.lock ./
COPY build-support build-support
COPY alerts/Cargo.toml alerts/
COPY api/Cargo.toml api/
COPY domain/Cargo.toml domain/
COPY entity/Cargo.toml entity/
COPY jobs/Cargo.toml jobs/
COPY migration/Cargo.toml migration/
COPY ops/Cargo.toml ops/
COPY storage/Cargo.toml storage/
COPY telemetry/Cargo.toml telemetry/
COPY webhooks/Cargo.toml webhooks/
COPY worker/Cargo.toml worker/
RUN set -eu; \
    for crate in $CRATES; do \
      mkdir -p "$crate/src" && : > "$crate/src/lib.rs"; \
    done; \
    for bin in api ops worker; do \
      echo 'fn main() {}' > "$bin/src/main.rs"; \
      mkdir -p "$bin/tests/$bin" && : > "$bin/tests/$bin/main.rs"; \
    done; \
    cargo build --release --locked --bins; \
    for crate in $CRATES; do rm -rf "$crate/src"; done

# The real sources; touched so cargo rebuilds the workspace crates over the stubs.
COPY . .
RUN find $CRATES -name '*.rs' -exec touch {} + \
    && cargo build --release --locked --bins \
    && cp target/release/curtain-api target/release/curtain-worker target/release/curtain-ops /usr/local/bin/

FROM debian:bookworm-slim
# curl: the health checks below and in docker-compose.yml.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/curtain --shell /usr/sbin/nologin curtain \
    && mkdir -p /var/lib/curtain/spool \
    && chown -R curtain:curtain /var/lib/curtain
COPY --from=build /usr/local/bin/curtain-api /usr/local/bin/curtain-worker /usr/local/bin/curtain-ops /usr/local/bin/
USER curtain
WORKDIR /var/lib/curtain
EXPOSE 5000 5001
# The default command is the api on 5000; docker-compose.yml sets the worker's own check (5001).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:5000/health || exit 1
ENV CURTAIN_LISTEN=0.0.0.0:5000
CMD ["curtain-api"]
