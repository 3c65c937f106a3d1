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

    /// Redis URL of the job queue. Set: clicks are enqueued for `curtain-worker`. Unset: the
    /// embedded default ingests clicks in process.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// `ack`: a redirect is answered once its click is durably queued (or spooled). `fast`:
    /// answered at once; a crash loses the clicks of the batch being formed.
    #[arg(long, env = "CLICK_DURABILITY", value_enum, default_value = "ack")]
    pub click_durability: crate::clicks::Durability,

    /// Folder of the durable click spool (used while the queue is unreachable).
    #[arg(long, env = "CLICK_SPOOL_DIR", default_value = "click-spool")]
    pub click_spool_dir: std::path::PathBuf,

    /// Time to live of cached payloads, in seconds.
    #[arg(long, env = "CACHE_TTL_SECONDS", default_value = "60", value_parser = parse_secs)]
    pub cache_ttl: Duration,

    /// Warm the redirect cache after every create or update, so the first click is a cache
    /// hit: a `warm_cache` job for `curtain-worker` with `REDIS_URL`, else in process before
    /// the write answers.
    #[arg(long, env = "CACHE_WARM_ON_WRITE", default_value_t = true, action = clap::ArgAction::Set)]
    pub cache_warm_on_write: bool,

    /// Public base URL used in UI links (e.g. `https://sho.rt`). Unset: `http://` + Host header.
    #[arg(long, env = "PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,

    /// Serve `/debug/fail` (a deliberate 500 for incident drills).
    #[arg(long, env = "ENABLE_INCIDENT_DEBUG_ROUTES", default_value_t = false, action = clap::ArgAction::Set)]
    pub enable_incident_debug_routes: bool,

    /// Secret key of the visitor hash (HMAC-SHA256 of the address; unique-visitor counting).
    /// Unset: generated once and kept in the database, shared by every process.
    #[arg(long, env = "VISITOR_HASH_SALT", hide_env_values = true)]
    pub visitor_hash_salt: Option<String>,

    /// Secret keying the short-code permutation. Unset: generated once and kept in the
    /// database (a database that had links before keeps the old default, `curtain`). If it
    /// changes, codes stay unique, but new codes may then fall back to seven characters.
    #[arg(long, env = "SHORT_CODE_SECRET", hide_env_values = true)]
    pub short_code_secret: Option<String>,

    /// Address of a trusted reverse proxy whose `X-Forwarded-For` names the client.
    #[arg(long, env = "TRUSTED_PROXY")]
    pub trusted_proxy: Option<IpAddr>,

    /// Bearer token Alertmanager must present on `POST /alerts/alertmanager`. Unset: that
    /// endpoint answers 503.
    #[arg(long, env = "ALERTMANAGER_WEBHOOK_TOKEN", hide_env_values = true)]
    pub alertmanager_webhook_token: Option<String>,

    /// Writes (`POST`, `PUT`, `DELETE`) each client may send per minute, all at once or spread
    /// out (429 past it, with `Retry-After`). 0: unlimited.
    #[arg(long, env = "RATE_LIMIT_WRITES_PER_MINUTE", default_value_t = 60_000)]
    pub rate_limit_writes_per_minute: u64,

    /// `POST /users/bulk` uploads each client may send per minute. 0: unlimited.
    #[arg(long, env = "RATE_LIMIT_BULK_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_bulk_per_minute: u64,

    /// Redis holding the rate-limit budgets, shared by every api instance. Unset:
    /// `CACHE_REDIS_URL`, else `REDIS_URL`, else in process.
    #[arg(long, env = "RATE_LIMIT_REDIS_URL")]
    pub rate_limit_redis_url: Option<String>,

    /// Seconds a request may run before it is answered 503. 0: no limit.
    #[arg(long, env = "REQUEST_TIMEOUT_SECONDS", default_value_t = 30)]
    pub request_timeout_seconds: u64,

    /// Requests in progress at once; more are answered 503 at once. 0: no limit.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 10_000)]
    pub max_concurrent_requests: usize,

    /// With `CURTAIN_REQUIRE_API_KEY=true`, the analytics endpoints need a key with
    /// `analytics:read` too.
    #[arg(long, env = "CURTAIN_REQUIRE_API_KEY_FOR_ANALYTICS", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_api_key_for_analytics: bool,

    /// Passwords a client may try at one password link per window (wrong or right; a right
    /// one gives them back); past them, 429 until the window ends.
    #[arg(long, env = "LINK_PASSWORD_ATTEMPTS", default_value_t = 5)]
    pub link_password_attempts: u32,

    /// The window of `LINK_PASSWORD_ATTEMPTS`, in seconds (from the client's first attempt).
    #[arg(long, env = "LINK_PASSWORD_WINDOW_SECONDS", default_value_t = 300)]
    pub link_password_window_seconds: u64,

    #[command(flatten)]
    pub common: storage::config::CommonArgs,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|e| format!("expected whole seconds: {e}"))
}
