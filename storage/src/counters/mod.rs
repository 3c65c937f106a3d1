//! Real-time click counters per short code: a total, hourly buckets (UTC hour, kept 72 h) and
//! unique visitors. In production they live on Redis shards chosen by the
//! [`HashRing`](crate::ring::HashRing); in the embedded default, in process.
//!
//! Applying a batch is idempotent per (batch, owning shard), wherever the batch landed: a marker
//! keyed by both is set in the same Lua script as the increments (so the shard written to
//! checks it atomically). A batch may have been counted before only if its events were already
//! in the database ([`Delivery::Again`]): then every shard is asked for the marker first, and
//! if one cannot be asked (it may hold the earlier count) the update waits for it rather than
//! risk counting twice. A first delivery fails over freely. A failing
//! shard is skipped for a second and its keys go clockwise to the next shard; reads fan out to
//! every shard and add up (uniques are the union of the shards' HyperLogLogs), so counters
//! written during a failover are still found.

mod memory;
mod sharded;

use chrono::{DateTime, NaiveDateTime, Utc};
use jobs::Click;

pub use memory::MemoryCounters;
pub use sharded::{RebuildError, ShardedCounters};

/// Hourly buckets kept and shown.
pub const HOURS: i64 = 72;

#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error("no click-counter shard is reachable")]
    NoShard,
    #[error("counter shard {0} cannot be asked whether it already counted this batch")]
    Unverifiable(usize),
    #[error("counter shard {0}: {1}")]
    Redis(usize, redis::RedisError),
}

/// The counters of one short code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realtime {
    pub total: u64,
    pub unique_visitors: u64,
    /// The last [`HOURS`] UTC hours, oldest first: (hour start, clicks).
    pub hourly: Vec<(NaiveDateTime, u64)>,
    /// Shards that could not be read (their counts are missing).
    pub unavailable_shards: usize,
}

/// Hours since the epoch of a timestamp.
fn hour_of(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp().div_euclid(3600)
}

fn hour_start(hour: i64) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp(hour * 3600, 0)
        .map_or_else(NaiveDateTime::default, |d| d.naive_utc())
}

/// Whether a batch can have been counted before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Its clicks were not in the database yet: no earlier run got as far as the counters.
    First,
    /// Its clicks were already stored (a retry or a re-delivery): it may have been counted,
    /// on whichever shard took it then.
    Again,
}

/// What a counter rebuild covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RebuildScope {
    /// Every code, on every shard.
    All,
    /// The codes the shard with this index owns.
    Shard(usize),
    /// One short code.
    Code(String),
}

impl From<&jobs::RebuildCounters> for RebuildScope {
    /// A code first, then a shard, else everything.
    fn from(job: &jobs::RebuildCounters) -> Self {
        match (&job.code, job.shard) {
            (Some(code), _) => Self::Code(code.clone()),
            (None, Some(shard)) => Self::Shard(shard),
            (None, None) => Self::All,
        }
    }
}

/// What a counter rebuild did.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct RebuildReport {
    /// Redirect events read.
    pub clicks: u64,
    /// Codes whose counters were written.
    pub codes: u64,
    /// Batches marked as counted (their own update, if still to come, is skipped); a batch with
    /// clicks of several links counts once per link.
    pub batches_marked: u64,
    /// Counter keys deleted: failover leftovers and codes with no event left.
    pub stale_keys_removed: u64,
    pub seconds: f64,
}

/// Shard failure and failover counts, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardStats {
    pub failures: u64,
    pub failovers: u64,
}

pub enum Counters {
    Memory(MemoryCounters),
    Sharded(ShardedCounters),
}

impl Counters {
    #[must_use]
    pub fn memory() -> Self {
        Self::Memory(MemoryCounters::default())
    }

    /// Redis shards at `host:port` (or `redis://` URLs), keys under `prefix`.
    pub fn sharded(shards: &[String], prefix: &str) -> Result<Self, redis::RedisError> {
        Ok(Self::Sharded(ShardedCounters::new(shards, prefix)?))
    }

    /// The shards of one deployment: its keys carry `deployment_id` too, so two deployments
    /// (or a database recreated from scratch, whose new links reuse the old ids and codes)
    /// sharing the shards and `prefix` never share counts.
    pub fn for_deployment(
        shards: &[String],
        prefix: &str,
        deployment_id: &str,
    ) -> Result<Self, redis::RedisError> {
        Self::sharded(shards, &format!("{prefix}:{deployment_id}"))
    }

    /// Counts a batch once, however often it is applied.
    pub async fn apply(
        &self,
        batch_id: &str,
        clicks: &[Click],
        delivery: Delivery,
    ) -> Result<(), CounterError> {
        self.apply_many(&[(batch_id, clicks)], delivery).await
    }

    /// Counts each of several batches once, however often each is applied (alone or with
    /// others): one update per shard for all of them.
    pub async fn apply_many(
        &self,
        parts: &[(&str, &[Click])],
        delivery: Delivery,
    ) -> Result<(), CounterError> {
        match self {
            Self::Memory(m) => {
                for (batch_id, clicks) in parts {
                    m.apply(batch_id, clicks);
                }
                Ok(())
            }
            Self::Sharded(s) => s.apply_many(parts, delivery).await,
        }
    }

    /// The counters of `code` as of `now`.
    pub async fn read(&self, code: &str, now: NaiveDateTime) -> Realtime {
        match self {
            Self::Memory(m) => m.read(code, now),
            Self::Sharded(s) => s.read(code, now).await,
        }
    }

    /// Deletes every counter of `code` (total, uniques, the hourly buckets of the last
    /// [`HOURS`] hours and the next one) on every shard, failover leftovers included. Fails if
    /// a shard cannot be reached, so the caller can retry.
    pub async fn forget(&self, code: &str, now: NaiveDateTime) -> Result<(), CounterError> {
        match self {
            Self::Memory(m) => {
                m.forget(code);
                Ok(())
            }
            Self::Sharded(s) => s.forget(code, now).await,
        }
    }

    /// Rebuilds the counters of `scope` from the events of `db`, exactly, while clicks keep
    /// being ingested (their counter updates for the codes rebuilt wait until it ends).
    pub async fn rebuild(
        &self,
        db: &sea_orm::DatabaseConnection,
        scope: &RebuildScope,
    ) -> Result<RebuildReport, RebuildError> {
        match self {
            Self::Memory(_) => Err(RebuildError::InProcess),
            Self::Sharded(s) => s.rebuild(db, scope, domain::now()).await,
        }
    }

    /// Shards that answer but hold no epoch key: restarted empty, or never rebuilt.
    pub async fn shards_without_epoch(&self) -> Vec<usize> {
        match self {
            Self::Memory(_) => Vec::new(),
            Self::Sharded(s) => s.shards_without_epoch().await,
        }
    }

    /// When every shard was last rebuilt whole (seconds since the epoch, the oldest shard's),
    /// if each was.
    pub async fn last_rebuild(&self) -> Option<i64> {
        match self {
            Self::Memory(_) => None,
            Self::Sharded(s) => s.last_rebuild().await,
        }
    }

    #[must_use]
    pub fn stats(&self) -> ShardStats {
        match self {
            Self::Memory(_) => ShardStats::default(),
            Self::Sharded(s) => *s
                .stats
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }
}
