//! `curtain-worker`: apalis worker pools consuming click batches, alert deliveries, cache
//! warming, counter rebuilds and webhook deliveries from Redis.
//!
//! `main.rs` parses [`Config`] and calls [`run`]; tests call [`run`] too. The process serves
//! `/health` and `/metrics`, keeps the queue healthy ([`maintenance`]), and supervises its
//! apalis monitor: one that stops without being asked to (apalis-redis stops workers when
//! Redis drops, sometimes silently) is restarted under new worker names; if it keeps stopping
//! (more than `WORKER_MAX_RESTARTS` times in a minute) the process exits non-zero, naming the
//! jobs still pending.

pub mod coalesce;
pub mod conditions;
pub mod config;
pub mod jobs;
pub mod link_health;
pub mod maintenance;
pub mod metrics;
pub mod reconcile;
pub mod warming;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use apalis::prelude::Monitor;
use apalis_redis::RedisStorage;
use poem::listener::TcpListener;
use poem::web::Json;
use poem::{EndpointExt, Route, Server, get, handler};
use sea_orm::DatabaseConnection;
use storage::cache::Cache;
use storage::counters::Counters;

pub use config::Config;
pub use metrics::WorkerMetrics;

/// What every job handler can reach.
pub struct WorkerState {
    pub config: Config,
    pub db: DatabaseConnection,
    pub counters: Arc<Counters>,
    pub cache: Cache,
    pub metrics: WorkerMetrics,
    /// Alert delivery, when `DISCORD_WEBHOOK_URL` is set.
    pub alerts: Option<Arc<alerts::Deliverer>>,
    /// Where click jobs hand their batches, to be ingested together.
    pub coalescer: coalesce::Coalescer,
    /// Link health checks (`check_links` jobs).
    pub health: storage::health::Checker,
    /// Where the health checks' alerts go.
    pub alert_queue: Arc<::jobs::JobQueue>,
    /// Posts webhook deliveries (`deliver_webhook` jobs).
    pub webhooks: Arc<webhooks::Sender>,
    /// The subscribers of `link.clicked`, cached for ingestion.
    pub click_hooks: storage::webhooks::ClickHooks,
}

#[handler]
#[expect(
    clippy::needless_pass_by_value,
    reason = "poem extractors are taken by value"
)]
fn health(instance: poem::web::Data<&Arc<String>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "instance": instance.as_str() }))
}

#[handler]
#[expect(
    clippy::needless_pass_by_value,
    reason = "poem extractors are taken by value"
)]
fn render_metrics(metrics: poem::web::Data<&WorkerMetrics>) -> String {
    metrics.render()
}

/// `/health` and `/metrics` on `WORKER_LISTEN`, in a task of their own.
fn serve_http(
    config: &Config,
    state: &WorkerState,
    instance: String,
) -> tokio::task::JoinHandle<()> {
    let db = config.common.require_api_key.then(|| state.db.clone());
    let app = Route::new()
        .at("/health", get(health))
        .at(
            "/metrics",
            get(render_metrics).around(move |ep, req| admin_only(db.clone(), ep, req)),
        )
        .data(Arc::new(instance))
        .data(state.metrics.clone());
    let listener = TcpListener::bind(config.listen);
    tokio::spawn(async move {
        if let Err(e) = Server::new(listener).run(app).await {
            tracing::error!(error = %e, "worker http server stopped");
        }
    })
}

/// With `CURTAIN_REQUIRE_API_KEY=true` (`db` set), `/metrics` needs an `admin` key, as on
/// curtain-api.
async fn admin_only<E: poem::Endpoint>(
    db: Option<DatabaseConnection>,
    ep: E,
    req: poem::Request,
) -> poem::Result<poem::Response> {
    use poem::IntoResponse;
    use storage::api_keys;
    if let Some(db) = db {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let token = api_keys::presented(header("x-api-key"), header("authorization"));
        if let Err(refusal) = api_keys::authorize(&db, token, api_keys::Scope::Admin).await {
            let status = poem::http::StatusCode::from_u16(refusal.status())
                .unwrap_or(poem::http::StatusCode::UNAUTHORIZED);
            return Ok(poem::Response::builder()
                .status(status)
                .content_type("application/json")
                .header("www-authenticate", "Bearer realm=\"curtain\"")
                .body(serde_json::json!({ "error": refusal.message() }).to_string()));
        }
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

/// The click, alert, warm, link-health, webhook and counter-rebuild queues, each with its backlog
/// promoted: a backlog left while workers were down must not reach apalis' fetch script at
/// once.
async fn connect_queues(config: &Config) -> anyhow::Result<[Arc<::jobs::JobQueue>; 6]> {
    let mut queues = Vec::with_capacity(6);
    for name in [
        &config.common.click_queue,
        &config.common.alert_queue,
        &config.common.warm_queue,
        &config.common.health_queue,
        &config.common.webhook_queue,
        &config.common.counters_queue,
    ] {
        let queue = ::jobs::JobQueue::connect(&config.redis_url, Some(name))
            .await
            .with_context(|| format!("REDIS_URL (queue {name})"))?;
        let promoted = queue.promote_all_due().await?;
        if promoted > 0 {
            tracing::info!(queue = %name, jobs = promoted, "promoted backlog before starting workers");
        }
        queues.push(Arc::new(queue));
    }
    queues.try_into().map_err(|_| anyhow::anyhow!("six queues"))
}

/// The worker's background loops: queue upkeep over `queues` (the click queue first, the
/// counter-rebuild queue last), counter reconciles, cache warming, the link health schedule
/// (on `health_queue`), deleted links' counters ([`storage::tombstones`]), analytics rollups
/// and the webhook relay (due deliveries become jobs on `webhook_queue`).
fn spawn_upkeep(
    state: &Arc<WorkerState>,
    queues: Vec<Arc<::jobs::JobQueue>>,
    health_queue: Arc<::jobs::JobQueue>,
    webhook_queue: Arc<::jobs::JobQueue>,
) {
    tokio::spawn(webhooks::relay_forever(
        state.db.clone(),
        webhooks::Dispatch::Queue(webhook_queue),
        Duration::from_millis(state.config.common.webhook_relay_ms),
        webhooks::keep(&state.config.common),
        Arc::new(tokio::sync::Notify::new()),
    ));
    if let Some(counters_queue) = queues.last() {
        tokio::spawn(reconcile::run(state.clone(), counters_queue.clone()));
    }
    tokio::spawn(link_health::run(state.clone(), health_queue));
    tokio::spawn(maintenance::run(state.clone(), queues));
    tokio::spawn(warming::run(state.clone()));
    tokio::spawn(storage::tombstones::run_forever(
        state.db.clone(),
        state.counters.clone(),
        Duration::from_secs(2),
    ));
    let rollups = storage::rollup::RollupMetrics::new();
    state.metrics.register_rollups(&rollups);
    tokio::spawn(storage::rollup::run_forever(
        state.db.clone(),
        storage::rollup::Schedule::from_config(&state.config.common),
        rollups,
    ));
}

/// The worker's metrics, with every queue's series created.
fn metrics_for(config: &Config) -> WorkerMetrics {
    let metrics = WorkerMetrics::new(&config.common.click_queue);
    for queue in [
        &config.common.alert_queue,
        &config.common.warm_queue,
        &config.common.counters_queue,
        &config.common.health_queue,
        &config.common.webhook_queue,
    ] {
        let _ = metrics.queue(queue);
    }
    metrics
}

/// The worker's outgoing HTTP clients: the link health checker and the webhook sender.
fn outgoing_clients(
    config: &Config,
    metrics: &WorkerMetrics,
) -> anyhow::Result<(storage::health::Checker, webhooks::Sender)> {
    let health_metrics = storage::health::HealthMetrics::new();
    metrics.register_health(&health_metrics);
    let checker = storage::health::Checker::new(&config.common, health_metrics)
        .context("link health HTTP client")?;
    let sender = webhooks::Sender::new(
        webhooks::Policy::from_config(&config.common),
        metrics.webhooks.clone(),
    )
    .context("webhook client")?;
    Ok((checker, sender))
}

/// Runs the worker until `shutdown` resolves (then `Ok`, in-flight jobs finished). Returns an
/// error, so the process exits non-zero, if the monitor keeps stopping on its own.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Before any HTTPS client is built (reqwest is built without a default provider).
    telemetry::install_crypto_provider();
    let instance = config.common.instance_name();
    let db = storage::db::connect_db(
        &config.common.database_url,
        config.common.database_max_connections,
    )
    .await?;
    let deployment_id = storage::settings::deployment_id(&db)
        .await
        .context("reading the deployment id")?;
    let counters = Counters::for_deployment(
        &config.shards(),
        &config.common.cache_prefix,
        &deployment_id,
    )
    .context("REDIS_SHARDS")?;
    let cache = match &config.common.cache_redis_url {
        Some(url) => Cache::redis(url, &config.common.cache_prefix, Duration::from_mins(1))
            .context("CACHE_REDIS_URL")?,
        None => Cache::memory(Duration::from_mins(1)),
    };
    let [
        queue,
        alert_queue,
        warm_queue,
        health_queue,
        webhook_queue,
        counters_queue,
    ] = connect_queues(&config).await?;
    let metrics = metrics_for(&config);
    let (checker, sender) = outgoing_clients(&config, &metrics)?;
    let alerts = jobs::deliver_alert::deliverer(&config, &alert_queue, &metrics)?;
    metrics.register_cache(cache.metrics());
    let (coalescer, inbox) = coalesce::Coalescer::new(config.click_concurrency);
    let state = Arc::new(WorkerState {
        config: config.clone(),
        db,
        counters: Arc::new(counters),
        cache,
        metrics,
        alerts,
        coalescer,
        health: checker,
        alert_queue: alert_queue.clone(),
        webhooks: Arc::new(sender),
        click_hooks: storage::webhooks::ClickHooks::default(),
    });
    tokio::spawn(coalesce::run(
        Arc::downgrade(&state),
        inbox,
        config.click_ingest_slots,
    ));
    spawn_upkeep(
        &state,
        vec![
            queue.clone(),
            alert_queue,
            warm_queue,
            health_queue.clone(),
            webhook_queue.clone(),
            counters_queue,
        ],
        health_queue,
        webhook_queue,
    );

    let http = serve_http(&config, &state, instance);

    let asked = Arc::new(AtomicBool::new(false));
    let asked_in_signal = asked.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        asked_in_signal.store(true, Ordering::SeqCst);
        tracing::info!("shutting down: in-flight jobs finish, fetched ones go back to the queue");
        let _ = stop_tx.send(true);
    });
    tracing::info!(listen = %config.listen, queue = %config.common.click_queue, concurrency = config.click_concurrency, "curtain-worker running");

    // apalis workers end when their Redis fails (or, with apalis-redis 1.0, silently with
    // Ok). Supervise: run the pools again under new names (the orphans of the old names come
    // back within seconds) unless shutdown was asked; give up, non-zero, if they keep dying.
    let mut recent_restarts: Vec<std::time::Instant> = Vec::new();
    loop {
        let result = run_pools(&config, &state, stop_rx.clone()).await;
        if asked.load(Ordering::SeqCst) {
            http.abort();
            return result.context("worker monitor");
        }
        let pending = queue.depth().await.map(|d| d.pending()).ok();
        state.metrics.pool_restarts.inc();
        tracing::error!(
            ?result,
            ?pending,
            "worker pools stopped on their own; restarting them"
        );
        recent_restarts.retain(|t| t.elapsed() < Duration::from_mins(1));
        recent_restarts.push(std::time::Instant::now());
        if recent_restarts.len() > config.max_restarts_per_minute {
            http.abort();
            anyhow::bail!("worker pools keep stopping ({result:?}); {pending:?} jobs pending");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One run of the apalis monitor with every job's pool, until it ends or `stop` turns true.
async fn run_pools(
    config: &Config,
    state: &Arc<WorkerState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let conn = ::jobs::queue::worker_connection(&config.redis_url)
        .await
        .context("REDIS_URL (workers)")?;
    let storage = RedisStorage::new(conn)
        .with_config(::jobs::queue::queue_config(&config.common.click_queue));
    let monitor = jobs::register(
        Monitor::new().shutdown_timeout(Duration::from_secs(30)),
        state,
        &storage,
    );
    let signal = async move {
        let _ = stop.wait_for(|s| *s).await;
        Ok(())
    };
    monitor
        .run_with_signal(signal)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}
