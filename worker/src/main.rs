//! `curtain-worker`: parses configuration and runs the worker pools.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = worker::Config::parse();
    api::init_tracing(&config.common.log_format);
    worker::run(config, api::shutdown_signal()).await
}
