//! The operator's commands: schema migrations, imports of the legacy data set, rollups,
//! counters, API keys and webhook replays.

pub mod bench;
pub mod counters;
pub mod import;
pub mod webhooks;

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
    /// Real-time click counters.
    Counters {
        #[command(subcommand)]
        command: counters::CountersCommand,
    },
    /// Webhook deliveries: the dead-letter list and its replay.
    Webhooks {
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
    /// API keys (needed when `CURTAIN_REQUIRE_API_KEY=true`).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
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

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once (only its hash is kept).
    Create {
        /// A scope the key grants: `links:write`, `analytics:read` or `admin` (repeatable;
        /// `admin` grants every scope).
        #[arg(long = "scope", required = true, value_parser = clap::value_parser!(storage::api_keys::Scope))]
        scopes: Vec<storage::api_keys::Scope>,
        /// A label to recognise the key by.
        #[arg(long)]
        name: Option<String>,
    },
    /// List the keys (id, scopes, name, created, revoked), never their secrets.
    List,
    /// Revoke a key by id (the part after `ck_` in the key): it stops working at once.
    Revoke { id: String },
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
        Command::Migrate
        | Command::Import { .. }
        | Command::Rollup
        | Command::Keys { .. }
        | Command::Webhooks { .. }
        | Command::Counters { .. } => {}
    }
    let db = storage::db::connect_db(&cli.database_url, 4).await?;
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
        Command::Keys { command } => keys(&db, command).await,
        Command::Counters { command } => counters::run(&db, command).await,
        Command::Webhooks { command } => webhooks::run(&db, command).await,
        Command::BenchBare { .. } | Command::BenchLoad { .. } | Command::BenchEnqueue { .. } => {
            Ok(())
        }
    }
}

async fn keys(db: &sea_orm::DatabaseConnection, command: KeysCommand) -> anyhow::Result<()> {
    use storage::api_keys;
    let scopes = |key: &api_keys::KeyInfo| {
        key.scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    match command {
        KeysCommand::Create {
            scopes: wanted,
            name,
        } => {
            let created = api_keys::create(db, name.as_deref(), &wanted).await?;
            eprintln!(
                "created key {} ({}); it is shown only now:",
                created.info.id,
                scopes(&created.info)
            );
            println!("{}", created.token);
        }
        KeysCommand::List => {
            for key in api_keys::list(db).await? {
                let revoked = key
                    .revoked_at
                    .map_or_else(|| "active".to_owned(), |t| format!("revoked {t}"));
                println!(
                    "{}\t{}\t{}\tcreated {}\t{}",
                    key.id,
                    scopes(&key),
                    key.name.as_deref().unwrap_or("-"),
                    key.created_at,
                    revoked
                );
            }
        }
        KeysCommand::Revoke { id } => {
            if !api_keys::revoke(db, &id).await? {
                anyhow::bail!("no active key {id}");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}
