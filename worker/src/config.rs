//! `curtain-worker` configuration: flags and environment variables, parsed once at start-up.
//! Every variable is listed in `.env.example`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// Curtain worker: consumes click batches from the Redis job queue and writes them to the
/// database and the sharded real-time counters.
#[derive(Debug, Clone, Parser)]
#[command(name = "curtain-worker", version)]
pub struct Config {
    /// Address of the worker's own `/health` and `/metrics`.
    #[arg(long, env = "CURTAIN_LISTEN", default_value = "127.0.0.1:5001")]
    pub listen: SocketAddr,

    /// Database URL (`postgres://...` or `sqlite://...`), the same as curtain-api's.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://curtain.db?mode=rwc"
    )]
    pub database_url: String,

    /// Maximum database connections in the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// Redis URL of the job queue (required).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: String,

    /// Redis shards of the real-time click counters, `host:port,...`. Unset: the queue's Redis.
    #[arg(long, env = "REDIS_SHARDS", value_delimiter = ',')]
    pub redis_shards: Vec<String>,

    /// Shared cache (analytics payloads are invalidated after ingestion).
    #[arg(long, env = "CACHE_REDIS_URL")]
    pub cache_redis_url: Option<String>,

    /// Prefix of cache and counter keys; must match curtain-api's.
    #[arg(long, env = "CACHE_PREFIX", default_value = "curtain")]
    pub cache_prefix: String,

    /// Click-ingestion jobs processed at once by this process.
    #[arg(long, env = "CLICK_WORKER_CONCURRENCY", default_value_t = 4)]
    pub click_concurrency: usize,

    /// Name of the click queue (tests use their own).
    #[arg(long, env = "CLICK_QUEUE", default_value = jobs::RecordClicks::QUEUE)]
    pub click_queue: String,

    /// How often an idle worker looks for jobs, in milliseconds.
    #[arg(long, env = "WORKER_POLL_MS", default_value = "50", value_parser = parse_millis)]
    pub poll_interval: Duration,

    /// Instance name in metric labels. Default: the host name.
    #[arg(long, env = "CURTAIN_INSTANCE")]
    pub instance: Option<String>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

fn parse_millis(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|e| format!("expected milliseconds: {e}"))
}

impl Config {
    /// The instance label: the configured name, else the host name.
    #[must_use]
    pub fn instance_name(&self) -> String {
        self.instance.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .map(|s| s.trim().to_owned())
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "localhost".to_owned())
        })
    }

    /// Counter shards: `REDIS_SHARDS`, else the queue's Redis.
    #[must_use]
    pub fn shards(&self) -> Vec<String> {
        if self.redis_shards.is_empty() {
            vec![self.redis_url.clone()]
        } else {
            self.redis_shards.clone()
        }
    }
}
