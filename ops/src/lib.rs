//! The operator's commands: schema migrations and imports of the legacy data set.

pub mod bench;
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
    /// Roll analytics up now: every marked hour before the current one (what the worker does
    /// every `ROLLUP_EVERY_SECONDS`). Safe beside running workers.
    Rollup,
    /// Benchmark helper: a bare poem server answering 302 on `/r/<code>` (the ceiling).
    BenchBare {
        #[arg(long, default_value = "127.0.0.1:5900")]
        listen: std::net::SocketAddr,
    },
    /// Benchmark helper: GET a URL at a fixed rate.
    BenchLoad {
        #[arg(long)]
        url: String,
        /// Requests per second.
        #[arg(long, default_value_t = 5000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// Benchmark helper: push synthetic clicks of one link onto the click queue.
    BenchEnqueue {
        #[arg(long, env = "REDIS_URL")]
        redis_url: String,
        #[arg(long, default_value = jobs::RecordClicks::QUEUE)]
        queue: String,
        #[arg(long)]
        url_id: i64,
        #[arg(long)]
        code: String,
        #[arg(long)]
        clicks: u64,
        #[arg(long, default_value_t = 2000)]
        batch: usize,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::BenchBare { listen } => return bench::bare(listen).await,
        Command::BenchLoad {
            url,
            rate,
            seconds,
            connections,
        } => {
            return bench::load(&url, rate, seconds, connections)
                .await
                .map(|_| ());
        }
        Command::BenchEnqueue {
            redis_url,
            queue,
            url_id,
            code,
            clicks,
            batch,
        } => {
            return bench::enqueue(&redis_url, &queue, url_id, &code, clicks, batch).await;
        }
        Command::Migrate | Command::Import { .. } | Command::Rollup => {}
    }
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
        Command::Rollup => {
            let started = std::time::Instant::now();
            let report = storage::rollup::run_once(&db, chrono::Utc::now().naive_utc()).await?;
            println!(
                "rolled up: {} link-hours, {} link-days, {} marks in {:.2} s",
                report.hours,
                report.days,
                report.marks,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::BenchBare { .. } | Command::BenchLoad { .. } | Command::BenchEnqueue { .. } => {
            Ok(())
        }
    }
}
