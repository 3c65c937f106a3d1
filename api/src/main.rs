//! `curtain-api`: parses configuration and runs the server.

use clap::Parser;

// glibc's allocator contends between runtime threads on the redirect path; mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = api::Config::parse();
    api::init_tracing(&config.common.log_format);
    api::run(config, api::shutdown_signal()).await
}
