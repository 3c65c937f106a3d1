//! Shared state of one api process, built once at start-up.

use std::sync::Arc;

use anyhow::Context;
use sea_orm::DatabaseConnection;

use jobs::{ClickQueue, JobQueue};
use storage::cache::Cache;
use storage::counters::Counters;

use crate::click_limits::ClickLimits;
use crate::clicks::{ClickRecorder, Sink};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::queues::{QueueMonitor, Source, Watched};
use crate::spool::Spool;
use domain::CodeGenerator;
use storage::warm::Warmer;

pub struct AppState {
    pub db: DatabaseConnection,
    pub cache: Arc<Cache>,
    pub clicks: ClickRecorder,
    /// Where `max_clicks` is counted: Redis shared by every instance, else this process.
    pub click_limits: ClickLimits,
    /// Password links' checks and attempt budgets.
    pub link_passwords: crate::link_passwords::LinkPasswords,
    pub counters: Arc<Counters>,
    pub codes: CodeGenerator,
    pub warmer: Warmer,
    pub metrics: Metrics,
    pub templates: tera::Tera,
    pub instance: String,
    pub public_base_url: Option<String>,
    pub debug_routes: bool,
    /// Key of the visitor hash: from `VISITOR_HASH_SALT` or the database, the same in every
    /// process of the deployment.
    pub visitor_salt: String,
    /// Stable id of the deployment, from the database (shared by all its processes).
    pub deployment_id: String,
    pub trusted_proxy: Option<std::net::IpAddr>,
    pub alerts: crate::alerts::AlertIntake,
    /// Rate limits on writes and bulk imports (`None`: off).
    pub rate_limits: Option<Arc<crate::limits::RateLimits>>,
    /// The API-key guard, when `CURTAIN_REQUIRE_API_KEY=true`.
    pub api_keys: Option<Arc<crate::keys::KeyGuard>>,
    pub request_timeout: Option<std::time::Duration>,
    pub max_concurrent_requests: Option<usize>,
    /// Every job queue, read for `/metrics` and `/admin/queues`.
    pub queues: Arc<QueueMonitor>,
    pub rollups: RollupStatus,
    /// Where link health checks run: `HEALTH_QUEUE` for the worker, or in process.
    pub link_checks: crate::health::LinkChecks,
    pub webhooks: crate::webhooks::WebhookHub,
}

/// Who rolls analytics up, for the queue page.
pub struct RollupStatus {
    /// `ROLLUP_EVERY_SECONDS` (0: never).
    pub every_seconds: u64,
    /// The loop's metrics when this process runs it (embedded default); else `curtain-worker`
    /// does.
    pub here: Option<storage::rollup::RollupMetrics>,
}

pub use storage::db::{connect_db, redact};

/// The real-time counters: `REDIS_SHARDS`, else the queue's Redis as one shard, else in process.
pub fn counters_for(config: &Config, deployment_id: &str) -> anyhow::Result<Counters> {
    let shards = if config.common.redis_shards.is_empty() {
        config.redis_url.iter().cloned().collect()
    } else {
        config.common.redis_shards.clone()
    };
    if shards.is_empty() {
        Ok(Counters::memory())
    } else {
        Counters::for_deployment(&shards, &config.common.cache_prefix, deployment_id)
            .context("REDIS_SHARDS")
    }
}

/// Where clicks go: the queue (with its spool) when `REDIS_URL` is set, else ingestion in
/// process; the embedded default also rolls analytics up itself (there is no worker) and
/// returns the rollup loop's metrics.
async fn click_sink(
    config: &Config,
    db: &DatabaseConnection,
    counters: &Arc<Counters>,
    cache: &Arc<Cache>,
    metrics: &Metrics,
    hooks: &Arc<storage::webhooks::ClickHooks>,
) -> anyhow::Result<(Sink, Option<storage::rollup::RollupMetrics>)> {
    if let Some(url) = &config.redis_url {
        let queue = Arc::new(
            ClickQueue::connect(url, Some(&config.common.click_queue))
                .await
                .context("REDIS_URL (click queue)")?,
        );
        let spool = Arc::new(Spool::open(&config.click_spool_dir).context("CLICK_SPOOL_DIR")?);
        spool.spawn_drainer(queue.clone());
        return Ok((Sink::Queue { queue, spool }, None));
    }
    tokio::spawn(storage::tombstones::run_forever(
        db.clone(),
        counters.clone(),
        std::time::Duration::from_secs(2),
    ));
    let rollups = storage::rollup::RollupMetrics::new();
    metrics.register_rollups(&rollups);
    tokio::spawn(storage::rollup::run_forever(
        db.clone(),
        storage::rollup::Schedule::from_config(&config.common),
        rollups.clone(),
    ));
    let sink = Sink::Embedded {
        db: db.clone(),
        counters: counters.clone(),
        cache: cache.clone(),
        hooks: hooks.clone(),
    };
    Ok((sink, Some(rollups)))
}

/// The queues of the page and the gauges, in a fixed order: clicks, warming, alerts, link
/// health, webhooks.
fn watched_queues(
    config: &Config,
    clicks: &ClickRecorder,
    [click_queue, warm_queue, webhook_queue]: [Option<Arc<JobQueue>>; 3],
    warmer: &Warmer,
    alerts: &crate::alerts::AlertIntake,
    link_checks: &crate::health::LinkChecks,
) -> Vec<Watched> {
    use crate::alerts::AlertSink;
    let common = &config.common;
    let clicks = match click_queue {
        Some(queue) => Source::Redis(queue),
        None => Source::Clicks(clicks.clone()),
    };
    let warming = match (warm_queue, warmer) {
        (Some(queue), _) => Source::Redis(queue),
        (None, Warmer::Queue(queue)) => Source::Redis(queue.clone()),
        (None, Warmer::InProcess) => Source::Off(
            "no queue: a link is warmed in process before its write answers (no REDIS_URL)",
        ),
        (None, Warmer::Off) => Source::Off("no queue: CACHE_WARM_ON_WRITE=false, no REDIS_URL"),
    };
    let alert_source = match &alerts.sink {
        AlertSink::Queue(queue) => Source::Redis(queue.clone()),
        AlertSink::Embedded(queue) => Source::Alerts(queue.clone()),
        AlertSink::Nowhere => Source::Off("no queue: no DISCORD_WEBHOOK_URL, nothing to deliver"),
    };
    let health = match link_checks {
        crate::health::LinkChecks::Queue(queue) => Source::Redis(queue.clone()),
        crate::health::LinkChecks::InProcess(_) => {
            Source::Off("no queue: links are health-checked in process (no REDIS_URL)")
        }
    };
    vec![
        Watched {
            name: common.click_queue.clone(),
            role: "clicks",
            source: clicks,
        },
        Watched {
            name: common.warm_queue.clone(),
            role: "warming",
            source: warming,
        },
        Watched {
            name: common.alert_queue.clone(),
            role: "alerts",
            source: alert_source,
        },
        Watched {
            name: common.health_queue.clone(),
            role: "health",
            source: health,
        },
        Watched {
            name: common.webhook_queue.clone(),
            role: "webhooks",
            source: webhook_queue.map_or(
                Source::Off(
                    "no queue: this process delivers webhooks in process (no REDIS_URL); \
                     GET /webhooks/<id>/deliveries shows them",
                ),
                Source::Redis,
            ),
        },
    ]
}

/// The queue monitor of this process, read once (the first samples of the completed counts,
/// and the gauges set before the first scrape) and then every second.
async fn monitor(
    config: &Config,
    metrics: &Metrics,
    clicks: &ClickRecorder,
    click_queue: Option<Arc<ClickQueue>>,
    warmer: &Warmer,
    alerts: &crate::alerts::AlertIntake,
    link_checks: &crate::health::LinkChecks,
) -> anyhow::Result<Arc<QueueMonitor>> {
    // The worker consumes the warm queue (its scheduled passes too) even when this process
    // does not push to it.
    let warm_queue = match (warmer, &config.redis_url) {
        (Warmer::Queue(queue), _) => Some(queue.clone()),
        (_, Some(url)) => Some(Arc::new(
            JobQueue::connect(url, Some(&config.common.warm_queue))
                .await
                .context("REDIS_URL (warm queue)")?,
        )),
        (_, None) => None,
    };
    // The worker's relay fills the webhook queue.
    let webhook_queue = match &config.redis_url {
        Some(url) => Some(Arc::new(
            JobQueue::connect(url, Some(&config.common.webhook_queue))
                .await
                .context("REDIS_URL (webhook queue)")?,
        )),
        None => None,
    };
    let queues = Arc::new(QueueMonitor::new(
        watched_queues(
            config,
            clicks,
            [click_queue, warm_queue, webhook_queue],
            warmer,
            alerts,
            link_checks,
        ),
        metrics.queue.clone(),
    ));
    queues.read().await;
    queues.spawn_refresher();
    Ok(queues)
}

/// The click counters: the shards, or in process rebuilt from the events (so a restart
/// keeps the figures).
async fn counters_here(
    config: &Config,
    db: &DatabaseConnection,
    deployment_id: &str,
) -> anyhow::Result<Arc<Counters>> {
    Ok(match counters_for(config, deployment_id)? {
        // In-process counters start from the events, so a restart keeps the figures.
        Counters::Memory(_) => {
            let (counters, report) = storage::rebuild::memory_counters_from_events(db)
                .await
                .context("rebuilding the in-process counters from events")?;
            tracing::info!(
                clicks = report.clicks,
                codes = report.codes,
                "in-process counters rebuilt from events"
            );
            Arc::new(counters)
        }
        sharded @ Counters::Sharded(_) => Arc::new(sharded),
    })
}

/// Password links' checks, with the attempt budgets in the deployment's Redis when it has one.
fn link_passwords(
    config: &Config,
    metrics: &Metrics,
) -> anyhow::Result<crate::link_passwords::LinkPasswords> {
    crate::link_passwords::LinkPasswords::new(
        config
            .common
            .cache_redis_url
            .as_deref()
            .or(config.redis_url.as_deref())
            .map(|url| (url, config.common.cache_prefix.as_str())),
        config.link_password_attempts,
        std::time::Duration::from_secs(config.link_password_window_seconds),
        metrics.registry(),
    )
    .context("CACHE_REDIS_URL (password attempts)")
}

impl AppState {
    #[expect(
        clippy::too_many_lines,
        reason = "the start-up wiring, read top to bottom: each step needs the ones before"
    )]
    pub async fn build(config: &Config) -> anyhow::Result<Arc<Self>> {
        let db = connect_db(
            &config.common.database_url,
            config.common.database_max_connections,
        )
        .await?;
        let cache = Arc::new(match &config.common.cache_redis_url {
            Some(url) => Cache::redis(url, &config.common.cache_prefix, config.cache_ttl)
                .context("CACHE_REDIS_URL")?
                .with_redirect_tier(),
            None => Cache::memory(config.cache_ttl),
        });
        let settings = storage::settings::load(
            &db,
            storage::settings::Overrides {
                visitor_hash_salt: config.visitor_hash_salt.clone(),
                short_code_secret: config.short_code_secret.clone(),
            },
        )
        .await
        .context("loading deployment_settings")?;
        let instance = config.common.instance_name();
        let metrics = Metrics::new(&instance);
        metrics.register_cache(cache.metrics());
        let counters = counters_here(config, &db, &settings.deployment_id).await?;
        let warmer = match (&config.redis_url, config.cache_warm_on_write) {
            (_, false) => Warmer::Off,
            (None, true) => Warmer::InProcess,
            (Some(url), true) => Warmer::Queue(Arc::new(
                JobQueue::connect(url, Some(&config.common.warm_queue))
                    .await
                    .context("REDIS_URL (warm queue)")?,
            )),
        };
        let webhooks = crate::webhooks::WebhookHub::start(config, &db, metrics.webhooks.clone())?;
        let (sink, rollups_here) = click_sink(
            config,
            &db,
            &counters,
            &cache,
            &metrics,
            &webhooks.click_hooks,
        )
        .await?;
        let click_queue = match &sink {
            Sink::Queue { queue, .. } => Some(queue.clone()),
            Sink::Embedded { .. } => None,
        };
        let alerts = crate::alerts::AlertIntake::build(config, metrics.alerts.clone()).await?;
        let clicks = ClickRecorder::start(sink, config.click_durability, metrics.clicks.clone());
        let link_checks = crate::health::LinkChecks::build(config, &metrics).await?;
        let queues = monitor(
            config,
            &metrics,
            &clicks,
            click_queue,
            &warmer,
            &alerts,
            &link_checks,
        )
        .await?;
        let rate_limits = crate::limits::RateLimits::build(config, metrics.limits.clone())
            .await
            .context("rate limits")?
            .map(Arc::new);
        let api_keys = config.common.require_api_key.then(|| {
            Arc::new(crate::keys::KeyGuard {
                db: db.clone(),
                guard_analytics: config.require_api_key_for_analytics,
            })
        });
        let state = Arc::new(Self {
            click_limits: ClickLimits::for_config(config, &db).context("click limits")?,
            link_passwords: link_passwords(config, &metrics)?,
            rate_limits,
            api_keys,
            request_timeout: (config.request_timeout_seconds > 0)
                .then(|| std::time::Duration::from_secs(config.request_timeout_seconds)),
            max_concurrent_requests: (config.max_concurrent_requests > 0)
                .then_some(config.max_concurrent_requests),
            db,
            cache,
            clicks,
            counters,
            codes: CodeGenerator::new(&settings.short_code_secret),
            warmer,
            metrics,
            templates: crate::html::templates()?,
            instance,
            public_base_url: config
                .public_base_url
                .clone()
                .map(|u| u.trim_end_matches('/').to_owned()),
            debug_routes: config.enable_incident_debug_routes,
            visitor_salt: settings.visitor_hash_salt,
            deployment_id: settings.deployment_id,
            trusted_proxy: config.trusted_proxy,
            alerts,
            queues,
            webhooks,
            rollups: RollupStatus {
                every_seconds: config.common.rollup_every_seconds,
                here: rollups_here,
            },
            link_checks,
        });
        crate::health::LinkChecks::spawn_schedule(&state, config.common.link_health_every_seconds);
        Ok(state)
    }
}
