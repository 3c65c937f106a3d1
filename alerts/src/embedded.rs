//! The in-process alert queue of the embedded default (no `REDIS_URL`): the same job body as
//! `curtain-worker` ([`Deliverer::deliver`]) with the retry schedule apalis-redis applies (a
//! failed attempt comes back after 1, 2, 3 ... retry units, at most
//! [`jobs::queue::MAX_ATTEMPTS`] attempts, then dead). Jobs run concurrently, as on several
//! workers. Nothing here survives a restart: durability needs the Redis queue.

use std::sync::Arc;
use std::time::Duration;

use jobs::AlertDelivery;
use tokio::sync::mpsc;

use crate::deliver::{Deliverer, DeliveryError};

#[derive(Clone)]
pub struct EmbeddedQueue {
    tx: mpsc::UnboundedSender<(AlertDelivery, usize)>,
}

impl EmbeddedQueue {
    /// Starts the runner; `retry_unit` is the back-off step (1 s in production).
    #[must_use]
    pub fn start(deliverer: Arc<Deliverer>, retry_unit: Duration) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(AlertDelivery, usize)>();
        let requeue = tx.clone();
        tokio::spawn(async move {
            while let Some((job, attempt)) = rx.recv().await {
                let (deliverer, requeue) = (deliverer.clone(), requeue.clone());
                tokio::spawn(async move {
                    run(&deliverer, job, attempt, retry_unit, requeue).await;
                });
            }
        });
        Self { tx }
    }

    /// Enqueues a delivery (never blocks).
    pub fn push(&self, job: AlertDelivery) {
        let _ = self.tx.send((job, 1));
    }
}

async fn run(
    deliverer: &Deliverer,
    job: AlertDelivery,
    attempt: usize,
    retry_unit: Duration,
    requeue: mpsc::UnboundedSender<(AlertDelivery, usize)>,
) {
    match deliverer.deliver(&job).await {
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
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = requeue.send((job, attempt + 1));
            });
        }
    }
}
