//! Queue upkeep that apalis-redis 1.0 does not do, run in every worker process: promote due
//! jobs in bounded chunks (the backlog wedge), prune finished jobs and the records of dead
//! workers (unbounded Redis growth), export queue depth and age from the keys (the broken
//! stats API), and mirror counter-shard failure counts into metrics. Every queue the worker
//! consumes gets the same upkeep (clicks, alert deliveries); the click queue's depth also
//! feeds Curtain's own alert conditions ([`crate::conditions`]).

use std::sync::Arc;
use std::time::Duration;

use jobs::{JobQueue, QueueDepth};

use crate::WorkerState;

const PROMOTE_EVERY: Duration = Duration::from_millis(100);
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
const PRUNE_CHUNK: usize = 1_000;

/// Runs forever over `queues` (the click queue first); errors are logged and retried on the
/// next tick.
pub async fn run(state: Arc<WorkerState>, queues: Vec<Arc<JobQueue>>) {
    let mut last_housekeeping = tokio::time::Instant::now();
    let mut previous = storage::counters::ShardStats::default();
    let mut worker_records_cursors = vec![0; queues.len()];
    let mut conditions = crate::conditions::Conditions::new(&state, &queues);
    loop {
        for queue in &queues {
            if let Err(e) = queue.promote_all_due().await {
                tracing::warn!(error = %e, queue = queue.name(), "promoting due jobs failed");
            }
        }
        if last_housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
            last_housekeeping = tokio::time::Instant::now();
            for (queue, cursor) in queues.iter().zip(worker_records_cursors.iter_mut()) {
                prune(&state, queue).await;
                match queue.prune_dead_worker_records(*cursor).await {
                    Ok((next, removed)) => {
                        *cursor = next;
                        state.metrics.worker_records_pruned.inc_by(removed);
                    }
                    Err(e) => tracing::warn!(error = %e, "pruning dead worker records failed"),
                }
            }
            let mut depths = Vec::with_capacity(queues.len());
            for queue in &queues {
                depths.push(export_depth(&state, queue).await);
            }
            if let Some(Some(clicks)) = depths.first() {
                conditions.check(&state, clicks).await;
            }
            let snapshot = state.counters.stats();
            state
                .metrics
                .shard_failures
                .inc_by(snapshot.failures - previous.failures);
            state
                .metrics
                .shard_failovers
                .inc_by(snapshot.failovers - previous.failovers);
            previous = snapshot;
        }
        tokio::time::sleep(PROMOTE_EVERY).await;
    }
}

async fn prune(state: &WorkerState, queue: &JobQueue) {
    loop {
        match queue.prune_finished(PRUNE_CHUNK).await {
            Ok(n) => {
                state.metrics.jobs_pruned.inc_by(n);
                if n < PRUNE_CHUNK as u64 {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "pruning finished jobs failed");
                return;
            }
        }
    }
}

async fn export_depth(state: &WorkerState, queue: &JobQueue) -> Option<QueueDepth> {
    let name = queue.name();
    match queue.depth().await {
        Ok(d) => {
            for (label, value) in [
                ("due", d.due),
                ("future", d.future),
                ("ready", d.ready),
                ("running", d.running),
                ("dead", d.dead),
                ("done", d.done),
            ] {
                state
                    .metrics
                    .queue_jobs
                    .with_label_values(&[name, label])
                    .set(value as i64);
            }
            state
                .metrics
                .queue_oldest_age_seconds
                .with_label_values(&[name])
                .set(d.oldest_age_seconds as i64);
            Some(d)
        }
        Err(e) => {
            tracing::warn!(error = %e, queue = name, "reading queue depth failed");
            None
        }
    }
}
