//! `curtain-worker` configuration: flags and environment variables, parsed once at start-up.
//! Every variable is listed in `.env.example`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// Curtain worker: consumes click batches from the Redis job queue and writes them to the
/// database and the sharded real-time counters; delivers alerts to Discord.
#[derive(Debug, Clone, Parser)]
#[command(name = "curtain-worker", version)]
pub struct Config {
    /// Address of the worker's own `/health` and `/metrics`.
    #[arg(long, env = "CURTAIN_LISTEN", default_value = "127.0.0.1:5001")]
    pub listen: SocketAddr,

    /// Redis URL of the job queue (required).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: String,

    /// Click-ingestion jobs held at once by this process (one apalis worker each, fetching
    /// one job at a time). The batches of the jobs held at one moment are ingested together
    /// (`CLICK_INGEST_SLOTS` groups at once). A job's time is mostly its fetch and ack round
    /// trips, so many must be in flight: draining 40-click jobs on 2 cores, 12 reached 22k
    /// clicks/s, 64 reached 36-45k and 128 46k (`ops/bench-drain.sh`).
    #[arg(long, env = "CLICK_WORKER_CONCURRENCY", default_value_t = 128)]
    pub click_concurrency: usize,

    /// Groups of click batches ingested at once by this process (each a transaction of
    /// inserts and one counter update per shard). Fewer slots make larger groups (less CPU
    /// per click: 8 slots took 8 jobs a group at 33 µs of CPU per click, where one job a
    /// group cost 59 µs). Keep it below `DATABASE_MAX_CONNECTIONS`.
    #[arg(long, env = "CLICK_INGEST_SLOTS", default_value_t = 8)]
    pub click_ingest_slots: usize,

    /// Alert-delivery jobs processed at once by this process (when `DISCORD_WEBHOOK_URL` is
    /// set; without it this process delivers no alerts).
    #[arg(long, env = "ALERT_WORKER_CONCURRENCY", default_value_t = 2)]
    pub alert_concurrency: usize,

    /// Curtain's own alert `CurtainClickBacklog` fires when the oldest waiting click batch is
    /// older than this many seconds.
    #[arg(long, env = "CLICK_BACKLOG_ALERT_SECONDS", default_value_t = 300)]
    pub backlog_alert_seconds: u64,

    /// Curtain's own alert conditions resolve once they have not held for this many seconds.
    #[arg(long, env = "CONDITION_RESOLVE_SECONDS", default_value_t = 300)]
    pub condition_resolve_seconds: u64,

    /// How often an idle worker looks for jobs, in milliseconds. With 128 click workers
    /// polling out of phase a new job waits about 2 ms; 250 keeps an idle worker's polling
    /// near what 12 workers at 50 ms cost.
    #[arg(long, env = "WORKER_POLL_MS", default_value = "250", value_parser = parse_millis)]
    pub poll_interval: Duration,

    /// Restarts of the worker pools within a minute (they stop on their own when the queue's
    /// Redis drops) after which the process gives up and exits non-zero, for its supervisor to
    /// act. Each restart waits a second, so the default rides out a 30 s queue outage.
    #[arg(long, env = "WORKER_MAX_RESTARTS", default_value_t = 30)]
    pub max_restarts_per_minute: usize,

    /// Links warmed at start-up and every `WARM_EVERY`: the most-redirected of the last hour.
    #[arg(long, env = "WARM_TOP_N", default_value_t = 100)]
    pub warm_top_n: u64,

    /// Seconds between two warming passes over the top links (0: never, not even at start-up).
    #[arg(long, env = "WARM_EVERY", default_value = "60", value_parser = parse_secs)]
    pub warm_every: Duration,

    #[command(flatten)]
    pub common: storage::config::CommonArgs,
}

fn parse_millis(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|e| format!("expected milliseconds: {e}"))
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|e| format!("expected whole seconds: {e}"))
}

impl Config {
    /// Counter shards: `REDIS_SHARDS`, else the queue's Redis.
    #[must_use]
    pub fn shards(&self) -> Vec<String> {
        if self.common.redis_shards.is_empty() {
            vec![self.redis_url.clone()]
        } else {
            self.common.redis_shards.clone()
        }
    }
}
