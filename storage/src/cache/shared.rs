//! The shared tier on Redis: versioned reads and writes, version bumps with their pub/sub
//! message, and the subscriber that keeps a process's in-process redirect tier honest.
//!
//! Every Redis call is bounded by a short timeout; an unreachable Redis answers `None`.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::tier::Tier;

const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// One round trip: the key's version, then the payload stored under it.
/// KEYS[1]: version key. ARGV[1]: payload key without its version.
const GET: &str = "local v = redis.call('GET', KEYS[1]) or '0' \
                   return {v, redis.call('GET', ARGV[1] .. v)}";

/// Bumps every version key (each kept `ARGV[1]` ms after its last bump) and publishes the
/// codes whose redirects changed. KEYS: version keys. ARGV[2]: channel, ARGV[3]: message.
const BUMP: &str = "for _, k in ipairs(KEYS) do \
                      redis.call('INCR', k) redis.call('PEXPIRE', k, ARGV[1]) \
                    end \
                    if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end \
                    return #KEYS";

pub(crate) struct RedisCache {
    pub(crate) client: redis::Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    get: redis::Script,
    bump: redis::Script,
}

impl RedisCache {
    pub(crate) fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            conn: tokio::sync::Mutex::new(None),
            get: redis::Script::new(GET),
            bump: redis::Script::new(BUMP),
        })
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            return Some(conn.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        match tokio::time::timeout(
            REDIS_TIMEOUT * 2,
            self.client.get_connection_manager_with_config(config),
        )
        .await
        {
            Ok(Ok(conn)) => {
                *guard = Some(conn.clone());
                Some(conn)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cache redis unreachable; serving misses");
                None
            }
            Err(_) => {
                tracing::warn!("cache redis connect timed out; serving misses");
                None
            }
        }
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        cmd: impl FnOnce(ConnectionManager) -> redis::RedisFuture<'static, T>,
    ) -> Option<T> {
        let conn = self.connection().await?;
        match tokio::time::timeout(REDIS_TIMEOUT, cmd(conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cache redis command failed");
                None
            }
            Err(_) => {
                tracing::warn!("cache redis command timed out");
                None
            }
        }
    }

    /// `(version, payload)` of a key; `None` if Redis did not answer.
    pub(crate) async fn get(
        &self,
        version_key: String,
        base: String,
    ) -> Option<(String, Option<String>)> {
        let script = self.get.clone();
        self.run(move |mut conn| {
            Box::pin(async move {
                script
                    .key(version_key)
                    .arg(base)
                    .invoke_async(&mut conn)
                    .await
            })
        })
        .await
    }

    /// The current versions of `keys` (`"0"` for one never bumped).
    pub(crate) async fn versions(&self, keys: Vec<String>) -> Option<Vec<String>> {
        if keys.is_empty() {
            return Some(Vec::new());
        }
        let found: Vec<Option<String>> = self
            .run(move |mut conn| {
                Box::pin(async move { redis::cmd("MGET").arg(keys).query_async(&mut conn).await })
            })
            .await?;
        Some(
            found
                .into_iter()
                .map(|v| v.unwrap_or_else(|| "0".into()))
                .collect(),
        )
    }

    pub(crate) async fn put(&self, key: String, value: String, ttl: Duration) {
        let millis = ttl.as_millis() as u64;
        self.run(move |mut conn| {
            Box::pin(async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(millis)
                    .query_async::<()>(&mut conn)
                    .await
            })
        })
        .await;
    }

    /// Bumps `version_keys` and publishes `message` on `channel` (if not empty), atomically.
    /// `false` if Redis did not take it.
    pub(crate) async fn bump(
        &self,
        version_keys: Vec<String>,
        keep: Duration,
        channel: String,
        message: String,
    ) -> bool {
        if version_keys.is_empty() {
            return true;
        }
        let script = self.bump.clone();
        let keep = keep.as_millis() as u64;
        self.run(move |mut conn| {
            Box::pin(async move {
                let mut invocation = script.prepare_invoke();
                for key in version_keys {
                    invocation.key(key);
                }
                invocation
                    .arg(keep)
                    .arg(channel)
                    .arg(message)
                    .invoke_async::<u64>(&mut conn)
                    .await
            })
        })
        .await
        .is_some()
    }
}

/// Keeps a subscription to the invalidation channel for the life of the process; the tier is
/// enabled only while it is live. A message names the codes whose redirects changed (`all`
/// clears the tier).
pub(crate) async fn subscribe(client: redis::Client, channel: String, tier: Arc<Tier>) {
    use futures_util::StreamExt;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub.subscribe(&channel).await.is_ok() {
                    tier.set_enabled(true);
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let text: String = message.get_payload().unwrap_or_default();
                        if text == "all" || text.is_empty() {
                            tier.clear();
                        } else {
                            let codes: Vec<String> = text.split(' ').map(str::to_owned).collect();
                            tier.invalidate(&codes, false);
                        }
                    }
                }
                tier.set_enabled(false);
                tracing::warn!(
                    "cache invalidation subscription lost; in-process tier off until it is back"
                );
            }
            Err(e) => {
                tier.set_enabled(false);
                tracing::debug!(error = %e, "cache invalidation subscription unavailable");
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
