//! When the counters are rebuilt without being asked: a shard that answers without its epoch
//! key restarted empty (or was never rebuilt: a new deployment, whose imported events then
//! count at once), and every `COUNTER_RECONCILE_EVERY_SECONDS` all of them are reconciled with
//! the events. Either way a `rebuild_counters` job of every code is enqueued; rebuilds exclude
//! each other, and the next check sees the epoch the rebuild set.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs::{JobQueue, RebuildCounters};

use crate::WorkerState;

const CHECK_EVERY: Duration = Duration::from_secs(5);
/// A rebuild enqueued is not asked for again within this time (it may still be waiting).
const REASK_AFTER: Duration = Duration::from_mins(1);

/// Runs forever; errors are logged and retried on the next check.
pub async fn run(state: Arc<WorkerState>, queue: Arc<JobQueue>) {
    let every = state.config.common.counter_reconcile_every_seconds;
    let mut asked: Option<Instant> = None;
    loop {
        match due(&state, every).await {
            // Asked already, and that rebuild may still be waiting for its turn.
            Some(_) if asked.is_some_and(|at| at.elapsed() < REASK_AFTER) => {}
            // Another worker process asked already (its job waits or runs).
            Some(_) if queue.depth().await.is_ok_and(|d| d.pending() > 0) => {}
            Some(reason) => {
                let job = RebuildCounters {
                    shard: None,
                    code: None,
                    reason,
                };
                match queue.push_job(&job).await {
                    Ok(()) => {
                        tracing::info!(reason = %job.reason, "counter rebuild enqueued");
                        asked = Some(Instant::now());
                    }
                    Err(e) => tracing::warn!(error = %e, "enqueueing a counter rebuild failed"),
                }
            }
            // Done (or never needed): the next need is asked for at once.
            None => asked = None,
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

/// Why every counter should be rebuilt now, if it should.
async fn due(state: &WorkerState, every: u64) -> Option<String> {
    let missing = state.counters.shards_without_epoch().await;
    if !missing.is_empty() {
        return Some(format!(
            "shards {missing:?} hold no epoch key: restarted empty, or never rebuilt"
        ));
    }
    if every == 0 {
        return None;
    }
    let last = state.counters.last_rebuild().await?;
    let age = chrono::Utc::now().timestamp() - last;
    (age >= every as i64).then(|| format!("scheduled: last reconciled {age} s ago"))
}
