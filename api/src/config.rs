//! `curtain-api` configuration: flags and environment variables, parsed once at start-up into
//! real types. Every variable is listed in `.env.example`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;

/// Curtain API server: REST API, redirects, HTML UI, OpenAPI docs and metrics.
#[derive(Debug, Clone, Parser)]
#[command(name = "curtain-api", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CURTAIN_LISTEN", default_value = "127.0.0.1:5000")]
    pub listen: SocketAddr,

    /// Database URL: `postgres://...` or `sqlite://path?mode=rwc`. Default: a SQLite file in the
    /// working directory.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://curtain.db?mode=rwc"
    )]
    pub database_url: String,

    /// Maximum database connections in the pool (PostgreSQL; SQLite always uses one).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// Redis URL of the job queue. Set: clicks are enqueued for `curtain-worker`. Unset: the
    /// embedded default ingests clicks in process.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Redis shards of the real-time click counters, `host:port,...` (ids `shard0..N` in this
    /// order). Unset: the `REDIS_URL` instance alone, or in process without `REDIS_URL`.
    #[arg(long, env = "REDIS_SHARDS", value_delimiter = ',')]
    pub redis_shards: Vec<String>,

    /// `ack`: a redirect is answered once its click is durably queued (or spooled). `fast`:
    /// answered at once; a crash loses the clicks of the batch being formed.
    #[arg(long, env = "CLICK_DURABILITY", value_enum, default_value = "ack")]
    pub click_durability: crate::clicks::Durability,

    /// Name of the click queue (curtain-worker must use the same).
    #[arg(long, env = "CLICK_QUEUE", default_value = jobs::RecordClicks::QUEUE)]
    pub click_queue: String,

    /// Folder of the durable click spool (used while the queue is unreachable).
    #[arg(long, env = "CLICK_SPOOL_DIR", default_value = "click-spool")]
    pub click_spool_dir: std::path::PathBuf,

    /// Redis URL for the shared read-through cache. Unset: an in-process cache.
    #[arg(long, env = "CACHE_REDIS_URL")]
    pub cache_redis_url: Option<String>,

    /// Prefix of every cache key (lets several deployments or tests share one Redis).
    #[arg(long, env = "CACHE_PREFIX", default_value = "curtain")]
    pub cache_prefix: String,

    /// Time to live of cached payloads, in seconds.
    #[arg(long, env = "CACHE_TTL_SECONDS", default_value = "60", value_parser = parse_secs)]
    pub cache_ttl: Duration,

    /// Public base URL used in UI links (e.g. `https://sho.rt`). Unset: `http://` + Host header.
    #[arg(long, env = "PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,

    /// Serve `/debug/fail` (a deliberate 500 for incident drills).
    #[arg(long, env = "ENABLE_INCIDENT_DEBUG_ROUTES", default_value_t = false, action = clap::ArgAction::Set)]
    pub enable_incident_debug_routes: bool,

    /// Secret salt for hashing visitor addresses (unique-visitor counting). Unset: a random salt
    /// per process, so uniques are only comparable within one process lifetime.
    #[arg(long, env = "VISITOR_HASH_SALT", hide_env_values = true)]
    pub visitor_hash_salt: Option<String>,

    /// Secret keying the short-code permutation. Set it once per database and keep it: codes
    /// stay unique if it changes, but new codes may then fall back to seven characters.
    #[arg(
        long,
        env = "SHORT_CODE_SECRET",
        default_value = "curtain",
        hide_env_values = true
    )]
    pub short_code_secret: String,

    /// Address of a trusted reverse proxy whose `X-Forwarded-For` names the client.
    #[arg(long, env = "TRUSTED_PROXY")]
    pub trusted_proxy: Option<IpAddr>,

    /// Instance name in `/health` and metric labels. Default: the host name.
    #[arg(long, env = "CURTAIN_INSTANCE")]
    pub instance: Option<String>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|e| format!("expected whole seconds: {e}"))
}

impl Config {
    /// A configuration with every default, as if no flag or variable were given.
    #[must_use]
    pub fn defaults() -> Self {
        Self::parse_from(["curtain-api"])
    }

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
}
