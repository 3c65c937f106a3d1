//! `curtain-worker`: apalis worker pools consuming click batches from Redis.
//!
//! `main.rs` parses [`Config`] and calls [`run`]; tests call [`run`] too. The process serves
//! `/health` and `/metrics`, keeps the queue healthy ([`maintenance`]), and exits non-zero if
//! its monitor stops without being asked to (apalis-redis can stop workers silently).

pub mod config;
pub mod jobs;
pub mod maintenance;
pub mod metrics;

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
    pub counters: Counters,
    pub cache: Cache,
    pub metrics: WorkerMetrics,
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

/// Runs the worker until `shutdown` resolves. Returns an error if the monitor stopped on its
/// own (with the number of jobs still pending), so the process exits non-zero.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let instance = config.instance_name();
    let db = api::state::connect_db(&config.database_url, config.database_max_connections).await?;
    let counters =
        Counters::sharded(&config.shards(), &config.cache_prefix).context("REDIS_SHARDS")?;
    let cache = match &config.cache_redis_url {
        Some(url) => Cache::redis(url, &config.cache_prefix, Duration::from_mins(1))
            .context("CACHE_REDIS_URL")?,
        None => Cache::memory(Duration::from_mins(1)),
    };
    let queue = Arc::new(
        ::jobs::ClickQueue::connect(&config.redis_url, Some(&config.click_queue))
            .await
            .context("REDIS_URL (click queue)")?,
    );
    // A backlog left while workers were down must not reach apalis' fetch script at once.
    let promoted = queue.promote_all_due().await?;
    if promoted > 0 {
        tracing::info!(jobs = promoted, "promoted backlog before starting workers");
    }
    let state = Arc::new(WorkerState {
        config: config.clone(),
        db,
        counters,
        cache,
        metrics: WorkerMetrics::new(&instance),
    });
    tokio::spawn(maintenance::run(state.clone(), queue.clone()));

    let app = Route::new()
        .at("/health", get(health))
        .at("/metrics", get(render_metrics))
        .data(Arc::new(instance))
        .data(state.metrics.clone());
    let listener = TcpListener::bind(config.listen);
    let http = tokio::spawn(async move {
        if let Err(e) = Server::new(listener).run(app).await {
            tracing::error!(error = %e, "worker http server stopped");
        }
    });

    let conn = apalis_redis::connect(config.redis_url.as_str())
        .await
        .context("REDIS_URL (workers)")?;
    let storage =
        RedisStorage::new(conn).with_config(::jobs::queue::queue_config(&config.click_queue));
    let monitor = jobs::register(
        Monitor::new().shutdown_timeout(Duration::from_secs(30)),
        &state,
        &storage,
    );
    tracing::info!(listen = %config.listen, queue = %config.click_queue, concurrency = config.click_concurrency, "curtain-worker running");

    let asked = Arc::new(AtomicBool::new(false));
    let asked_in_signal = asked.clone();
    let signal = async move {
        shutdown.await;
        asked_in_signal.store(true, Ordering::SeqCst);
        tracing::info!("shutting down: in-flight jobs finish, fetched ones go back to the queue");
        Ok(())
    };
    let result = monitor.run_with_signal(signal).await;
    http.abort();
    if asked.load(Ordering::SeqCst) {
        return result.context("worker monitor");
    }
    let pending = queue.depth().await.map(|d| d.pending()).unwrap_or_default();
    anyhow::bail!("worker monitor stopped on its own ({result:?}) with {pending} jobs pending")
}
