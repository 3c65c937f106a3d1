//! The link health schedule: every `LINK_HEALTH_EVERY_SECONDS` the active links with
//! `health_check` on are enqueued as `check_links` jobs of [`storage::health::BATCH`] links.
//!
//! Every worker looks often (every half period, between 0.5 and 5 s), but a period is claimed
//! by one of them: `SET <prefix>:health:schedule NX PX <period>` on the queue's Redis, so
//! however many workers run, one enqueues per period, and a worker that dies does not stop
//! the schedule (the claim expires). A period whose jobs are still waiting enqueues nothing,
//! so slow checks never pile up.

use std::sync::Arc;
use std::time::Duration;

use jobs::{CheckLinks, JobQueue};

use crate::WorkerState;

/// Runs forever (returns at once when the schedule is off); errors are logged and the next
/// period tries again.
pub async fn run(state: Arc<WorkerState>, queue: Arc<JobQueue>) {
    let every = state.config.common.link_health_every_seconds;
    if every == 0 {
        return;
    }
    let period = Duration::from_secs(every);
    let look = (period / 2).clamp(Duration::from_millis(500), Duration::from_secs(5));
    let key = format!("{}:health:schedule", state.config.common.cache_prefix);
    let holder = state.config.common.instance_name();
    loop {
        match claim(&queue, &key, &holder, period).await {
            Ok(true) => {
                if let Err(e) = enqueue(&state, &queue).await {
                    tracing::warn!(error = %e, "enqueueing link health checks failed");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "claiming the link health period failed"),
        }
        tokio::time::sleep(look).await;
    }
}

/// True when this worker claimed the period.
async fn claim(
    queue: &JobQueue,
    key: &str,
    holder: &str,
    period: Duration,
) -> Result<bool, redis::RedisError> {
    let mut conn = queue.connection();
    let set: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg(holder)
        .arg("NX")
        .arg("PX")
        .arg(u64::try_from(period.as_millis()).unwrap_or(u64::MAX))
        .query_async(&mut conn)
        .await?;
    Ok(set.is_some())
}

async fn enqueue(state: &WorkerState, queue: &JobQueue) -> anyhow::Result<()> {
    let waiting = queue.depth().await?.pending();
    if waiting > 0 {
        tracing::info!(
            waiting,
            "link health checks of the last period still waiting; none enqueued"
        );
        return Ok(());
    }
    let ids = storage::health::checked_links(&state.db).await?;
    for batch in ids.chunks(storage::health::BATCH) {
        queue
            .push_job(&CheckLinks {
                url_ids: batch.to_vec(),
                reason: "scheduled".to_owned(),
            })
            .await?;
    }
    if !ids.is_empty() {
        tracing::info!(links = ids.len(), "link health checks enqueued");
    }
    Ok(())
}
