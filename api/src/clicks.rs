//! Click capture: every redirect becomes one [`Click`] with an id given at the edge, handed to
//! the click pipeline without touching the database on the request path.
//!
//! Two pipelines, one interface:
//! - **queue** (`REDIS_URL` set): clicks are grouped into [`ClickBatch`]es by a single batching
//!   task and enqueued on the apalis-redis click queue for `curtain-worker`. Batching is
//!   group-commit: whatever arrived while the previous push was in flight goes in the next one,
//!   so batches grow with load and add no fixed delay. With `CLICK_DURABILITY=ack` (default) a
//!   redirect is answered only once its click is in Redis or, if the queue is unreachable or
//!   silent for [`crate::spool::PUSH_TIMEOUT`], in the durable spool ([`crate::spool`]), from
//!   which it is delivered later: never before, however long that takes. With `fast` the
//!   redirect does not wait; a crash loses at most the clicks of the batch being formed.
//! - **embedded** (no `REDIS_URL`): the same batches are ingested in process with the same code
//!   as the worker ([`storage::ingest::ingest`]).
//!
//! Nothing is dropped silently: a full in-memory queue is counted as lost in a metric and logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jobs::{Click, ClickBatch, ClickQueue};
use prometheus::IntCounter;
use sea_orm::DatabaseConnection;
use storage::cache::Cache;
use storage::counters::Counters;
use tokio::sync::{mpsc, oneshot};

use crate::spool::{self, Spool};

const CHANNEL_CAPACITY: usize = 100_000;
/// Clicks per job at most.
pub const BATCH_MAX: usize = 2_000;
/// Scheduler yields before a batch is cut.
const LINGER_YIELDS: usize = 4;

/// When a redirect is answered relative to its click's durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// The 302 is sent once the click is in the queue's storage (or the durable spool).
    Ack,
    /// Fire and forget: the 302 does not wait for the click.
    Fast,
}

/// Counters of the click path.
#[derive(Clone)]
pub struct ClickMetrics {
    pub recorded: IntCounter,
    pub enqueued: IntCounter,
    pub spooled: IntCounter,
    pub dropped_deleted: IntCounter,
    pub lost_overflow: IntCounter,
}

enum Msg {
    Click(Box<Click>, Option<oneshot::Sender<()>>),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct ClickRecorder {
    tx: mpsc::Sender<Msg>,
    durability: Durability,
    metrics: ClickMetrics,
    progress: Arc<Progress>,
}

/// What the batching task is doing, for the in-process queue's depth (embedded default).
#[derive(Default)]
struct Progress {
    /// Clicks of the batch being delivered.
    running: AtomicU64,
    /// Clicks delivered (ingested, or handed to the queue or spool) since start-up.
    completed: AtomicU64,
    /// When the batch being delivered was cut: every click waiting arrived later, unless the
    /// batch was cut full ([`BATCH_MAX`]).
    cut_at: std::sync::Mutex<Option<Instant>>,
}

/// Where batches go.
pub enum Sink {
    Embedded {
        db: DatabaseConnection,
        counters: Arc<Counters>,
        cache: Arc<Cache>,
        /// The subscribers of `link.clicked` (each batch becomes a delivery).
        hooks: Arc<storage::webhooks::ClickHooks>,
    },
    Queue {
        queue: Arc<ClickQueue>,
        spool: Arc<Spool>,
    },
}

impl ClickRecorder {
    /// Starts the batching task for `sink`.
    #[must_use]
    pub fn start(sink: Sink, durability: Durability, metrics: ClickMetrics) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let progress = Arc::new(Progress::default());
        let sink = Arc::new(sink);
        let batch_metrics = metrics.clone();
        tokio::spawn(batcher(rx, progress.clone(), move |batch| {
            let (sink, metrics) = (sink.clone(), batch_metrics.clone());
            async move { deliver(&sink, batch, &metrics).await }
        }));
        Self {
            tx,
            durability,
            metrics,
            progress,
        }
    }

    /// The in-process click queue by state, counted in clicks (the embedded default's "click
    /// queue"): ready = clicks waiting in the channel, running = the batch being ingested.
    /// The oldest ready age is a lower bound: the time since the running batch was cut.
    #[must_use]
    pub fn depth(&self) -> jobs::QueueDepth {
        let ready = (self.tx.max_capacity() - self.tx.capacity()) as u64;
        let cut_at = *self
            .progress
            .cut_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        jobs::QueueDepth {
            ready,
            running: self.progress.running.load(Ordering::Relaxed),
            oldest_ready_age_seconds: cut_at
                .filter(|_| ready > 0)
                .map_or(0, |at| at.elapsed().as_secs()),
            ..jobs::QueueDepth::default()
        }
    }

    /// Clicks delivered by the batching task since start-up.
    #[must_use]
    pub fn completed(&self) -> u64 {
        self.progress.completed.load(Ordering::Relaxed)
    }

    /// 1 while the batching task runs, else 0.
    #[must_use]
    pub fn workers_alive(&self) -> u64 {
        u64::from(!self.tx.is_closed())
    }

    /// Records a click; with `ack` durability, returns once it is durable (in the queue or
    /// the spool), and never before: the batcher bounds each push and spools what the queue
    /// did not take, so the wait is bounded by the queue's timeout plus a file write.
    pub async fn record(&self, click: Click) {
        match self.durability {
            Durability::Ack => {
                let (done, wait) = oneshot::channel();
                // A full channel is back-pressure here, not a lost click.
                if self
                    .tx
                    .send(Msg::Click(Box::new(click), Some(done)))
                    .await
                    .is_err()
                    || wait.await.is_err()
                {
                    // Only if the batching task is gone (it never drops a waiter otherwise).
                    self.metrics.lost_overflow.inc();
                    tracing::error!("click pipeline stopped: click lost");
                }
            }
            Durability::Fast => {
                if self.tx.try_send(Msg::Click(Box::new(click), None)).is_err() {
                    self.metrics.lost_overflow.inc();
                    tracing::error!("click queue full: click lost");
                }
            }
        }
    }

    /// Waits until every click recorded before this call has been handed on: ingested
    /// (embedded) or enqueued/spooled (queue).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Groups clicks into batches and hands each to `deliver`, releasing the waiters of a batch
/// (and of flushes) only once `deliver` has returned; `progress` counts them for the queue page.
async fn batcher<F, Fut>(mut rx: mpsc::Receiver<Msg>, progress: Arc<Progress>, mut deliver: F)
where
    F: FnMut(ClickBatch) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut clicks = Vec::with_capacity(BATCH_MAX);
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        // Let the requests already running on this runtime hand in their clicks first: a few
        // yields grow the batch (fewer, larger pushes) at the cost of microseconds, not a timer.
        for _ in 0..LINGER_YIELDS {
            tokio::task::yield_now().await;
        }
        let mut next = Some(first);
        // Group commit: take what is already waiting, without waiting for more.
        while let Some(msg) = next.take() {
            match msg {
                Msg::Click(click, done) => {
                    clicks.push(*click);
                    waiters.extend(done);
                }
                Msg::Flush(done) => {
                    waiters.push(done);
                    break;
                }
            }
            if clicks.len() >= BATCH_MAX {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !clicks.is_empty() {
            let n = clicks.len() as u64;
            let batch = ClickBatch::new(std::mem::take(&mut clicks));
            *progress
                .cut_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
            progress.running.store(n, Ordering::Relaxed);
            deliver(batch).await;
            progress.completed.fetch_add(n, Ordering::Relaxed);
            progress.running.store(0, Ordering::Relaxed);
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// Hands a batch to its sink; never gives up on it.
async fn deliver(sink: &Sink, batch: ClickBatch, metrics: &ClickMetrics) {
    let n = batch.clicks.len() as u64;
    match sink {
        Sink::Queue { queue, spool } => {
            // Encoded once: the same bytes go to the queue or, if it is unreachable, the spool.
            let payload = match serde_json::to_vec(&batch) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, clicks = n, "cannot encode click batch: clicks lost");
                    metrics.lost_overflow.inc_by(n);
                    return;
                }
            };
            // While the queue is known to be down the batch goes straight to the spool: each
            // redirect then waits for a file write, not for another push to time out. The
            // spool's drainer finds out when the queue answers again.
            if !spool.queue_down() {
                match spool::push_within(queue, &payload).await {
                    Ok(()) => {
                        metrics.enqueued.inc_by(n);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, clicks = n, "click queue unavailable; spooling batch");
                        spool.mark_queue_down();
                    }
                }
            }
            // A push that timed out may still land in Redis later: the batch is then both
            // queued and spooled, and ingestion counts it once (click ids, batch id).
            spool_until_stored(spool, &batch.batch_id, &payload).await;
            metrics.spooled.inc_by(n);
        }
        Sink::Embedded {
            db,
            counters,
            cache,
            hooks,
        } => {
            let mut backoff = Duration::from_millis(50);
            loop {
                match storage::ingest::ingest(db, counters, cache, Some(hooks), &batch).await {
                    Ok(report) => {
                        metrics.recorded.inc_by(report.inserted);
                        metrics.dropped_deleted.inc_by(report.dropped_deleted);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, clicks = n, "click ingestion failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
        }
    }
}

async fn spool_until_stored(spool: &Spool, batch_id: &str, payload: &[u8]) {
    let mut backoff = Duration::from_millis(50);
    while let Err(e) = spool.store(batch_id, payload).await {
        tracing::error!(error = %e, "cannot write the click spool; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
#[path = "clicks_tests.rs"]
mod tests;
