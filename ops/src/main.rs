//! `curtain-ops`: the operator's CLI.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ops::Cli::parse();
    telemetry::init_cli_tracing();
    ops::run(cli).await
}
