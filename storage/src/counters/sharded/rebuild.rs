//! Rebuilding the counters of one code, one shard's codes or every code from the events table,
//! exactly, while clicks keep being ingested.
//!
//! 1. The rebuild takes the lock (a key on the first shard) and sets the pause key of every
//!    shard it rebuilds on every shard. From then on no counter update of those shards' codes
//!    runs anywhere (the update script refuses and its caller waits); events are still stored.
//! 2. One statement reads the redirect events of those codes (a consistent snapshot, taken
//!    after the pause). Every batch whose events it read was either counted before the pause,
//!    and is in what the rebuild writes, or not yet counted: its marker is then set, on every
//!    shard, so its own update, once the pause ends, is skipped instead of counted twice.
//!    Batches stored after the snapshot are counted by their own update, after the pause.
//! 3. Per code, in one MULTI on its owning shard: the total, the 72 hourly buckets and the
//!    HyperLogLog (built in a scratch key) replace what was there. Keys of those codes left on
//!    other shards by a failover, and keys of codes with no event left, are deleted.
//! 4. The shard's epoch key is set (a shard that restarts empty loses it, which is how the
//!    worker notices), then the pause keys are deleted.

use std::collections::HashSet;
use std::time::Duration;

use chrono::NaiveDateTime;
use futures_util::TryStreamExt;
use sea_orm::{DatabaseConnection, Statement, StreamTrait, Value};

use super::ShardedCounters;
use super::figures::{CHUNK, CodeFigures};
use super::write::MARKER_TTL_SECS;
use crate::counters::{CounterError, HOURS, RebuildReport, RebuildScope, hour_of};

/// A pause outlives a rebuild that died by this much at most (it is refreshed meanwhile).
const PAUSE_TTL_SECS: u64 = 30;
const PAUSE_REFRESH: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Counters(#[from] CounterError),
    #[error("another counter rebuild is running")]
    Busy,
    #[error("the in-process counters are rebuilt from the events at every start")]
    InProcess,
    #[error("shard {0} does not exist (there are {1})")]
    NoSuchShard(usize, usize),
}

impl ShardedCounters {
    fn lock_key(&self) -> String {
        format!("{}rebuild-lock", self.prefix)
    }

    pub(crate) fn epoch_key(&self) -> String {
        format!("{}epoch", self.prefix)
    }

    pub(super) fn scratch_key(&self, code: &str) -> String {
        format!("{}rebuild:{code}:uv", self.prefix)
    }

    pub(super) async fn reachable(
        &self,
        shard: usize,
    ) -> Result<redis::aio::ConnectionManager, CounterError> {
        self.conn(shard)
            .await
            .ok_or(CounterError::Unverifiable(shard))
    }

    /// Runs `cmd` on every shard.
    pub(super) async fn on_every_shard(&self, pipe: &redis::Pipeline) -> Result<(), CounterError> {
        for shard in 0..self.shards.len() {
            let mut conn = self.reachable(shard).await?;
            pipe.query_async::<()>(&mut conn)
                .await
                .map_err(|e| CounterError::Redis(shard, e))?;
        }
        Ok(())
    }

    /// Shards without an epoch key among those that answer: restarted empty (or never rebuilt).
    pub(in crate::counters) async fn shards_without_epoch(&self) -> Vec<usize> {
        let mut missing = Vec::new();
        for shard in 0..self.shards.len() {
            let Some(mut conn) = self.conn(shard).await else {
                continue;
            };
            if let Ok(false) = redis::cmd("EXISTS")
                .arg(self.epoch_key())
                .query_async::<bool>(&mut conn)
                .await
            {
                missing.push(shard);
            }
        }
        missing
    }

    /// Seconds since the epoch of the last whole rebuild of every shard (the oldest), if each
    /// shard has one.
    pub(in crate::counters) async fn last_rebuild(&self) -> Option<i64> {
        let mut oldest: Option<i64> = None;
        for shard in 0..self.shards.len() {
            let mut conn = self.conn(shard).await?;
            let at: i64 = redis::cmd("GET")
                .arg(self.epoch_key())
                .query_async::<Option<i64>>(&mut conn)
                .await
                .ok()??;
            oldest = Some(oldest.map_or(at, |o| o.min(at)));
        }
        oldest
    }

    pub(in crate::counters) async fn rebuild(
        &self,
        db: &DatabaseConnection,
        scope: &RebuildScope,
        now: NaiveDateTime,
    ) -> Result<RebuildReport, RebuildError> {
        let owners: Vec<usize> = match scope {
            RebuildScope::All => (0..self.shards.len()).collect(),
            RebuildScope::Shard(n) if *n >= self.shards.len() => {
                return Err(RebuildError::NoSuchShard(*n, self.shards.len()));
            }
            RebuildScope::Shard(n) => vec![*n],
            RebuildScope::Code(code) => {
                vec![self.ring.owner(code).ok_or(CounterError::NoShard)?]
            }
        };
        let token = uuid::Uuid::new_v4().to_string();
        let mut lock_conn = self.reachable(0).await?;
        let locked: Option<String> = redis::cmd("SET")
            .arg(self.lock_key())
            .arg(&token)
            .arg("NX")
            .arg("EX")
            .arg(PAUSE_TTL_SECS)
            .query_async(&mut lock_conn)
            .await
            .map_err(|e| CounterError::Redis(0, e))?;
        if locked.is_none() {
            return Err(RebuildError::Busy);
        }
        let mut pause = redis::pipe();
        for owner in &owners {
            pause
                .cmd("SET")
                .arg(self.pause_key(*owner))
                .arg(&token)
                .arg("EX")
                .arg(PAUSE_TTL_SECS)
                .ignore();
        }
        let result = async {
            self.on_every_shard(&pause).await?;
            let refresher = self.keep_paused(&pause, &token);
            let result = tokio::select! {
                r = self.rebuild_paused(db, scope, &owners, now) => r,
                () = refresher => unreachable!("the refresher runs until dropped"),
            };
            result
        }
        .await;
        let mut resume = redis::pipe();
        for owner in &owners {
            resume.cmd("DEL").arg(self.pause_key(*owner)).ignore();
        }
        let resumed = self.on_every_shard(&resume).await;
        let _: Result<(), _> = redis::cmd("DEL")
            .arg(self.lock_key())
            .query_async(&mut lock_conn)
            .await;
        let report = result?;
        resumed?;
        Ok(report)
    }

    /// Refreshes the pause (on every shard) and the lock (on the first) until dropped: a
    /// rebuild may outlast their TTL.
    async fn keep_paused(&self, pause: &redis::Pipeline, token: &str) {
        loop {
            tokio::time::sleep(PAUSE_REFRESH).await;
            let lock = async {
                let mut conn = self.reachable(0).await?;
                redis::cmd("SET")
                    .arg(self.lock_key())
                    .arg(token)
                    .arg("EX")
                    .arg(PAUSE_TTL_SECS)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| CounterError::Redis(0, e))
            };
            if let Err(e) = self.on_every_shard(pause).await.and(lock.await) {
                tracing::warn!(error = %e, "refreshing the counter rebuild's pause failed");
            }
        }
    }

    async fn rebuild_paused(
        &self,
        db: &DatabaseConnection,
        scope: &RebuildScope,
        owners: &[usize],
        now: NaiveDateTime,
    ) -> Result<RebuildReport, RebuildError> {
        let started = std::time::Instant::now();
        let backend = db.get_database_backend();
        let mut sql = crate::rebuild::REDIRECT_EVENTS.to_owned();
        let mut values: Vec<Value> = Vec::new();
        if let RebuildScope::Code(code) = scope {
            sql.push_str(if backend == sea_orm::DbBackend::Postgres {
                " AND u.short_code = $1"
            } else {
                " AND u.short_code = ?"
            });
            values.push(code.clone().into());
        }
        sql.push_str(" ORDER BY e.url_id");
        let stmt = Statement::from_sql_and_values(backend, sql, values);
        let marker_since = now - chrono::Duration::seconds(MARKER_TTL_SECS as i64 + 86_400);
        let current = hour_of(now);
        let mut report = RebuildReport::default();
        let mut rebuilt: HashSet<String> = HashSet::new();
        let mut figures: Option<(String, usize, CodeFigures)> = None;
        let mut rows = db.stream_raw(stmt).await?;
        while let Some(row) = rows.try_next().await? {
            let code: String = row.try_get_by_index(0)?;
            let at: NaiveDateTime = row.try_get_by_index(1)?;
            let visitor: Option<String> = row.try_get_by_index(2)?;
            let batch: Option<String> = row.try_get_by_index(3)?;
            report.clicks += 1;
            if figures.as_ref().is_none_or(|(c, _, _)| *c != code) {
                if let Some((done, owner, f)) = figures.take() {
                    report.batches_marked += self.write_code(&done, owner, f, current).await?;
                    rebuilt.insert(done);
                }
                let owner = self.ring.owner(&code).ok_or(CounterError::NoShard)?;
                figures = Some((code.clone(), owner, CodeFigures::default()));
            }
            let Some((code, owner, f)) = figures.as_mut() else {
                continue;
            };
            if !owners.contains(owner) {
                continue;
            }
            f.total += 1;
            let hour = hour_of(at);
            if hour > current - HOURS && hour <= current + 1 {
                *f.hours.entry(hour).or_default() += 1;
            }
            f.visitors.push(visitor.unwrap_or_default());
            if f.visitors.len() >= CHUNK {
                self.sketch(code, *owner, f).await?;
            }
            if let Some(batch) = batch
                && at >= marker_since
            {
                f.batches.insert(batch);
            }
        }
        if let Some((done, owner, f)) = figures.take() {
            report.batches_marked += self.write_code(&done, owner, f, current).await?;
            rebuilt.insert(done);
        }
        rebuilt.retain(|code| self.ring.owner(code).is_some_and(|o| owners.contains(&o)));
        report.codes = rebuilt.len() as u64;
        report.stale_keys_removed = match scope {
            RebuildScope::Code(code) => self.remove_elsewhere(code, owners[0], current).await?,
            _ => self.remove_stale(owners, &rebuilt).await?,
        };
        if !matches!(scope, RebuildScope::Code(_)) {
            let epoch = now.and_utc().timestamp();
            for owner in owners {
                let mut conn = self.reachable(*owner).await?;
                redis::cmd("SET")
                    .arg(self.epoch_key())
                    .arg(epoch)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| CounterError::Redis(*owner, e))?;
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}
