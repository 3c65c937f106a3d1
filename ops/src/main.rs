//! `curtain-ops`: the operator's CLI.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ops::Cli::parse();
    api::init_tracing("text");
    ops::run(cli).await
}
