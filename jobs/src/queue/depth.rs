//! How deep a queue is and how it is doing: [`QueueDepth`], read from the queue's keys, the
//! completed-jobs counter and the live workers.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{HEARTBEAT, JobQueue, MISSED_HEARTBEATS, QueueError, now_secs};

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

impl JobQueue {
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
    pub(super) fn completed_counter(&self) -> String {
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
