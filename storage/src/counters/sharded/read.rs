//! Reading a code's counters: every shard's, added up.

use chrono::NaiveDateTime;
use redis::aio::ConnectionManager;

use super::ShardedCounters;
use crate::counters::{HOURS, Realtime, hour_of, hour_start};

/// One shard's answer for a code: total, hourly buckets, raw HyperLogLog.
type ShardReply = (Option<u64>, Vec<Option<u64>>, Option<Vec<u8>>);

impl ShardedCounters {
    pub(in crate::counters) async fn read(&self, code: &str, now: NaiveDateTime) -> Realtime {
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
