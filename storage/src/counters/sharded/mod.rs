//! Counters on Redis shards chosen by the [`HashRing`]: the shards' connections, and their
//! failure and failover.

mod figures;
mod read;
mod rebuild;
mod stale;
mod write;

pub use rebuild::RebuildError;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::ShardStats;
use crate::ring::HashRing;
use write::APPLY;

const SHARD_TIMEOUT: Duration = Duration::from_millis(500);
const SHARD_BACKOFF: Duration = Duration::from_secs(1);

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
    pub(super) stats: Mutex<ShardStats>,
}

fn shard_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("redis://{addr}/")
    }
}

impl ShardedCounters {
    pub(super) fn new(addrs: &[String], prefix: &str) -> Result<Self, redis::RedisError> {
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
}
