//! Applying a batch to the shards once, and forgetting a code.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use jobs::Click;

use super::ShardedCounters;
use crate::counters::{CounterError, Delivery, HOURS, hour_of};

const MARKER_TTL_SECS: u64 = 7 * 24 * 3600;

/// Per shard, per (code, hour): clicks and visitor hashes.
type ShardGroups = BTreeMap<usize, BTreeMap<(String, i64), (u64, Vec<String>)>>;

/// KEYS: none (non-cluster). ARGV[1] key prefix, ARGV[2] marker key, ARGV[3] marker ttl,
/// then groups of: code, hour, expire-at, count, n, visitor hashes x n.
pub(super) const APPLY: &str = r"
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

impl ShardedCounters {
    fn marker(&self, batch_id: &str, owner: usize) -> String {
        format!("{}batch:{batch_id}:shard{owner}", self.prefix)
    }

    pub(in crate::counters) async fn apply(
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
