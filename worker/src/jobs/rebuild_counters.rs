//! `rebuild_counters`: the real-time counters of a link, a shard or every link rebuilt from the
//! events table ([`storage::counters::Counters::rebuild`]), exact while clicks keep arriving.
//! Enqueued by `curtain-ops counters rebuild`, by the worker's schedule
//! (`COUNTER_RECONCILE_EVERY_SECONDS`) and when a shard is found restarted empty
//! ([`crate::reconcile`]). Another rebuild running is retried by the queue.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data, Monitor};
use apalis_redis::RedisStorage;
use jobs::{ClickBatch, CounterRebuild, RebuildCounters};
use storage::counters::RebuildScope;

use crate::WorkerState;

pub async fn rebuild_counters(
    job: RebuildCounters,
    state: Data<Arc<WorkerState>>,
) -> Result<(), BoxDynError> {
    let series = state.metrics.queue(&state.config.common.counters_queue);
    let scope = RebuildScope::from(&job);
    let started = std::time::Instant::now();
    let result = state.counters.rebuild(&state.db, &scope).await;
    series.duration.observe(started.elapsed().as_secs_f64());
    match result {
        Ok(report) => {
            series.processed.inc();
            state
                .metrics
                .counter_rebuilds
                .with_label_values(&["ok"])
                .inc();
            state.metrics.counter_rebuild_clicks.inc_by(report.clicks);
            tracing::info!(job.name = CounterRebuild::NAME, reason = %job.reason, ?scope, clicks = report.clicks, codes = report.codes, batches_marked = report.batches_marked, stale_keys_removed = report.stale_keys_removed, seconds = report.seconds, "counters rebuilt");
            Ok(())
        }
        Err(e) => {
            series.failed.inc();
            series.retried.inc();
            state
                .metrics
                .counter_rebuilds
                .with_label_values(&["failed"])
                .inc();
            tracing::warn!(job.name = CounterRebuild::NAME, reason = %job.reason, ?scope, error = %e, "counter rebuild failed; will retry");
            Err(e.into())
        }
    }
}

/// One worker for the counter-rebuild queue, on the click storage's connection.
pub fn register(
    monitor: Monitor,
    state: &Arc<WorkerState>,
    clicks: &RedisStorage<ClickBatch>,
) -> Monitor {
    register_queue!(
        monitor,
        state,
        clicks,
        RebuildCounters,
        &state.config.common.counters_queue,
        CounterRebuild::NAME,
        1,
        rebuild_counters,
    )
}
