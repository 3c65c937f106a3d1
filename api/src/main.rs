//! `curtain-api`: parses configuration and runs the server.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = api::Config::parse();
    api::init_tracing(&config.log_format);
    api::run(config, api::shutdown_signal()).await
}
