//! The operator's commands: schema migrations and imports of the legacy data set.

pub mod import;

use clap::{Parser, Subcommand};

/// Curtain operations: migrate the database, import the legacy data set.
#[derive(Debug, Parser)]
#[command(name = "curtain-ops", version)]
pub struct Cli {
    /// Database URL: `postgres://...` or `sqlite://path?mode=rwc`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://curtain.db?mode=rwc",
        global = true
    )]
    pub database_url: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending schema migrations (curtain-api also does this at start-up).
    Migrate,
    /// Import users.csv, urls.csv and events.csv (the legacy format, explicit ids) from a
    /// folder. Idempotent: rows whose id exists are skipped; sequences are advanced.
    Import {
        /// Folder holding users.csv, urls.csv and events.csv.
        #[arg(long)]
        dir: std::path::PathBuf,
        /// Hide the progress bars.
        #[arg(long)]
        quiet: bool,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let db = api::state::connect_db(&cli.database_url, 4).await?;
    match cli.command {
        Command::Migrate => {
            println!("migrations applied");
            Ok(())
        }
        Command::Import { dir, quiet } => {
            let report = import::import_dir(&db, &dir, !quiet).await?;
            println!("{report}");
            Ok(())
        }
    }
}
