//! `curtain-worker`: parses configuration and runs the worker pools.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = worker::Config::parse();
    telemetry::init_tracing(&config.common.log_format);
    worker::run(config, telemetry::shutdown_signal()).await
}
