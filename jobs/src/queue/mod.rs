//! The job queues on Redis (apalis-redis: clicks, alert deliveries), and the maintenance
//! apalis-redis 1.0 is missing. One [`JobQueue`] handle per queue; any job payload.
//!
//! Defects of apalis-redis 1.0 handled here (see `../shared/DEPENDENCIES.md`):
//! - every apalis push lands in `<q>:scheduled` and the fetch script promotes *all* due ids
//!   with one Lua `unpack()`, which fails above ~8,000 ids and wedges every worker: our
//!   producer pushes straight onto `<q>:active` ([`JobQueue::push_job`]), and [`JobQueue::promote_due`]
//!   moves due ids to `<q>:active` in bounded chunks, on a timer in every worker and for the
//!   whole backlog before a worker starts, so the fetch script never sees a large due set;
//! - finished jobs are never deleted: [`JobQueue::prune_finished`] removes them in chunks,
//!   and [`JobQueue::prune_dead_worker_records`] the metadata of workers long gone;
//! - the stats API is broken: [`JobQueue::depth`] reads depth and age from the keys;
//! - the default queue name is a Rust type path: [`queue_config`] always names the queue.
//!
//! Every Redis call has a response timeout, so an unreachable queue fails fast (the api then
//! spools clicks) instead of hanging a redirect.

mod depth;
mod scripts;
mod upkeep;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use serde::Serialize;

use crate::click::{ClickBatch, RecordClicks};
use scripts::{PROMOTE, PRUNE, PRUNE_WORKERS, PUSH};

pub use depth::QueueDepth;
pub use upkeep::{STRANDED_SWEEP_MAX_JOBS, STRANDED_SWEEP_MAX_READY};

/// Jobs promoted per script call: far below Lua's `unpack()` limit.
pub const PROMOTE_CHUNK: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("enqueue failed: {0}")]
    Push(String),
}

/// Worker heartbeat of [`queue_config`]; a worker silent for `MISSED_HEARTBEATS` of them is dead.
const HEARTBEAT: Duration = Duration::from_secs(1);
const MISSED_HEARTBEATS: usize = 3;

/// Executions of a job before apalis-redis moves it to the dead set (hard-coded there: its
/// `max_attempts` is ignored). An execution that fails with a lower attempt number is retried.
pub const MAX_ATTEMPTS: usize = 25;

/// The apalis-redis configuration shared by producers and consumers of a queue.
#[must_use]
pub fn queue_config(queue: &str) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(queue)
        // Orphans of a killed worker come back after 1 s x 3 missed beats, not 300 s.
        .heartbeat_interval(HEARTBEAT)
        .missed_heartbeats(MISSED_HEARTBEATS)
        // One job per fetch: apalis' worker state machine sends heartbeats and acks only
        // between fetches, so a worker holding several fetched jobs goes silent until it has
        // run them all (long enough, under load, to be taken for dead), and a kill makes every
        // finished-but-unacked one run again.
        .batch_size(1)
        .emit_events(false)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Producer and maintenance handle of one queue.
pub struct JobQueue {
    name: String,
    conn: ConnectionManager,
    config: apalis_redis::Config,
    push: redis::Script,
    promote: redis::Script,
    prune: redis::Script,
    prune_workers: redis::Script,
}

/// The connection apalis' workers get: `apalis_redis::connect` has no response timeout and
/// retries a dead Redis for several seconds, so a blackholed queue would hang the pools and a
/// refused one would keep them from noticing. Bounded here: the pools stop within seconds and
/// the worker's supervision restarts them (or gives up, non-zero).
pub async fn worker_connection(url: &str) -> Result<ConnectionManager, QueueError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2);
    Ok(redis::Client::open(url)?
        .get_connection_manager_with_config(config)
        .await?)
}

/// The click queue's handle (the first queue; the name stays for its callers).
pub type ClickQueue = JobQueue;

impl JobQueue {
    /// Connects with bounded timeouts. `queue` defaults to [`RecordClicks::QUEUE`].
    pub async fn connect(url: &str, queue: Option<&str>) -> Result<Self, QueueError> {
        let client = redis::Client::open(url)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2);
        let conn = client
            .get_connection_manager_with_config(manager_config)
            .await?;
        let name = queue.unwrap_or(RecordClicks::QUEUE).to_owned();
        let config = queue_config(&name);
        Ok(Self {
            name,
            conn,
            push: redis::Script::new(PUSH),
            config,
            promote: redis::Script::new(PROMOTE),
            prune: redis::Script::new(PRUNE),
            prune_workers: redis::Script::new(PRUNE_WORKERS),
        })
    }

    #[must_use]
    pub fn config(&self) -> &apalis_redis::Config {
        &self.config
    }

    /// A connection to the queue's Redis (cheap clone).
    #[must_use]
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The queue's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Enqueues a click batch; when this returns `Ok` the batch is in Redis.
    pub async fn push(&self, batch: &ClickBatch) -> Result<(), QueueError> {
        self.push_job(batch).await
    }

    /// Enqueues any job payload (JSON, as apalis-redis decodes it); when this returns `Ok`
    /// the job is in Redis.
    pub async fn push_job<T: Serialize>(&self, job: &T) -> Result<(), QueueError> {
        let payload = serde_json::to_vec(job).map_err(|e| QueueError::Push(e.to_string()))?;
        self.push_encoded(&payload).await
    }

    /// Enqueues a job already encoded as JSON (the api encodes a click batch once, for queue
    /// or spool). One round trip.
    pub async fn push_encoded(&self, payload: &[u8]) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: u64 = self
            .push
            .key(self.config.job_data_hash())
            .key(self.config.active_jobs_list())
            .key(self.config.signal_list())
            .arg(self.config.job_meta_hash())
            .arg(ulid::Ulid::generate().to_string())
            .arg(payload)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod redis_stand_in;

#[cfg(test)]
mod tests;
