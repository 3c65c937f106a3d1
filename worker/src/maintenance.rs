//! Queue upkeep that apalis-redis 1.0 does not do, run in every worker process: promote due
//! jobs in bounded chunks (the backlog wedge), prune finished jobs and the records of dead
//! workers (unbounded Redis growth), export queue depth and age from the keys (the broken
//! stats API), and mirror counter-shard failure counts into metrics. It also makes sure no
//! job can be lost whatever the moment a worker dies: jobs held by a worker that is no longer
//! registered, or found nowhere at all, go back on the queue, and click jobs apalis-redis
//! buried after 25 failed attempts are scheduled again.
//!
//! Every queue the worker consumes gets this upkeep (clicks, alert deliveries), except the
//! re-drive of dead jobs: a dead alert delivery was refused for good by Discord (or ran out
//! of attempts) and is not run again. The click queue's depth and re-drives feed Curtain's
//! own alert conditions ([`crate::conditions`]).

use std::sync::Arc;
use std::time::Duration;

use jobs::JobQueue;

use crate::WorkerState;
use crate::conditions::ClickHealth;

const PROMOTE_EVERY: Duration = Duration::from_millis(100);
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
const PRUNE_CHUNK: usize = 1_000;
/// How often stranded jobs are looked for (a full pass over the in-flight sets and, when the
/// queue is nearly idle, over the stored job ids).
const STRANDED_SWEEP_EVERY: Duration = Duration::from_secs(2);

/// Runs forever over `queues` (the click queue first); errors are logged and retried on the
/// next tick.
pub async fn run(state: Arc<WorkerState>, queues: Vec<Arc<JobQueue>>) {
    let mut last_housekeeping = tokio::time::Instant::now();
    let mut last_sweep = tokio::time::Instant::now();
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
            let mut health = ClickHealth::default();
            for (index, (queue, cursor)) in queues
                .iter()
                .zip(worker_records_cursors.iter_mut())
                .enumerate()
            {
                let series = state.metrics.queue(queue.name());
                prune(queue, &series).await;
                match queue.prune_dead_worker_records(*cursor).await {
                    Ok((next, removed)) => {
                        *cursor = next;
                        series.worker_records_pruned.inc_by(removed);
                    }
                    Err(e) => tracing::warn!(error = %e, "pruning dead worker records failed"),
                }
                if index == 0 {
                    match queue.redrive_dead(PRUNE_CHUNK).await {
                        Ok(n) if n > 0 => {
                            series.dead_redriven.inc_by(n);
                            health.redriven = n;
                            tracing::error!(
                                jobs = n,
                                "click jobs failed 25 times; scheduled again"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "re-driving dead jobs failed"),
                    }
                }
                let depth = export_depth(&state, queue).await;
                if index == 0 {
                    health.depth = depth;
                }
            }
            conditions.check(&state, &health).await;
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
        if last_sweep.elapsed() >= STRANDED_SWEEP_EVERY {
            last_sweep = tokio::time::Instant::now();
            for queue in &queues {
                match queue.recover_stranded().await {
                    Ok(n) if n > 0 => {
                        state
                            .metrics
                            .queue(queue.name())
                            .stranded_recovered
                            .inc_by(n);
                        tracing::warn!(
                            jobs = n,
                            queue = queue.name(),
                            "stranded jobs put back on the queue"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "looking for stranded jobs failed"),
                }
            }
        }
        tokio::time::sleep(PROMOTE_EVERY).await;
    }
}

async fn prune(queue: &JobQueue, series: &crate::metrics::QueueSeries) {
    loop {
        match queue.prune_finished(PRUNE_CHUNK).await {
            Ok(n) => {
                series.pruned.inc_by(n);
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

async fn export_depth(state: &WorkerState, queue: &JobQueue) -> Option<jobs::QueueDepth> {
    let name = queue.name();
    let depth = match queue.depth().await {
        Ok(d) => {
            for (label, value) in d.by_state() {
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
            state
                .metrics
                .queue_oldest_ready_age_seconds
                .with_label_values(&[name])
                .set(d.oldest_ready_age_seconds as i64);
            Some(d)
        }
        Err(e) => {
            tracing::warn!(error = %e, queue = name, "reading queue depth failed");
            None
        }
    };
    match queue.workers_alive().await {
        Ok(n) => state
            .metrics
            .workers_alive
            .with_label_values(&[name])
            .set(n as i64),
        Err(e) => tracing::warn!(error = %e, "reading live workers failed"),
    }
    depth
}
