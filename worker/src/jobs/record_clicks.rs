//! `record_clicks`: one click batch into the database and the real-time counters, ingested
//! together with the batches other click jobs hold at the same moment ([`crate::coalesce`]).
//!
//! Idempotent: events are inserted with `ON CONFLICT (click_id) DO NOTHING` and the counters
//! carry a per-batch marker, so a retried or re-delivered batch counts nothing twice. Clicks of
//! deleted links are dropped and counted, never retried. Database and shard failures are
//! retried by the queue.

use std::sync::Arc;

use apalis::prelude::{Attempt, BoxDynError, Data};
use jobs::ClickBatch;

use crate::WorkerState;

pub async fn record_clicks(
    batch: ClickBatch,
    state: Data<Arc<WorkerState>>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let started = std::time::Instant::now();
    let series = &state.metrics.clicks;
    let oldest = batch.clicks.iter().map(|c| c.at).min();
    let batch_id = batch.batch_id.clone();
    let result = state.coalescer.ingest(batch).await;
    series.duration.observe(started.elapsed().as_secs_f64());
    result.map_err(|e| {
        series.failed.inc();
        // apalis counts this execution before the handler runs: the first one is attempt 1.
        let retried = attempt.current() < jobs::queue::MAX_ATTEMPTS;
        if retried {
            series.retried.inc();
        }
        tracing::warn!(job.name = jobs::RecordClicks::NAME, batch.id = %batch_id, job.attempt = attempt.current(), retried, error = %e, "click batch failed");
        e
    })?;
    series.processed.inc();
    if let Some(oldest) = oldest {
        let lag = (chrono::Utc::now().naive_utc() - oldest)
            .num_milliseconds()
            .max(0) as f64
            / 1000.0;
        state.metrics.ingest_lag_seconds.observe(lag);
    }
    Ok(())
}
