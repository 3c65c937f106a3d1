//! The click queue on Redis (apalis-redis), and the maintenance apalis-redis 1.0 is missing.
//!
//! Defects of apalis-redis 1.0 handled here (see `../shared/DEPENDENCIES.md`):
//! - every apalis push lands in `<q>:scheduled` and the fetch script promotes *all* due ids
//!   with one Lua `unpack()`, which fails above ~8,000 ids and wedges every worker: our
//!   producer pushes straight onto `<q>:active` ([`ClickQueue::push`]), and [`ClickQueue::promote_due`]
//!   moves due ids to `<q>:active` in bounded chunks, on a timer in every worker and for the
//!   whole backlog before a worker starts, so the fetch script never sees a large due set;
//! - finished jobs are never deleted: [`ClickQueue::prune_finished`] removes them in chunks,
//!   and [`ClickQueue::prune_dead_worker_records`] the metadata of workers long gone;
//! - the stats API is broken: [`ClickQueue::depth`] reads depth and age from the keys;
//! - the default queue name is a Rust type path: [`queue_config`] always names the queue.
//!
//! Every Redis call has a response timeout, so an unreachable queue fails fast (the api then
//! spools clicks) instead of hanging a redirect.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::click::{ClickBatch, RecordClicks};

/// Jobs promoted per script call: far below Lua's `unpack()` limit.
pub const PROMOTE_CHUNK: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("enqueue failed: {0}")]
    Push(String),
}

/// Queue depth read from the keys (apalis-redis' own stats API is broken).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepth {
    /// Scheduled jobs already due (not yet promoted).
    pub due: u64,
    /// Scheduled jobs in the future (retries waiting for their back-off).
    pub future: u64,
    /// Jobs ready for a worker (`<q>:active`).
    pub ready: u64,
    /// Jobs held by workers.
    pub running: u64,
    /// Jobs that failed for good (`<q>:dead`).
    pub dead: u64,
    /// Finished jobs not yet pruned.
    pub done: u64,
    /// Age in seconds of the oldest due job, 0 if none.
    pub oldest_age_seconds: u64,
}

impl QueueDepth {
    /// Jobs that still have to run.
    #[must_use]
    pub fn pending(&self) -> u64 {
        self.due + self.future + self.ready + self.running
    }
}

/// The apalis-redis configuration shared by producers and consumers of a queue.
#[must_use]
pub fn queue_config(queue: &str) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(queue)
        // Orphans of a killed worker come back after 1 s x 3 missed beats, not 300 s.
        .heartbeat_interval(Duration::from_secs(1))
        .missed_heartbeats(3)
        .batch_size(4)
        .emit_events(false)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

const PROMOTE: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then
  redis.call('RPUSH', KEYS[2], unpack(ids))
  redis.call('ZREM', KEYS[1], unpack(ids))
  redis.call('DEL', KEYS[3])
  redis.call('LPUSH', KEYS[3], 1)
end
return #ids
";

const PRUNE: &str = r"
local ids = redis.call('SPOP', KEYS[1], tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('DEL', ARGV[1] .. ':' .. id)
end
return #ids
";

/// Deletes the metadata hashes of workers no longer registered: apalis-redis removes a dead
/// worker from the workers set when it re-enqueues its orphans, but never its metadata hash,
/// so every restart would leave one behind for good.
/// KEYS: metadata hashes found by SCAN. ARGV[1]: the workers set, ARGV[2]: the key prefix.
const PRUNE_WORKERS: &str = r"
local removed = 0
for _, key in ipairs(KEYS) do
  local name = string.sub(key, #ARGV[2] + 1)
  if not redis.call('ZSCORE', ARGV[1], name) then
    redis.call('DEL', key)
    removed = removed + 1
  end
end
return removed
";

/// due, future, ready, dead, done, the oldest scheduled (id, score), worker names.
type DepthReply = (u64, u64, u64, u64, u64, Vec<(String, f64)>, Vec<String>);

/// Enqueues encoded batches straight onto `<q>:active` in the layout apalis-redis reads (data
/// hash entry, metadata hash, active list, wake-up signal). Skipping `<q>:scheduled` means a
/// backlog of pushes can never wedge the fetch script, and the api encodes each batch once.
/// KEYS: data hash, active list, signal list. ARGV[1]: metadata prefix, then (id, json) pairs.
pub(crate) const PUSH: &str = r"
local pushed = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HSETNX', KEYS[1], id, ARGV[i + 1]) == 1 then
    redis.call('HSET', ARGV[1] .. ':' .. id, 'attempts', 0, 'max_attempts', 25, 'status', 'Pending', 'idempotency_key', '')
    redis.call('RPUSH', KEYS[2], id)
    pushed = pushed + 1
  end
end
if pushed > 0 then
  redis.call('DEL', KEYS[3])
  redis.call('LPUSH', KEYS[3], 1)
end
return pushed
";

/// Producer and maintenance handle of one queue.
pub struct ClickQueue {
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

impl ClickQueue {
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
        let config = queue_config(queue.unwrap_or(RecordClicks::QUEUE));
        Ok(Self {
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

    /// Enqueues a batch; when this returns `Ok` the batch is in Redis.
    pub async fn push(&self, batch: &ClickBatch) -> Result<(), QueueError> {
        let payload = serde_json::to_vec(batch).map_err(|e| QueueError::Push(e.to_string()))?;
        self.push_encoded(&payload).await
    }

    /// Enqueues a batch already encoded as JSON (the api encodes once, for queue or spool).
    /// One round trip.
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

    /// Moves due jobs from `<q>:scheduled` to `<q>:active`, at most [`PROMOTE_CHUNK`] per call.
    /// Returns how many moved.
    pub async fn promote_due(&self) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let moved: u64 = self
            .promote
            .key(self.config.scheduled_jobs_set())
            .key(self.config.active_jobs_list())
            .key(self.config.signal_list())
            .arg(now_secs())
            .arg(PROMOTE_CHUNK)
            .invoke_async(&mut conn)
            .await?;
        Ok(moved)
    }

    /// Promotes until no due job is left (a backlog of any size, in chunks).
    pub async fn promote_all_due(&self) -> Result<u64, QueueError> {
        let mut total = 0;
        loop {
            let moved = self.promote_due().await?;
            total += moved;
            if moved < PROMOTE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    /// Deletes the data and metadata of up to `limit` finished jobs. Returns how many.
    pub async fn prune_finished(&self, limit: usize) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let pruned: u64 = self
            .prune
            .key(self.config.done_jobs_set())
            .key(self.config.job_data_hash())
            .arg(self.config.job_meta_hash())
            .arg(limit)
            .invoke_async(&mut conn)
            .await?;
        Ok(pruned)
    }

    /// One `SCAN` page (from `cursor`) of worker metadata hashes: those of workers no longer
    /// registered are deleted. Returns the next cursor (0 when a pass is complete) and how
    /// many were deleted.
    pub async fn prune_dead_worker_records(&self, cursor: u64) -> Result<(u64, u64), QueueError> {
        let mut conn = self.conn.clone();
        let workers = self.config.workers_set();
        let prefix = format!("{workers}:metadata:");
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(200)
            .query_async(&mut conn)
            .await?;
        if keys.is_empty() {
            return Ok((next, 0));
        }
        let mut script = self.prune_workers.prepare_invoke();
        for key in &keys {
            script.key(key);
        }
        let removed: u64 = script
            .arg(&workers)
            .arg(&prefix)
            .invoke_async(&mut conn)
            .await?;
        Ok((next, removed))
    }

    /// Depth and age of the queue, from its keys.
    pub async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let mut conn = self.conn.clone();
        let now = now_secs();
        let scheduled = self.config.scheduled_jobs_set();
        let (due, future, ready, dead, done, oldest, workers): DepthReply = redis::pipe()
            .cmd("ZCOUNT")
            .arg(&scheduled)
            .arg("-inf")
            .arg(now)
            .cmd("ZCOUNT")
            .arg(&scheduled)
            .arg(format!("({now}"))
            .arg("+inf")
            .cmd("LLEN")
            .arg(self.config.active_jobs_list())
            .cmd("SCARD")
            .arg(self.config.dead_jobs_set())
            .cmd("SCARD")
            .arg(self.config.done_jobs_set())
            .cmd("ZRANGE")
            .arg(&scheduled)
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .cmd("ZRANGE")
            .arg(self.config.workers_set())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        let mut running = 0;
        if !workers.is_empty() {
            let mut pipe = redis::pipe();
            for worker in &workers {
                pipe.cmd("SCARD")
                    .arg(format!("{}:{worker}", self.config.inflight_jobs_set()));
            }
            let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
            running = counts.iter().sum();
        }
        let oldest_age_seconds = oldest
            .first()
            .map_or(0, |(_, score)| now.saturating_sub(*score as u64))
            * u64::from(due > 0);
        Ok(QueueDepth {
            due,
            future,
            ready,
            running,
            dead,
            done,
            oldest_age_seconds,
        })
    }
}
