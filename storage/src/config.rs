//! Settings shared by `curtain-api` and `curtain-worker` (flattened into each binary's
//! config): where the data lives, how the process is named, how it logs.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
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

    /// Redis shards of the real-time click counters, `host:port,...` (ids `shard0..N` in this
    /// order). Unset: the `REDIS_URL` instance alone, or in process without `REDIS_URL`.
    #[arg(long, env = "REDIS_SHARDS", value_delimiter = ',')]
    pub redis_shards: Vec<String>,

    /// Name of the click queue (api and worker must agree).
    #[arg(long, env = "CLICK_QUEUE", default_value = jobs::RecordClicks::QUEUE)]
    pub click_queue: String,

    /// Name of the alert-delivery queue (api and worker must agree).
    #[arg(long, env = "ALERT_QUEUE", default_value = jobs::DeliverAlert::QUEUE)]
    pub alert_queue: String,

    /// Discord webhook URLs alerts are delivered to, comma-separated (the worker delivers;
    /// the api too in the embedded default). Unset: alerts wait in the queue for a worker
    /// that has it.
    #[arg(
        long,
        env = "DISCORD_WEBHOOK_URL",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub discord_webhook_urls: Vec<String>,

    /// The same alert (fingerprint, status, start) is not delivered twice within this many
    /// seconds (Alertmanager's default `repeat_interval` is 4 h).
    #[arg(long, env = "ALERT_REPEAT_WINDOW_SECONDS", default_value_t = 14_400)]
    pub alert_repeat_window_seconds: u64,

    /// Name of the cache-warming queue (api and worker must agree).
    #[arg(long, env = "WARM_QUEUE", default_value = jobs::WarmCache::QUEUE)]
    pub warm_queue: String,

    /// Name of the counter-rebuild queue (worker and `curtain-ops counters rebuild` must agree).
    #[arg(long, env = "COUNTERS_QUEUE", default_value = jobs::CounterRebuild::QUEUE)]
    pub counters_queue: String,

    /// Name of the link-health queue (`check_links` jobs; api and worker must agree).
    #[arg(long, env = "HEALTH_QUEUE", default_value = jobs::LinkHealth::QUEUE)]
    pub health_queue: String,

    /// Seconds between two health checks of every active link with `health_check` on (the
    /// worker enqueues them, one worker per period; the api in the embedded default). 0: off.
    #[arg(long, env = "LINK_HEALTH_EVERY_SECONDS", default_value_t = 3600)]
    pub link_health_every_seconds: u64,

    /// Seconds a health probe of a link's target may take (connection, redirects and answer).
    #[arg(long, env = "LINK_HEALTH_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub link_health_timeout_seconds: u64,

    /// Failed health checks in a row after which a link is broken (alerted; redirected to its
    /// `fallback_url`). One success makes it healthy again.
    #[arg(long, env = "LINK_HEALTH_FAILURES", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub link_health_failures: u32,

    /// Let health checks reach loopback, private, link-local and other non-public addresses.
    /// Off: such a target (or a redirect to one) fails its check unprobed, so a link cannot
    /// make the worker request its own network (SSRF).
    #[arg(long, env = "LINK_HEALTH_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub link_health_allow_private: bool,
    /// Name of the webhook-delivery queue (worker only: the relay enqueues and delivers).
    #[arg(long, env = "WEBHOOK_QUEUE", default_value = jobs::DeliverWebhook::QUEUE)]
    pub webhook_queue: String,

    /// First retry delay of a failed webhook delivery, in seconds; each further attempt waits
    /// twice as long as the one before (at most an hour).
    #[arg(long, env = "WEBHOOK_RETRY_BASE_SECONDS", default_value_t = 10)]
    pub webhook_retry_base_seconds: u64,

    /// Attempts of a webhook delivery before it is dead (listed with `?state=dead`, delivered
    /// again by `curtain-ops webhooks replay`).
    #[arg(long, env = "WEBHOOK_MAX_ATTEMPTS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub webhook_max_attempts: u32,

    /// Delivered webhook deliveries are deleted this many days after delivery (dead ones stay
    /// until replayed or their webhook is deleted).
    #[arg(long, env = "WEBHOOK_KEEP_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    pub webhook_keep_days: u32,

    /// How often the webhook relay looks for due deliveries, in milliseconds.
    #[arg(long, env = "WEBHOOK_RELAY_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    pub webhook_relay_ms: u64,

    /// Seconds between two rebuilds of every counter from the events (a reconcile; the
    /// worker enqueues it). 0: only on demand and when a shard restarted empty.
    #[arg(
        long,
        env = "COUNTER_RECONCILE_EVERY_SECONDS",
        default_value_t = 86_400
    )]
    pub counter_reconcile_every_seconds: u64,

    /// Redis URL of the shared read-through cache. Unset: an in-process cache.
    #[arg(long, env = "CACHE_REDIS_URL")]
    pub cache_redis_url: Option<String>,

    /// Prefix of every cache and counter key (api and worker must agree; lets several
    /// deployments or tests share one Redis).
    #[arg(long, env = "CACHE_PREFIX", default_value = "curtain")]
    pub cache_prefix: String,

    /// Instance name in `/health` and metric labels. Default: the host name.
    #[arg(long, env = "CURTAIN_INSTANCE")]
    pub instance: Option<String>,

    /// Seconds between analytics rollup runs (hourly and daily rollups of closed hours; run by
    /// `curtain-worker`, or by `curtain-api` in the embedded default). 0: never.
    #[arg(long, env = "ROLLUP_EVERY_SECONDS", default_value_t = 60)]
    pub rollup_every_seconds: u64,

    /// Delete raw `redirect` events older than this many days once they are rolled up (the
    /// rollups keep their counts, so analytics totals stay the same; `GET /events` no longer
    /// lists them). Unset: keep every event.
    #[arg(long, env = "EVENT_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub event_retention_days: Option<u32>,

    /// Require API keys (`curtain-ops keys create`): every write needs a key with `links:write`;
    /// `/metrics`, `/debug/*` and `/admin/*` one with `admin`. Off: no key is needed or checked.
    #[arg(long, env = "CURTAIN_REQUIRE_API_KEY", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_api_key: bool,

    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl CommonArgs {
    /// The Discord webhooks to deliver to (`DISCORD_WEBHOOK_URL` without empty entries).
    #[must_use]
    pub fn discord_webhooks(&self) -> Vec<String> {
        self.discord_webhook_urls
            .iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect()
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
