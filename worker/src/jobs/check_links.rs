//! `check_links`: probes the targets of a batch of links and records what it found; a link
//! that turns broken (or healthy again) gets its caches switched on every api instance and an
//! alert enqueued on the alert queue ([`storage::health`]). Enqueued by the schedule
//! ([`crate::link_health`]) and by `POST /urls/<id>/health/check`. Idempotent: a status's
//! effects are done once, marked on the link's row; a database or queue failure is retried by
//! the queue.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data, Monitor};
use apalis_redis::RedisStorage;
use jobs::{CheckLinks, ClickBatch, LinkHealth};
use storage::health::Outcome;

use crate::WorkerState;

pub async fn check_links(
    job: CheckLinks,
    state: Data<Arc<WorkerState>>,
) -> Result<(), BoxDynError> {
    let series = state.metrics.queue(&state.config.common.health_queue);
    let started = std::time::Instant::now();
    let result = state
        .health
        .check_links(
            &state.db,
            &state.cache,
            state.alert_queue.as_ref(),
            &job.url_ids,
        )
        .await;
    series.duration.observe(started.elapsed().as_secs_f64());
    match result {
        Ok(outcomes) => {
            series.processed.inc();
            let failed = outcomes
                .iter()
                .filter(|(_, o)| *o == Outcome::Failed)
                .count();
            tracing::info!(job.name = LinkHealth::NAME, reason = %job.reason, links = job.url_ids.len(), failed, "links checked");
            Ok(())
        }
        Err(e) => {
            series.failed.inc();
            series.retried.inc();
            tracing::warn!(job.name = LinkHealth::NAME, reason = %job.reason, error = %e, "link health checks failed; will retry");
            Err(e.into())
        }
    }
}

/// One worker for the health queue, on the click storage's connection.
pub fn register(
    monitor: Monitor,
    state: &Arc<WorkerState>,
    clicks: &RedisStorage<ClickBatch>,
) -> Monitor {
    register_queue!(
        monitor,
        state,
        clicks,
        CheckLinks,
        &state.config.common.health_queue,
        LinkHealth::NAME,
        1,
        check_links,
    )
}
