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

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use serde::Serialize;

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
    /// Age in seconds of the oldest job ready for a worker (`<q>:active`, where producers
    /// push), from the time in its ULID id; 0 if none.
    pub oldest_ready_age_seconds: u64,
}

impl QueueDepth {
    /// Every job count under the `state` label the metrics use (together they partition a
    /// queue's jobs).
    #[must_use]
    pub fn by_state(&self) -> [(&'static str, u64); 6] {
        [
            ("ready", self.ready),
            ("due", self.due),
            ("scheduled", self.future),
            ("running", self.running),
            ("dead", self.dead),
            ("done", self.done),
        ]
    }

    /// Jobs that still have to run.
    #[must_use]
    pub fn pending(&self) -> u64 {
        self.due + self.future + self.ready + self.running
    }
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

/// KEYS: done set, data hash, completed counter. ARGV[1]: metadata prefix, ARGV[2]: at most.
/// Every pruned id is added to the completed counter in the same step, so finished jobs are
/// counted once each (done set + counter) whenever they are pruned.
const PRUNE: &str = r"
local ids = redis.call('SPOP', KEYS[1], tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('DEL', ARGV[1] .. ':' .. id)
end
if #ids > 0 then
  redis.call('INCRBY', KEYS[3], #ids)
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

/// due, future, ready, dead, done, the oldest scheduled (id, score), worker names, the ids at
/// the head of the active list.
type DepthReply = (
    u64,
    u64,
    u64,
    u64,
    u64,
    Vec<(String, f64)>,
    Vec<String>,
    Vec<String>,
);

/// Ready jobs whose ids are read for the oldest ready age. Workers take from the head, so the
/// head holds the oldest; orphans re-enqueued at the tail with old ids are seen once they get
/// near the head.
const READY_AGE_SAMPLE: isize = 100;

/// Enqueues encoded jobs straight onto `<q>:active` in the layout apalis-redis reads (data
/// hash entry, metadata hash, active list, wake-up signal). Skipping `<q>:scheduled` means a
/// backlog of pushes can never wedge the fetch script, and the api encodes each job once.
/// KEYS: data hash, active list, signal list. ARGV[1]: metadata prefix, then (id, json) pairs.
const PUSH: &str = r"
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
            .key(self.completed_counter())
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
        let (due, future, ready, dead, done, oldest, workers, head): DepthReply = redis::pipe()
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
            .cmd("LRANGE")
            .arg(self.config.active_jobs_list())
            .arg(0)
            .arg(READY_AGE_SAMPLE - 1)
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
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // Every job id is a ULID (ours and apalis'): its first 48 bits are the push time in ms.
        let oldest_ready_age_seconds = head
            .iter()
            .filter_map(|id| ulid::Ulid::from_string(id).ok())
            .map(|ulid| ulid.timestamp_ms())
            .min()
            .map_or(0, |pushed_ms| now_ms.saturating_sub(pushed_ms) / 1000);
        Ok(QueueDepth {
            due,
            future,
            ready,
            running,
            dead,
            done,
            oldest_age_seconds,
            oldest_ready_age_seconds,
        })
    }

    /// The counter of finished jobs already pruned (`<q>:completed_total`).
    fn completed_counter(&self) -> String {
        format!("{}:completed_total", self.name)
    }

    /// Jobs finished successfully since the queue's keys were created, from every worker:
    /// those pruned (counted by [`JobQueue::prune_finished`] in the same step) plus those not
    /// yet pruned, read atomically. Always increasing, so its rate is the queue's throughput.
    /// A job run twice (at-least-once after a kill) counts twice only if it was pruned between
    /// its two runs.
    pub async fn completed_total(&self) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let (pruned, done): (Option<u64>, u64) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(self.completed_counter())
            .cmd("SCARD")
            .arg(self.config.done_jobs_set())
            .query_async(&mut conn)
            .await?;
        Ok(pruned.unwrap_or(0) + done)
    }

    /// Workers (of every process) whose last heartbeat is within `heartbeat_interval x
    /// missed_heartbeats`: the ones apalis-redis does not yet treat as dead.
    pub async fn workers_alive(&self) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let grace = HEARTBEAT.as_secs() * MISSED_HEARTBEATS as u64;
        let alive: u64 = redis::cmd("ZCOUNT")
            .arg(self.config.workers_set())
            .arg(now_secs().saturating_sub(grace))
            .arg("+inf")
            .query_async(&mut conn)
            .await?;
        Ok(alive)
    }
}

/// Re-enqueues the in-flight sets of workers that are no longer registered. apalis-redis only
/// recovers the jobs of a worker it still finds in `<q>:workers` (and removes it there in the
/// same step), so an in-flight set whose worker left the set any other way would hold its
/// jobs for good.
/// KEYS: in-flight sets found by SCAN. ARGV[1]: workers set, ARGV[2]: in-flight prefix
/// (`<q>:inflight:`), ARGV[3]: active list, ARGV[4]: signal list.
const RECOVER_UNOWNED: &str = r"
local moved = 0
for _, key in ipairs(KEYS) do
  local name = string.sub(key, #ARGV[2] + 1)
  if not redis.call('ZSCORE', ARGV[1], name) then
    local ids = redis.call('SMEMBERS', key)
    for i = 1, #ids, 1000 do
      redis.call('RPUSH', ARGV[3], unpack(ids, i, math.min(i + 999, #ids)))
    end
    redis.call('DEL', key)
    moved = moved + #ids
  end
end
if moved > 0 then
  redis.call('DEL', ARGV[4])
  redis.call('LPUSH', ARGV[4], 1)
end
return moved
";

/// Of the given job ids (from `HKEYS <q>:data`), re-enqueues those that are nowhere: not
/// ready, scheduled, held by a registered worker, finished or dead. Every transition of a
/// job is one atomic script, so at the instant this runs a job in none of them can only be
/// stranded; nothing would ever run it again. Ids pruned meanwhile (gone from the data hash)
/// are skipped.
/// KEYS[1] data hash, [2] active list, [3] scheduled set, [4] done set, [5] dead set,
/// [6] workers set, [7] signal list. ARGV[1]: in-flight prefix, ARGV[2..]: job ids.
const RECOVER_STRANDED: &str = r"
local workers = redis.call('ZRANGE', KEYS[6], 0, -1)
local moved = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local home = redis.call('HEXISTS', KEYS[1], id) == 0
    or redis.call('SISMEMBER', KEYS[4], id) == 1
    or redis.call('SISMEMBER', KEYS[5], id) == 1
    or redis.call('ZSCORE', KEYS[3], id)
  if not home then
    for _, w in ipairs(workers) do
      if redis.call('SISMEMBER', ARGV[1] .. w, id) == 1 then
        home = true
        break
      end
    end
  end
  if not home and not redis.call('LPOS', KEYS[2], id) then
    redis.call('RPUSH', KEYS[2], id)
    moved = moved + 1
  end
end
if moved > 0 then
  redis.call('DEL', KEYS[7])
  redis.call('LPUSH', KEYS[7], 1)
end
return moved
";

/// Moves dead jobs back to the schedule, due at `ARGV[1]` (now), with their attempts reset, so
/// apalis-redis' back-off starts over: it buries a job after 25 failed attempts (about five
/// minutes), and a click job only fails while a dependency is down, so burying it would lose
/// clicks.
/// KEYS[1] dead set, [2] scheduled set. ARGV[1]: when, ARGV[2]: metadata prefix, ARGV[3]: at most.
const REDRIVE_DEAD: &str = r"
local ids = redis.call('SPOP', KEYS[1], tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[2], tonumber(ARGV[1]), id)
  redis.call('HSET', ARGV[2] .. ':' .. id, 'attempts', 0, 'status', 'Pending')
end
return #ids
";

/// Ready jobs above which [`JobQueue::recover_stranded`] waits: a stranded job only matters
/// once the backlog ahead of it is gone, and checking each id against a long ready list costs
/// that list's length.
pub const STRANDED_SWEEP_MAX_READY: u64 = 1_000;
/// Stored jobs (pending and finished-not-yet-pruned) above which it waits too.
pub const STRANDED_SWEEP_MAX_JOBS: u64 = 20_000;

impl ClickQueue {
    /// Re-enqueues the in-flight sets of unregistered workers and every job that is nowhere
    /// (see [`RECOVER_UNOWNED`], [`RECOVER_STRANDED`]). One full pass; returns the jobs moved.
    /// Skips the second part while more than [`STRANDED_SWEEP_MAX_READY`] jobs are ready.
    pub async fn recover_stranded(&self) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let inflight_prefix = format!("{}:", self.config.inflight_jobs_set());
        let mut moved = 0;
        let unowned = redis::Script::new(RECOVER_UNOWNED);
        for keys in scan_keys(&mut conn, &format!("{inflight_prefix}*")).await? {
            let mut script = unowned.prepare_invoke();
            for key in &keys {
                script.key(key);
            }
            let n: u64 = script
                .arg(self.config.workers_set())
                .arg(&inflight_prefix)
                .arg(self.config.active_jobs_list())
                .arg(self.config.signal_list())
                .invoke_async(&mut conn)
                .await?;
            moved += n;
        }
        let data = self.config.job_data_hash();
        let (ready, jobs): (u64, u64) = redis::pipe()
            .cmd("LLEN")
            .arg(self.config.active_jobs_list())
            .cmd("HLEN")
            .arg(&data)
            .query_async(&mut conn)
            .await?;
        if ready > STRANDED_SWEEP_MAX_READY || jobs > STRANDED_SWEEP_MAX_JOBS {
            return Ok(moved);
        }
        // Ids only (HSCAN would carry every payload along).
        let ids: Vec<String> = redis::cmd("HKEYS")
            .arg(&data)
            .query_async(&mut conn)
            .await?;
        for chunk in ids.chunks(500) {
            let n: u64 = redis::Script::new(RECOVER_STRANDED)
                .key(&data)
                .key(self.config.active_jobs_list())
                .key(self.config.scheduled_jobs_set())
                .key(self.config.done_jobs_set())
                .key(self.config.dead_jobs_set())
                .key(self.config.workers_set())
                .key(self.config.signal_list())
                .arg(&inflight_prefix)
                .arg(chunk)
                .invoke_async(&mut conn)
                .await?;
            moved += n;
        }
        Ok(moved)
    }

    /// Moves up to `limit` dead jobs back to the schedule, due now, attempts reset. Returns how
    /// many.
    pub async fn redrive_dead(&self, limit: usize) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let n: u64 = redis::Script::new(REDRIVE_DEAD)
            .key(self.config.dead_jobs_set())
            .key(self.config.scheduled_jobs_set())
            .arg(now_secs())
            .arg(self.config.job_meta_hash())
            .arg(limit)
            .invoke_async(&mut conn)
            .await?;
        Ok(n)
    }
}

/// Every page of `SCAN MATCH pattern`.
async fn scan_keys(
    conn: &mut ConnectionManager,
    pattern: &str,
) -> Result<Vec<Vec<String>>, QueueError> {
    let mut pages = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await?;
        if !page.is_empty() {
            pages.push(page);
        }
        if next == 0 {
            return Ok(pages);
        }
        cursor = next;
    }
}

#[cfg(test)]
#[path = "redis_stand_in.rs"]
mod redis_stand_in;

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
