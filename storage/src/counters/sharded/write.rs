//! Applying a batch to the shards once, and forgetting a code.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use jobs::Click;

use super::ShardedCounters;
use crate::counters::{CounterError, Delivery, HOURS, hour_of};

pub(crate) const MARKER_TTL_SECS: u64 = 7 * 24 * 3600;

/// How long a paused update waits between two tries (a rebuild of its shard is running).
const PAUSE_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// Per (code, hour): clicks and visitor hashes.
type Groups = BTreeMap<(String, i64), (u64, Vec<String>)>;

/// Per owning shard: the batches (id, groups) with clicks of its codes.
type ShardSections<'a> = BTreeMap<usize, Vec<(&'a str, Groups)>>;

/// KEYS: none (non-cluster). ARGV[1] key prefix, ARGV[2] marker ttl, ARGV[3] the pause key of
/// the owning shard, then per batch: its marker key, its group count g, and g groups of:
/// code, hour, expire-at, count, n, visitor hashes x n. Returns the batches counted now, or -1
/// (nothing done) while a rebuild of the owning shard holds the pause key. A batch whose marker
/// is already set is skipped whole.
pub(super) const APPLY: &str = r"
if redis.call('EXISTS', ARGV[3]) == 1 then
  return -1
end
local p = ARGV[1]
local ttl = tonumber(ARGV[2])
local i = 4
local counted = 0
while i <= #ARGV do
  local fresh = redis.call('SET', ARGV[i], '1', 'NX', 'EX', ttl)
  local g = tonumber(ARGV[i+1])
  i = i + 2
  if fresh then
    counted = counted + 1
  end
  for _ = 1, g do
    local code, hour, expire_at, count, n = ARGV[i], ARGV[i+1], tonumber(ARGV[i+2]), tonumber(ARGV[i+3]), tonumber(ARGV[i+4])
    if fresh then
      redis.call('INCRBY', p .. code .. ':total', count)
      local hk = p .. code .. ':h:' .. hour
      redis.call('INCRBY', hk, count)
      redis.call('EXPIREAT', hk, expire_at)
      local first = i + 5
      local last = i + 4 + n
      while first <= last do
        local upto = math.min(first + 999, last)
        redis.call('PFADD', p .. code .. ':uv', unpack(ARGV, first, upto))
        first = upto + 1
      end
    end
    i = i + 5 + n
  end
end
return counted
";

impl ShardedCounters {
    pub(crate) fn marker(&self, batch_id: &str, owner: usize) -> String {
        format!("{}batch:{batch_id}:shard{owner}", self.prefix)
    }

    /// The key a rebuild of shard `owner` holds while it runs: no update of that shard's codes
    /// is applied meanwhile (on any shard).
    pub(crate) fn pause_key(&self, owner: usize) -> String {
        format!("{}pause:shard{owner}", self.prefix)
    }

    /// Counts each batch once per owning shard, however often it is applied, alone or with
    /// others. While a rebuild of an owning shard runs, its part waits for the rebuild to end.
    pub(in crate::counters) async fn apply_many(
        &self,
        parts: &[(&str, &[Click])],
        delivery: Delivery,
    ) -> Result<(), CounterError> {
        let mut by_owner: ShardSections<'_> = BTreeMap::new();
        for (batch_id, clicks) in parts {
            let mut groups: BTreeMap<usize, Groups> = BTreeMap::new();
            for click in *clicks {
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
            for (owner, g) in groups {
                by_owner.entry(owner).or_default().push((batch_id, g));
            }
        }
        for (owner, mut sections) in by_owner {
            if delivery == Delivery::Again {
                let markers: Vec<String> = sections
                    .iter()
                    .map(|(batch, _)| self.marker(batch, owner))
                    .collect();
                let seen = self.markers_on_some_shard(&markers).await?;
                let mut seen = seen.into_iter();
                sections.retain(|_| !seen.next().unwrap_or(false));
                if sections.is_empty() {
                    continue;
                }
            }
            let mut invocation = self.apply_script.prepare_invoke();
            invocation
                .arg(&self.prefix)
                .arg(MARKER_TTL_SECS)
                .arg(self.pause_key(owner));
            for (batch, groups) in &sections {
                invocation.arg(self.marker(batch, owner)).arg(groups.len());
                for ((code, hour), (count, visitors)) in groups {
                    let expire_at = (hour + HOURS + 1) * 3600;
                    invocation
                        .arg(code)
                        .arg(hour)
                        .arg(expire_at)
                        .arg(count)
                        .arg(visitors.len())
                        .arg(visitors);
                }
            }
            let first_code = sections
                .first()
                .and_then(|(_, g)| g.keys().next())
                .map(|k| k.0.clone())
                .unwrap_or_default();
            loop {
                match self.invoke_with_failover(&invocation, &first_code).await? {
                    Some(-1) => tokio::time::sleep(PAUSE_RETRY).await,
                    Some(_) => break,
                    None => return Err(CounterError::NoShard),
                }
            }
        }
        Ok(())
    }

    /// Runs `invocation` on the first shard of `code`'s preference that can be reached: its
    /// reply, or `None` if none could. Fails over only past shards the script was never sent
    /// to. A shard that took the script and then failed to answer (a timeout, a dropped
    /// connection) may still run it: counting it elsewhere too would count it twice, so the
    /// batch is retried and the retry asks every shard for the marker first.
    async fn invoke_with_failover(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
        code: &str,
    ) -> Result<Option<i64>, CounterError> {
        for (attempt, shard) in self.ring.preference(code).into_iter().enumerate() {
            let Some(mut conn) = self.conn(shard).await else {
                continue;
            };
            match invocation.invoke_async::<i64>(&mut conn).await {
                Ok(reply) => {
                    if attempt > 0 && reply >= 0 {
                        self.record(|s| s.failovers += 1);
                    }
                    return Ok(Some(reply));
                }
                Err(e) => {
                    tracing::warn!(shard, error = %e, "counter update failed; the batch will be retried");
                    self.mark_down(shard);
                    return Err(CounterError::Redis(shard, e));
                }
            }
        }
        Ok(None)
    }

    /// For each marker, whether any shard holds it (an earlier run counted the group there, on
    /// the owner or wherever it failed over to). A shard that cannot be asked may hold one: an
    /// error, so the batches are retried once it answers, never counted a second time
    /// meanwhile.
    async fn markers_on_some_shard(&self, markers: &[String]) -> Result<Vec<bool>, CounterError> {
        let mut seen = vec![false; markers.len()];
        for shard in 0..self.shards.len() {
            let Some(mut conn) = self.conn(shard).await else {
                return Err(CounterError::Unverifiable(shard));
            };
            let mut pipe = redis::pipe();
            for marker in markers {
                pipe.cmd("EXISTS").arg(marker);
            }
            let Ok(found) = pipe.query_async::<Vec<bool>>(&mut conn).await else {
                self.mark_down(shard);
                return Err(CounterError::Unverifiable(shard));
            };
            for (s, f) in seen.iter_mut().zip(found) {
                *s |= f;
            }
        }
        Ok(seen)
    }

    pub(in crate::counters) async fn forget(
        &self,
        code: &str,
        now: NaiveDateTime,
    ) -> Result<(), CounterError> {
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
}
