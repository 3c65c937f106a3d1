//! Click batches ingested together: the click workers hand their batch to one coalescing task
//! and wait for its result, and that task ingests whatever batches are waiting as one
//! ([`storage::ingest::ingest_many`]): one live-link query, one insert statement, one counter
//! update per shard, one cache invalidation. Group commit, as in the api's batcher:
//! while the ingestion slots are busy, batches gather; when one frees, it takes them all, so
//! the groups grow with the load and add no fixed delay.
//!
//! Why: an api process under light or spread load enqueues small batches (tens of clicks), and
//! a job's cost was mostly its round trips to PostgreSQL and Redis (7 ms for 40 clicks), not
//! its rows. Each job is still acknowledged on its own, only once its group is stored and
//! counted; a failure fails every job of the group, each retried by the queue, and ingestion is
//! idempotent per batch, so nothing is lost or counted twice.

use std::sync::{Arc, Weak};

use jobs::ClickBatch;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::WorkerState;

/// Clicks in one group at most (a group may pass it by the last batch taken).
pub const GROUP_MAX_CLICKS: usize = 10_000;

struct Waiting {
    batch: ClickBatch,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle the click jobs hand their batches to.
#[derive(Clone)]
pub struct Coalescer {
    tx: mpsc::Sender<Waiting>,
}

/// The receiving end, until [`run`] takes it.
pub struct CoalescerInbox(mpsc::Receiver<Waiting>);

impl Coalescer {
    /// A coalescer and its inbox; [`run`] the inbox once the worker state holds the handle.
    #[must_use]
    pub fn new(capacity: usize) -> (Self, CoalescerInbox) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx }, CoalescerInbox(rx))
    }

    /// Ingests `batch` with whatever other batches wait with it; `Ok` once it is stored and
    /// counted.
    pub async fn ingest(&self, batch: ClickBatch) -> Result<(), String> {
        let (done, result) = oneshot::channel();
        self.tx
            .send(Waiting { batch, done })
            .await
            .map_err(|_| "the worker is shutting down".to_owned())?;
        result
            .await
            .map_err(|_| "the ingestion task stopped".to_owned())?
    }
}

/// Takes groups of waiting batches and ingests each with up to `slots` groups at once. Ends
/// when the worker state is gone (every handle dropped).
pub async fn run(state: Weak<WorkerState>, inbox: CoalescerInbox, slots: usize) {
    let CoalescerInbox(mut rx) = inbox;
    let slots = Arc::new(Semaphore::new(slots.max(1)));
    loop {
        // A slot first: while every slot is busy, batches gather in the channel.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut clicks = first.batch.clicks.len();
        let mut group = vec![first];
        while clicks < GROUP_MAX_CLICKS {
            match rx.try_recv() {
                Ok(next) => {
                    clicks += next.batch.clicks.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let Some(state) = state.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            let (batches, waiting): (Vec<ClickBatch>, Vec<_>) =
                group.into_iter().map(|w| (w.batch, w.done)).unzip();
            let started = std::time::Instant::now();
            let result = storage::ingest::ingest_many(
                &state.db,
                &state.counters,
                &state.cache,
                Some(&state.click_hooks),
                &batches,
            )
            .await;
            state.metrics.click_ingest_groups.inc();
            state
                .metrics
                .click_ingest_group_seconds
                .observe(started.elapsed().as_secs_f64());
            let result = match result {
                Ok(report) => {
                    state.metrics.clicks_ingested.inc_by(report.inserted);
                    state
                        .metrics
                        .clicks_dropped_deleted
                        .inc_by(report.dropped_deleted);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            };
            drop(permit);
            for done in waiting {
                let _ = done.send(result.clone());
            }
        });
    }
}
