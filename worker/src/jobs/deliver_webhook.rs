//! `deliver_webhook`: one attempt of one webhook delivery ([`webhooks::Sender::deliver`]).
//! The back-off lives in the row (`next_attempt_at`, the relay enqueues it again when due),
//! not in apalis-redis, whose retries are fixed at 1, 2, 3 ... s and 25 attempts: a failed
//! POST is a successful job. Only a database error fails the job (the row is unchanged, so
//! the queue's retry makes the same attempt). A delivery no longer pending, or claimed again since the job was made
//! (a stale duplicate), is not posted.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data, Monitor};
use apalis_redis::RedisStorage;
use jobs::{ClickBatch, DeliverWebhook, WebhookDelivery};

use crate::WorkerState;

/// Webhook jobs run at once by this process (each waits on a subscriber, up to 10 s).
const CONCURRENCY: usize = 4;

pub async fn deliver_webhook(
    job: WebhookDelivery,
    state: Data<Arc<WorkerState>>,
) -> Result<(), BoxDynError> {
    let series = state.metrics.queue(&state.config.common.webhook_queue);
    let started = std::time::Instant::now();
    let result = state
        .webhooks
        .deliver(&state.db, job.delivery_id, job.claim)
        .await;
    series.duration.observe(started.elapsed().as_secs_f64());
    if let Err(e) = result {
        series.failed.inc();
        series.retried.inc();
        tracing::warn!(job.name = DeliverWebhook::NAME, delivery.id = job.delivery_id, error = %e, "webhook job failed; will retry");
        return Err(e.into());
    }
    series.processed.inc();
    Ok(())
}

/// The webhook queue's workers, on the click storage's connection.
pub fn register(
    monitor: Monitor,
    state: &Arc<WorkerState>,
    clicks: &RedisStorage<ClickBatch>,
) -> Monitor {
    register_queue!(
        monitor,
        state,
        clicks,
        WebhookDelivery,
        &state.config.common.webhook_queue,
        DeliverWebhook::NAME,
        CONCURRENCY,
        deliver_webhook,
    )
}
