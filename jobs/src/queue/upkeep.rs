//! Queue maintenance apalis-redis 1.0 is missing: promoting due jobs in chunks, pruning
//! finished jobs and dead workers' records, recovering stranded jobs, redriving dead ones.

use redis::aio::ConnectionManager;

use super::scripts::{RECOVER_STRANDED, RECOVER_UNOWNED, REDRIVE_DEAD};
use super::{ClickQueue, JobQueue, PROMOTE_CHUNK, QueueError, now_secs};

impl JobQueue {
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
}

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
