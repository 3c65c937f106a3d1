//! Real-time click counters per short code: a total, hourly buckets (UTC hour, kept 72 h) and
//! unique visitors. In production they live on Redis shards chosen by the [`HashRing`]; in the
//! embedded default, in process.
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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use jobs::Click;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::ring::HashRing;

/// Hourly buckets kept and shown.
pub const HOURS: i64 = 72;
const MARKER_TTL_SECS: u64 = 7 * 24 * 3600;
const SHARD_TIMEOUT: Duration = Duration::from_millis(500);
const SHARD_BACKOFF: Duration = Duration::from_secs(1);

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
        match self {
            Self::Memory(m) => {
                m.apply(batch_id, clicks);
                Ok(())
            }
            Self::Sharded(s) => s.apply(batch_id, clicks, delivery).await,
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

#[derive(Default)]
struct CodeCounters {
    total: u64,
    /// The last [`HOURS`] hours only (older buckets are dropped as new ones come, as on Redis).
    hours: BTreeMap<i64, u64>,
    visitors: Visitors,
}

/// Visitors below this many are kept exactly; then a HyperLogLog (16 KiB, 0.81%) takes over.
const EXACT_VISITORS: usize = 1_000;

/// A code's distinct visitors in bounded memory: exact while few, then a sketch.
enum Visitors {
    Exact(HashSet<String>),
    Sketch(Box<crate::hll::Hll>),
}

impl Default for Visitors {
    fn default() -> Self {
        Self::Exact(HashSet::new())
    }
}

impl Visitors {
    fn insert(&mut self, visitor: &str) {
        match self {
            Self::Exact(set) => {
                if set.contains(visitor) {
                    return;
                }
                set.insert(visitor.to_owned());
                if set.len() > EXACT_VISITORS {
                    let mut sketch = crate::hll::Hll::new();
                    for v in set.iter() {
                        sketch.insert(v);
                    }
                    *self = Self::Sketch(Box::new(sketch));
                }
            }
            Self::Sketch(sketch) => sketch.insert(visitor),
        }
    }

    fn count(&self) -> u64 {
        match self {
            Self::Exact(set) => set.len() as u64,
            Self::Sketch(sketch) => sketch.estimate(),
        }
    }
}

impl CodeCounters {
    fn add(&mut self, at: NaiveDateTime, visitor: &str) {
        self.total += 1;
        let hour = hour_of(at);
        *self.hours.entry(hour).or_default() += 1;
        // Keep HOURS buckets back from the newest one.
        if self.hours.len() > HOURS as usize
            && let Some(&newest) = self.hours.keys().next_back()
        {
            self.hours = self.hours.split_off(&(newest - HOURS + 1));
        }
        self.visitors.insert(visitor);
    }
}

/// Counters per code, batch ids already applied, and their order (oldest first, bounded).
type MemoryState = (
    HashMap<String, CodeCounters>,
    HashSet<String>,
    VecDeque<String>,
);

/// One shard's answer for a code: total, hourly buckets, raw HyperLogLog.
type ShardReply = (Option<u64>, Vec<Option<u64>>, Option<Vec<u8>>);

/// Per shard, per (code, hour): clicks and visitor hashes.
type ShardGroups = BTreeMap<usize, BTreeMap<(String, i64), (u64, Vec<String>)>>;

/// In-process counters (embedded default), in bounded memory per code: 72 hourly buckets, and
/// uniques exact up to 1,000 visitors, then a HyperLogLog.
#[derive(Default)]
pub struct MemoryCounters {
    inner: Mutex<MemoryState>,
}

const MEMORY_BATCH_MEMORY: usize = 100_000;

impl MemoryCounters {
    fn apply(&self, batch_id: &str, clicks: &[Click]) {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (codes, applied, order) = &mut *guard;
        if !applied.insert(batch_id.to_owned()) {
            return;
        }
        order.push_back(batch_id.to_owned());
        if order.len() > MEMORY_BATCH_MEMORY
            && let Some(old) = order.pop_front()
        {
            applied.remove(&old);
        }
        for click in clicks {
            codes
                .entry(click.short_code.clone())
                .or_default()
                .add(click.at, &click.visitor_hash);
        }
    }

    /// Counts one click of `code` (a rebuild from events); true if `code` was new.
    pub(crate) fn add(&self, code: &str, at: NaiveDateTime, visitor: &str) -> bool {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let new = !guard.0.contains_key(code);
        guard.0.entry(code.to_owned()).or_default().add(at, visitor);
        new
    }

    fn forget(&self, code: &str) {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .remove(code);
    }

    fn read(&self, code: &str, now: NaiveDateTime) -> Realtime {
        let guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = hour_of(now);
        let c = guard.0.get(code);
        let hourly = (current - HOURS + 1..=current)
            .map(|h| {
                (
                    hour_start(h),
                    c.and_then(|c| c.hours.get(&h)).copied().unwrap_or(0),
                )
            })
            .collect();
        Realtime {
            total: c.map_or(0, |c| c.total),
            unique_visitors: c.map_or(0, |c| c.visitors.count()),
            hourly,
            unavailable_shards: 0,
        }
    }
}

struct Shard {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    down_until: Mutex<Option<Instant>>,
}

/// Counters on Redis shards.
pub struct ShardedCounters {
    shards: Vec<Shard>,
    ring: HashRing,
    prefix: String,
    apply_script: redis::Script,
    stats: Mutex<ShardStats>,
}

/// KEYS: none (non-cluster). ARGV[1] key prefix, ARGV[2] marker key, ARGV[3] marker ttl,
/// then groups of: code, hour, expire-at, count, n, visitor hashes x n.
const APPLY: &str = r"
if not redis.call('SET', ARGV[2], '1', 'NX', 'EX', tonumber(ARGV[3])) then
  return 0
end
local p = ARGV[1]
local i = 4
while i <= #ARGV do
  local code, hour, expire_at, count, n = ARGV[i], ARGV[i+1], tonumber(ARGV[i+2]), tonumber(ARGV[i+3]), tonumber(ARGV[i+4])
  redis.call('INCRBY', p .. code .. ':total', count)
  local hk = p .. code .. ':h:' .. hour
  redis.call('INCRBY', hk, count)
  redis.call('EXPIREAT', hk, expire_at)
  if n > 0 then
    redis.call('PFADD', p .. code .. ':uv', unpack(ARGV, i + 5, i + 4 + n))
  end
  i = i + 5 + n
end
return 1
";

fn shard_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("redis://{addr}/")
    }
}

impl ShardedCounters {
    fn new(addrs: &[String], prefix: &str) -> Result<Self, redis::RedisError> {
        let shards = addrs
            .iter()
            .map(|a| {
                Ok(Shard {
                    client: redis::Client::open(shard_url(a))?,
                    conn: tokio::sync::Mutex::new(None),
                    down_until: Mutex::new(None),
                })
            })
            .collect::<Result<Vec<_>, redis::RedisError>>()?;
        Ok(Self {
            ring: HashRing::new(shards.len()),
            shards,
            prefix: format!("{prefix}:ctr:"),
            apply_script: redis::Script::new(APPLY),
            stats: Mutex::new(ShardStats::default()),
        })
    }

    fn record(&self, f: impl FnOnce(&mut ShardStats)) {
        f(&mut self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// A connection to shard `i`, or `None` while it is failing. A shard that was failing is
    /// first probed with a `PING` (harmless if it goes unanswered), so a write is only sent to
    /// a shard that answers again.
    async fn conn(&self, i: usize) -> Option<ConnectionManager> {
        let shard = &self.shards[i];
        let was_down = {
            let down = shard
                .down_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match *down {
                Some(until) if Instant::now() < until => return None,
                Some(_) => true,
                None => false,
            }
        };
        let mut guard = shard.conn.lock().await;
        let conn = if let Some(conn) = guard.as_ref() {
            conn.clone()
        } else {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(SHARD_TIMEOUT))
                .set_response_timeout(Some(SHARD_TIMEOUT))
                .set_number_of_retries(0);
            if let Ok(Ok(conn)) = tokio::time::timeout(
                SHARD_TIMEOUT * 2,
                shard.client.get_connection_manager_with_config(config),
            )
            .await
            {
                *guard = Some(conn.clone());
                conn
            } else {
                drop(guard);
                self.mark_down(i);
                return None;
            }
        };
        drop(guard);
        if was_down {
            let mut probe = conn.clone();
            if redis::cmd("PING")
                .query_async::<String>(&mut probe)
                .await
                .is_err()
            {
                self.mark_down(i);
                return None;
            }
            *shard
                .down_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
        Some(conn)
    }

    fn mark_down(&self, i: usize) {
        self.record(|s| s.failures += 1);
        *self.shards[i]
            .down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Instant::now() + SHARD_BACKOFF);
        tracing::warn!(
            shard = i,
            "click-counter shard failing; keys fail over clockwise"
        );
    }

    fn marker(&self, batch_id: &str, owner: usize) -> String {
        format!("{}batch:{batch_id}:shard{owner}", self.prefix)
    }

    async fn apply(
        &self,
        batch_id: &str,
        clicks: &[Click],
        delivery: Delivery,
    ) -> Result<(), CounterError> {
        // Group by owning shard, then by (code, hour).
        let mut groups: ShardGroups = BTreeMap::new();
        for click in clicks {
            let Some(owner) = self.ring.owner(&click.short_code) else {
                return Err(CounterError::NoShard);
            };
            let entry = groups
                .entry(owner)
                .or_default()
                .entry((click.short_code.clone(), hour_of(click.at)))
                .or_default();
            entry.0 += 1;
            entry.1.push(click.visitor_hash.clone());
        }
        for (owner, entries) in groups {
            let marker = self.marker(batch_id, owner);
            if delivery == Delivery::Again && self.marker_on_some_shard(&marker).await? {
                continue;
            }
            let mut invocation = self.apply_script.prepare_invoke();
            invocation
                .arg(&self.prefix)
                .arg(&marker)
                .arg(MARKER_TTL_SECS);
            for ((code, hour), (count, visitors)) in &entries {
                let expire_at = (hour + HOURS + 1) * 3600;
                invocation
                    .arg(code)
                    .arg(hour)
                    .arg(expire_at)
                    .arg(count)
                    .arg(visitors.len())
                    .arg(visitors);
            }
            // Fail over only past shards the script was never sent to. A shard that took the
            // script and then failed to answer (a timeout, a dropped connection) may still run
            // it: counting it elsewhere too would count it twice, so the batch is retried and
            // the retry asks every shard for the marker first.
            let mut applied = false;
            for (attempt, shard) in self
                .ring
                .preference(
                    &entries
                        .keys()
                        .next()
                        .map(|k| k.0.clone())
                        .unwrap_or_default(),
                )
                .into_iter()
                .enumerate()
            {
                let Some(mut conn) = self.conn(shard).await else {
                    continue;
                };
                match invocation.invoke_async::<i64>(&mut conn).await {
                    Ok(_) => {
                        if attempt > 0 {
                            self.record(|s| s.failovers += 1);
                        }
                        applied = true;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(shard, error = %e, "counter update failed; the batch will be retried");
                        self.mark_down(shard);
                        return Err(CounterError::Redis(shard, e));
                    }
                }
            }
            if !applied {
                return Err(CounterError::NoShard);
            }
        }
        Ok(())
    }

    /// Whether any shard holds `marker` (an earlier run counted the group there, on the owner
    /// or wherever it failed over to). A shard that cannot be asked may hold it: an error, so
    /// the batch is retried once it answers, never counted a second time meanwhile.
    async fn marker_on_some_shard(&self, marker: &str) -> Result<bool, CounterError> {
        for shard in 0..self.shards.len() {
            let Some(mut conn) = self.conn(shard).await else {
                return Err(CounterError::Unverifiable(shard));
            };
            match redis::cmd("EXISTS")
                .arg(marker)
                .query_async::<bool>(&mut conn)
                .await
            {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(_) => {
                    self.mark_down(shard);
                    return Err(CounterError::Unverifiable(shard));
                }
            }
        }
        Ok(false)
    }

    async fn forget(&self, code: &str, now: NaiveDateTime) -> Result<(), CounterError> {
        let current = hour_of(now);
        let mut keys: Vec<String> = (current - HOURS..=current + 1)
            .map(|h| format!("{}{code}:h:{h}", self.prefix))
            .collect();
        keys.push(format!("{}{code}:total", self.prefix));
        keys.push(format!("{}{code}:uv", self.prefix));
        for shard in 0..self.shards.len() {
            let Some(mut conn) = self.conn(shard).await else {
                return Err(CounterError::Unverifiable(shard));
            };
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<u64>(&mut conn)
                .await
                .map_err(|e| CounterError::Redis(shard, e))?;
        }
        Ok(())
    }

    async fn read(&self, code: &str, now: NaiveDateTime) -> Realtime {
        let current = hour_of(now);
        let hours: Vec<i64> = (current - HOURS + 1..=current).collect();
        let hour_keys: Vec<String> = hours
            .iter()
            .map(|h| format!("{}{code}:h:{h}", self.prefix))
            .collect();
        let total_key = format!("{}{code}:total", self.prefix);
        let uv_key = format!("{}{code}:uv", self.prefix);
        let mut total = 0;
        let mut hourly = vec![0u64; hours.len()];
        let mut hlls: Vec<Vec<u8>> = Vec::new();
        let mut unavailable = 0;
        let mut healthy = None;
        for shard in 0..self.shards.len() {
            let Some(mut conn) = self.conn(shard).await else {
                unavailable += 1;
                continue;
            };
            let result: Result<ShardReply, _> = redis::pipe()
                .cmd("GET")
                .arg(&total_key)
                .cmd("MGET")
                .arg(&hour_keys)
                .cmd("GET")
                .arg(&uv_key)
                .query_async(&mut conn)
                .await;
            if let Ok((t, hs, uv)) = result {
                total += t.unwrap_or(0);
                for (slot, v) in hourly.iter_mut().zip(hs) {
                    *slot += v.unwrap_or(0);
                }
                hlls.extend(uv);
                healthy = Some(conn);
            } else {
                self.mark_down(shard);
                unavailable += 1;
            }
        }
        let unique_visitors = match (hlls.len(), healthy) {
            (0, _) | (_, None) => 0,
            (_, Some(mut conn)) => self.union_count(&mut conn, &hlls).await,
        };
        Realtime {
            total,
            unique_visitors,
            hourly: hours.into_iter().map(hour_start).zip(hourly).collect(),
            unavailable_shards: unavailable,
        }
    }

    /// PFCOUNT of the union of HyperLogLogs read from several shards: copied to temporary
    /// keys on one shard, counted together, deleted.
    async fn union_count(&self, conn: &mut ConnectionManager, hlls: &[Vec<u8>]) -> u64 {
        let tag = format!("{}tmp:{}", self.prefix, uuid::Uuid::new_v4().simple());
        let keys: Vec<String> = (0..hlls.len()).map(|i| format!("{tag}:{i}")).collect();
        let mut pipe = redis::pipe();
        for (key, hll) in keys.iter().zip(hlls) {
            pipe.cmd("SET")
                .arg(key)
                .arg(hll.as_slice())
                .arg("PX")
                .arg(10_000)
                .ignore();
        }
        pipe.cmd("PFCOUNT").arg(&keys);
        pipe.cmd("DEL").arg(&keys).ignore();
        pipe.query_async::<(u64,)>(conn).await.map_or(0, |(n,)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    fn click(id: &str, code: &str, visitor: &str, at: &str) -> Click {
        Click {
            click_id: id.into(),
            url_id: 1,
            short_code: code.into(),
            at: NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S").unwrap(),
            visitor_hash: visitor.into(),
            user_agent: None,
            referrer: None,
        }
    }

    #[test]
    fn memory_counters_count_a_batch_once_with_hourly_buckets() {
        let m = MemoryCounters::default();
        let clicks = vec![
            click("1", "abc", "v1", "2026-01-01 10:05:00"),
            click("2", "abc", "v1", "2026-01-01 10:55:00"),
            click("3", "abc", "v2", "2026-01-01 11:00:00"),
        ];
        m.apply("b1", &clicks);
        m.apply("b1", &clicks);
        let now =
            NaiveDateTime::parse_from_str("2026-01-01 11:30:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let r = m.read("abc", now);
        assert_eq!(r.total, 3);
        assert_eq!(r.unique_visitors, 2);
        assert_eq!(r.hourly.len(), 72);
        assert_eq!(r.hourly[71].1, 1);
        assert_eq!(r.hourly[70].1, 2);
        assert_eq!(r.hourly[71].0.hour(), 11);
    }

    #[test]
    fn memory_counters_stay_bounded_per_code_and_estimate_many_visitors() {
        let m = MemoryCounters::default();
        let start =
            NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        // 200 hours of clicks, 50,000 distinct visitors.
        for i in 0..50_000i64 {
            let at = start + chrono::Duration::minutes(i * 200 * 60 / 50_000);
            // SplitMix64 of i: uniform like the HMAC visitor hashes.
            let mut z = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            m.add("big", at, &format!("{:016x}", z ^ (z >> 31)));
        }
        let guard = m.inner.lock().unwrap();
        let c = &guard.0["big"];
        assert!(
            c.hours.len() <= HOURS as usize,
            "{} hourly buckets kept",
            c.hours.len()
        );
        assert!(
            matches!(c.visitors, Visitors::Sketch(_)),
            "a sketch past 1,000 visitors"
        );
        let estimate = c.visitors.count() as f64;
        assert!((estimate - 50_000.0).abs() / 50_000.0 < 0.025, "{estimate}");
        assert_eq!(c.total, 50_000);
        drop(guard);
        // Few visitors stay exact.
        for i in 0..999 {
            m.add("small", start, &format!("visitor-{i}"));
            m.add("small", start, &format!("visitor-{i}"));
        }
        assert_eq!(m.read("small", start).unique_visitors, 999);
    }
}
