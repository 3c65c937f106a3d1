//! `warm_cache`: stores the redirect targets of links just created or updated, so their first
//! click is a cache hit. Idempotent (it stores what the database holds now, under the version
//! current before it read); a database failure is retried by the queue.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data, Monitor};
use apalis_redis::RedisStorage;
use jobs::{ClickBatch, WarmCache, WarmLinks};

use crate::WorkerState;

pub async fn warm_cache(job: WarmLinks, state: Data<Arc<WorkerState>>) -> Result<(), BoxDynError> {
    let series = state.metrics.queue(&state.config.common.warm_queue);
    let started = std::time::Instant::now();
    let result = storage::warm::warm_links(&state.db, &state.cache, &job.url_ids).await;
    series.duration.observe(started.elapsed().as_secs_f64());
    if let Err(e) = result {
        series.failed.inc();
        series.retried.inc();
        tracing::warn!(job.name = WarmCache::NAME, error = %e, "warm job failed; will retry");
        return Err(e.into());
    }
    series.processed.inc();
    Ok(())
}

/// One worker for the warm queue, on the click storage's connection.
pub fn register(
    monitor: Monitor,
    state: &Arc<WorkerState>,
    clicks: &RedisStorage<ClickBatch>,
) -> Monitor {
    register_queue!(
        monitor,
        state,
        clicks,
        WarmLinks,
        &state.config.common.warm_queue,
        WarmCache::NAME,
        1,
        warm_cache,
    )
}
