# Builds the three binaries once; every Curtain service runs this image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --workspace --bins

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/curtain-api /src/target/release/curtain-worker /src/target/release/curtain-ops /usr/local/bin/
WORKDIR /var/lib/curtain
EXPOSE 5000 5001
