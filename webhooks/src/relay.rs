//! The relay: every `WEBHOOK_RELAY_MS` it claims the due deliveries (new ones, and failed ones
//! whose back-off is over) and hands each over: as a `deliver_webhook` job on `WEBHOOK_QUEUE`
//! (worker), or to a task of this process (the api's embedded default). A row is claimed for
//! [`LEASE`]: a job lost on the way (a crash, a queue flush) is claimed again when it ends.

use std::sync::Arc;
use std::time::Duration;

use jobs::{JobQueue, WebhookDelivery};
use sea_orm::{DatabaseConnection, DbErr};
use storage::webhooks;
use tokio::sync::{Notify, Semaphore};

use crate::Sender;

/// How long a claimed delivery is left to its job before the relay takes it again; well past
/// the subscriber's timeout, so a slow attempt is not duplicated.
pub const LEASE: Duration = Duration::from_mins(1);
/// Deliveries claimed per pass.
const PER_PASS: u64 = 200;
/// In-process deliveries at once.
const IN_PROCESS: usize = 16;

/// Where claimed deliveries go.
#[derive(Clone)]
pub enum Dispatch {
    /// Jobs for `curtain-worker`.
    Queue(Arc<JobQueue>),
    /// Attempts made by this process.
    InProcess(Arc<Sender>, Arc<Semaphore>),
}

impl Dispatch {
    #[must_use]
    pub fn in_process(sender: Arc<Sender>) -> Self {
        Self::InProcess(sender, Arc::new(Semaphore::new(IN_PROCESS)))
    }
}

/// One pass: claims the due deliveries and hands them over; returns how many.
pub async fn relay_once(db: &DatabaseConnection, dispatch: &Dispatch) -> Result<usize, DbErr> {
    let now = chrono::Utc::now().naive_utc();
    let lease = chrono::Duration::from_std(LEASE).unwrap_or_default();
    // In process, no more than can start now: a claimed row waiting for a slot would use up
    // its lease.
    let limit = match dispatch {
        Dispatch::Queue(_) => PER_PASS,
        Dispatch::InProcess(_, slots) => PER_PASS.min(slots.available_permits() as u64),
    };
    if limit == 0 {
        return Ok(0);
    }
    let claimed = webhooks::claim_due(db, now, lease, limit).await?;
    for &(id, claim) in &claimed {
        match dispatch {
            Dispatch::Queue(queue) => {
                let job = WebhookDelivery {
                    delivery_id: id,
                    claim: Some(claim),
                };
                if let Err(e) = queue.push_job(&job).await {
                    tracing::warn!(delivery.id = id, error = %e, "enqueueing a webhook delivery failed; released for the next pass");
                    webhooks::release(db, id, now).await?;
                }
            }
            Dispatch::InProcess(sender, slots) => {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (sender, db) = (sender.clone(), db.clone());
                tokio::spawn(async move {
                    if let Err(e) = sender.deliver(&db, id, Some(claim)).await {
                        tracing::warn!(delivery.id = id, error = %e, "webhook delivery: database error; retried after its lease");
                    }
                    drop(permit);
                });
            }
        }
    }
    Ok(claimed.len())
}

/// How often delivered rows past their keep time are deleted.
const PRUNE_EVERY: Duration = Duration::from_mins(10);

/// Runs [`relay_once`] every `every`, and at once when `wake` is notified (a write that just
/// committed deliveries), for the life of the process; every 10 minutes it deletes the rows
/// delivered more than `keep` ago.
pub async fn relay_forever(
    db: DatabaseConnection,
    dispatch: Dispatch,
    every: Duration,
    keep: Duration,
    wake: Arc<Notify>,
) {
    let mut last_prune: Option<std::time::Instant> = None;
    loop {
        match relay_once(&db, &dispatch).await {
            Ok(n) if n > 0 => tracing::debug!(deliveries = n, "webhook deliveries handed over"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "webhook relay pass failed"),
        }
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(std::time::Instant::now());
            let before = chrono::Utc::now().naive_utc()
                - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::days(7));
            match webhooks::prune_delivered(&db, before).await {
                Ok(n) if n > 0 => tracing::info!(deliveries = n, "old webhook deliveries deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning webhook deliveries failed"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = wake.notified() => {}
        }
    }
}
