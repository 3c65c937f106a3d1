//! The repeat window and delivery markers: which alert was delivered to which webhook, kept
//! for the window, on Redis (shared by every worker; `SET NX EX`) or in process (embedded).
//!
//! A marker is set only after Discord confirmed the message that carried the alert, and holds
//! the id of the delivery that set it: a retried delivery skips what it already sent (not a
//! suppression), another delivery of the same alert within the window is suppressed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use redis::aio::ConnectionManager;

pub enum Dedup {
    Redis {
        conn: ConnectionManager,
        prefix: String,
    },
    Memory(Mutex<HashMap<String, (String, Instant)>>),
}

/// A short, stable tag of a webhook URL (the URL carries a token: never put it in a key).
#[must_use]
pub fn tag(value: &str) -> String {
    let digest = Md5::digest(value.as_bytes());
    hex::encode(&digest[..8])
}

impl Dedup {
    #[must_use]
    pub fn memory() -> Self {
        Self::Memory(Mutex::new(HashMap::new()))
    }

    #[must_use]
    pub fn redis(conn: ConnectionManager, prefix: &str) -> Self {
        Self::Redis {
            conn,
            prefix: format!("{prefix}:alerts"),
        }
    }

    fn key(&self, key: &str) -> String {
        match self {
            Self::Redis { prefix, .. } => format!("{prefix}:{key}"),
            Self::Memory(_) => key.to_owned(),
        }
    }

    /// The delivery id that set `key`, if it is still within its window.
    pub async fn get(&self, key: &str) -> Result<Option<String>, redis::RedisError> {
        let full = self.key(key);
        match self {
            Self::Redis { conn, .. } => {
                let mut conn = conn.clone();
                redis::cmd("GET").arg(full).query_async(&mut conn).await
            }
            Self::Memory(map) => {
                let mut map = map
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                map.retain(|_, (_, until)| *until > now);
                Ok(map.get(&full).map(|(v, _)| v.clone()))
            }
        }
    }

    /// Sets `key` to `value` for `ttl` unless it is already set.
    pub async fn mark(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), redis::RedisError> {
        let full = self.key(key);
        match self {
            Self::Redis { conn, .. } => {
                let mut conn = conn.clone();
                let _: Option<String> = redis::cmd("SET")
                    .arg(full)
                    .arg(value)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl.as_secs().max(1))
                    .query_async(&mut conn)
                    .await?;
                Ok(())
            }
            Self::Memory(map) => {
                let mut map = map
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                map.entry(full)
                    .or_insert_with(|| (value.to_owned(), Instant::now() + ttl));
                Ok(())
            }
        }
    }
}
