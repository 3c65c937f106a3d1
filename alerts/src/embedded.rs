//! The in-process alert queue of the embedded default (no `REDIS_URL`): the same job body as
//! `curtain-worker` ([`Deliverer::deliver`]) with the retry schedule apalis-redis applies (a
//! failed attempt comes back after 1, 2, 3 ... retry units, at most
//! [`jobs::queue::MAX_ATTEMPTS`] attempts, then dead). Jobs run concurrently, as on several
//! workers. Nothing here survives a restart: durability needs the Redis queue.
//!
//! [`EmbeddedQueue::depth`] reports its jobs by state the way [`jobs::JobQueue::depth`] reads
//! the Redis queue's keys, for the api's metrics and queue page.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jobs::AlertDelivery;
use tokio::sync::mpsc;

use crate::deliver::{Deliverer, DeliveryError};

#[derive(Clone)]
pub struct EmbeddedQueue {
    tx: mpsc::UnboundedSender<(AlertDelivery, usize)>,
    stats: Arc<Stats>,
}

/// Jobs by state. Each job is counted in one state at a time: a state is entered (`+1`)
/// before the one it leaves is decremented, so a reading never wraps below zero.
#[derive(Default)]
struct Stats {
    ready: AtomicU64,
    /// Failed attempts waiting for their back-off.
    scheduled: AtomicU64,
    running: AtomicU64,
    dead: AtomicU64,
    completed: AtomicU64,
}

fn dec(counter: &AtomicU64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
}

impl EmbeddedQueue {
    /// Starts the runner; `retry_unit` is the back-off step (1 s in production).
    #[must_use]
    pub fn start(deliverer: Arc<Deliverer>, retry_unit: Duration) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(AlertDelivery, usize)>();
        let requeue = tx.clone();
        let stats = Arc::new(Stats::default());
        let shared = stats.clone();
        tokio::spawn(async move {
            while let Some((job, attempt)) = rx.recv().await {
                let (deliverer, requeue, stats) =
                    (deliverer.clone(), requeue.clone(), shared.clone());
                stats.running.fetch_add(1, Ordering::Relaxed);
                dec(&stats.ready);
                tokio::spawn(async move {
                    run(&deliverer, job, attempt, retry_unit, requeue, &stats).await;
                });
            }
        });
        Self { tx, stats }
    }

    /// Enqueues a delivery (never blocks).
    pub fn push(&self, job: AlertDelivery) {
        self.stats.ready.fetch_add(1, Ordering::Relaxed);
        if self.tx.send((job, 1)).is_err() {
            dec(&self.stats.ready);
        }
    }

    /// The jobs by state, as [`jobs::JobQueue::depth`] reports a Redis queue (in process
    /// nothing waits to be promoted, is finished-but-kept, or has an age worth reading: a job
    /// ready here is started at once).
    #[must_use]
    pub fn depth(&self) -> jobs::QueueDepth {
        let s = &self.stats;
        jobs::QueueDepth {
            ready: s.ready.load(Ordering::Relaxed),
            future: s.scheduled.load(Ordering::Relaxed),
            running: s.running.load(Ordering::Relaxed),
            dead: s.dead.load(Ordering::Relaxed),
            ..jobs::QueueDepth::default()
        }
    }

    /// Deliveries that succeeded since start-up.
    #[must_use]
    pub fn completed(&self) -> u64 {
        self.stats.completed.load(Ordering::Relaxed)
    }

    /// Runners alive: 1 while the dispatching task runs.
    #[must_use]
    pub fn workers_alive(&self) -> u64 {
        u64::from(!self.tx.is_closed())
    }
}

async fn run(
    deliverer: &Deliverer,
    job: AlertDelivery,
    attempt: usize,
    retry_unit: Duration,
    requeue: mpsc::UnboundedSender<(AlertDelivery, usize)>,
    stats: &Arc<Stats>,
) {
    let outcome = deliverer.deliver(&job).await;
    match &outcome {
        Ok(_) => {
            stats.completed.fetch_add(1, Ordering::Relaxed);
        }
        Err(DeliveryError::Retryable(_)) if attempt < jobs::queue::MAX_ATTEMPTS => {
            stats.scheduled.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            stats.dead.fetch_add(1, Ordering::Relaxed);
        }
    }
    dec(&stats.running);
    match outcome {
        Ok(_) => {}
        Err(DeliveryError::Permanent(reason)) => {
            deliverer.metrics.dead.inc();
            tracing::error!(job.name = jobs::DeliverAlert::NAME, delivery.id = %job.delivery_id, error = %reason, "alert delivery dead");
        }
        Err(DeliveryError::Retryable(reason)) if attempt >= jobs::queue::MAX_ATTEMPTS => {
            deliverer.metrics.dead.inc();
            tracing::error!(job.name = jobs::DeliverAlert::NAME, delivery.id = %job.delivery_id, attempt, error = %reason, "alert delivery dead: attempts exhausted");
        }
        Err(DeliveryError::Retryable(reason)) => {
            tracing::warn!(job.name = jobs::DeliverAlert::NAME, delivery.id = %job.delivery_id, attempt, error = %reason, "alert delivery failed; will retry");
            let delay = retry_unit * u32::try_from(attempt).unwrap_or(u32::MAX);
            let stats = stats.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                stats.ready.fetch_add(1, Ordering::Relaxed);
                dec(&stats.scheduled);
                if requeue.send((job, attempt + 1)).is_err() {
                    dec(&stats.ready);
                }
            });
        }
    }
}
