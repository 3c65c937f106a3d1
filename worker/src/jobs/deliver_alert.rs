//! `deliver_alert`: one alert group to every Discord webhook (the body is
//! [`alerts::Deliverer::deliver`], shared with the api's embedded queue).
//!
//! Idempotent: each alert confirmed by Discord is marked per webhook with the delivery's id,
//! so a retried or re-delivered job (a worker SIGKILLed mid-delivery) sends only what is
//! missing. Retryable failures (5xx, network, long rate limits) go back to apalis-redis,
//! which retries after 1, 2, 3 ... s; a refusal (400/401/403/404) returns apalis'
//! `AbortError`, so the job ends in `<q>:dead` at once. Both ways to die are counted in
//! `curtain_alerts_dead_total` and logged.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use apalis::prelude::{AbortError, Attempt, BoxDynError, Data, Monitor};
use apalis_redis::RedisStorage;
use jobs::{AlertDelivery, ClickBatch, DeliverAlert};

use crate::WorkerState;

pub async fn deliver_alert(
    job: AlertDelivery,
    attempt: Attempt,
    state: Data<Arc<WorkerState>>,
) -> Result<(), BoxDynError> {
    let Some(deliverer) = state.alerts.as_ref() else {
        // Not reached: the pool is registered only with a webhook configured.
        return Err(Box::new(AbortError::new(
            "no DISCORD_WEBHOOK_URL configured",
        )));
    };
    let series = state.metrics.queue(&state.config.common.alert_queue);
    let started = std::time::Instant::now();
    let outcome = deliverer.deliver(&job).await;
    series.duration.observe(started.elapsed().as_secs_f64());
    if outcome.is_ok() {
        series.processed.inc();
    } else {
        series.failed.inc();
    }
    match outcome {
        Ok(report) => {
            tracing::info!(job.name = DeliverAlert::NAME, delivery.id = %job.delivery_id, alerts = report.delivered, messages = report.messages, suppressed = report.suppressed, "alerts delivered");
            Ok(())
        }
        Err(alerts::DeliveryError::Permanent(reason)) => {
            state.metrics.alerts.dead.inc();
            tracing::error!(job.name = DeliverAlert::NAME, delivery.id = %job.delivery_id, error = %reason, "alert delivery dead");
            Err(Box::new(AbortError::new(reason)))
        }
        Err(alerts::DeliveryError::Retryable(reason)) => {
            if attempt.current() >= jobs::queue::MAX_ATTEMPTS {
                state.metrics.alerts.dead.inc();
                tracing::error!(job.name = DeliverAlert::NAME, delivery.id = %job.delivery_id, attempt = attempt.current(), error = %reason, "alert delivery dead: attempts exhausted");
            } else {
                series.retried.inc();
                tracing::warn!(job.name = DeliverAlert::NAME, delivery.id = %job.delivery_id, attempt = attempt.current(), error = %reason, "alert delivery failed; will retry");
            }
            Err(reason.into())
        }
    }
}

/// The job body's deliverer: markers on the queue's Redis; `None` without a webhook.
pub fn deliverer(
    config: &crate::Config,
    queue: &jobs::JobQueue,
    metrics: &crate::WorkerMetrics,
) -> anyhow::Result<Option<Arc<alerts::Deliverer>>> {
    let webhooks = config.common.discord_webhooks();
    if webhooks.is_empty() {
        tracing::warn!("DISCORD_WEBHOOK_URL is not set: this worker delivers no alerts");
        return Ok(None);
    }
    let dedup = alerts::dedup::Dedup::redis(queue.connection(), &config.common.cache_prefix);
    let deliverer = alerts::Deliverer::new(
        webhooks,
        dedup,
        Duration::from_secs(config.common.alert_repeat_window_seconds),
        metrics.alerts.clone(),
    )
    .context("Discord client")?;
    Ok(Some(Arc::new(deliverer)))
}

/// The alert pool, on the alert queue of the click storage's Redis; none without a webhook
/// (the jobs then wait for a worker that has one).
pub fn register(
    monitor: Monitor,
    state: &Arc<WorkerState>,
    clicks: &RedisStorage<ClickBatch>,
) -> Monitor {
    if state.alerts.is_none() {
        return monitor;
    }
    register_queue!(
        monitor,
        state,
        clicks,
        AlertDelivery,
        &state.config.common.alert_queue,
        DeliverAlert::NAME,
        state.config.alert_concurrency.max(1),
        deliver_alert,
    )
}
