//! The read-through cache behind `X-Cache: HIT|MISS`.
//!
//! Payloads are cached as the exact JSON the API answers. Every key of a URL-derived payload
//! carries the current *generation*; any write that changes such a payload bumps the
//! generation, which invalidates every cached detail, list, redirect and analytics payload at
//! once, on every instance sharing the Redis. A reader that fetched data before the bump can
//! only store it under the old generation, which nobody reads again, so invalidation has no
//! race. Click ingestion deletes only the analytics key of the links it touched.
//!
//! Redis is used when configured; otherwise an in-process map. A Redis outage is a miss: reads
//! answer `None` and writes are skipped, each bounded by a short timeout.
//!
//! The redirect hot path adds an in-process tier in front of Redis for redirect targets
//! ([`CacheKey::Redirect`]): a hit costs no network round trip. Every generation bump is also
//! published on a Redis channel; each process subscribes and clears its tier on every message,
//! so deactivating or deleting a link stops its redirects on every instance at once. While the
//! subscription is down the tier is off (and cleared), so it can never serve stale targets.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
const MEMORY_MAX_ENTRIES: usize = 100_000;
/// Analytics payloads live at most this long, so new clicks show within two seconds.
pub const ANALYTICS_TTL: Duration = Duration::from_secs(1);

/// What a cached payload is about.
#[derive(Debug, Clone)]
pub enum CacheKey {
    Url(i64),
    UrlList {
        user_id: Option<i64>,
        is_active: Option<bool>,
        limit: u64,
    },
    Redirect(String),
    Analytics(i64),
}

impl CacheKey {
    fn suffix(&self) -> String {
        match self {
            Self::Url(id) => format!("url:{id}"),
            Self::UrlList {
                user_id,
                is_active,
                limit,
            } => {
                format!("urls:{user_id:?}:{is_active:?}:{limit}")
            }
            Self::Redirect(code) => format!("redirect:{code}"),
            Self::Analytics(id) => format!("analytics:{id}"),
        }
    }

    /// The in-process tier's key: redirect targets only.
    fn local(&self) -> Option<&str> {
        match self {
            Self::Redirect(code) => Some(code),
            _ => None,
        }
    }

    fn ttl(&self, default: Duration) -> Duration {
        match self {
            Self::Analytics(_) => default.min(ANALYTICS_TTL),
            _ => default,
        }
    }
}

/// What a reader notes before loading data it will cache (see [`Cache::generation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    shared: String,
    local_epoch: u64,
}

pub struct Cache {
    backend: Backend,
    /// The in-process redirect tier: always on for the in-process backend; for Redis, on only
    /// in processes that serve redirects and only while the invalidation subscription is live.
    local: Arc<LocalTier>,
    prefix: String,
    ttl: Duration,
}

enum Backend {
    Memory(MemoryCache),
    Redis(RedisCache),
}

impl Cache {
    #[must_use]
    pub fn memory(ttl: Duration) -> Self {
        let local = Arc::new(LocalTier::default());
        local.set_enabled(true);
        Self {
            backend: Backend::Memory(MemoryCache::default()),
            local,
            prefix: String::new(),
            ttl,
        }
    }

    /// A Redis-backed cache shared by every process with the same `prefix`.
    pub fn redis(url: &str, prefix: &str, ttl: Duration) -> Result<Self, redis::RedisError> {
        Ok(Self {
            backend: Backend::Redis(RedisCache::new(url)?),
            local: Arc::new(LocalTier::default()),
            prefix: format!("{prefix}:cache:"),
            ttl,
        })
    }

    /// Turns on the in-process redirect tier (for processes that serve redirects): starts the
    /// invalidation subscriber, which enables the tier while it is subscribed. Must be called
    /// inside a Tokio runtime. A no-op for the in-process backend.
    #[must_use]
    pub fn with_redirect_tier(self) -> Self {
        if let Backend::Redis(r) = &self.backend {
            tokio::spawn(subscribe(
                r.client.clone(),
                self.channel(),
                self.local.clone(),
            ));
        }
        self
    }

    fn channel(&self) -> String {
        format!("{}invalidate", self.prefix)
    }

    fn gen_key(&self) -> String {
        format!("{}gen", self.prefix)
    }

    fn full_key(&self, generation: &str, key: &CacheKey) -> String {
        format!("{}{}:{}", self.prefix, generation, key.suffix())
    }

    /// The cached payload, or `None` (a miss, or the cache is unreachable).
    pub async fn get(&self, key: &CacheKey) -> Option<String> {
        let local_key = key.local();
        if let Some(hit) = local_key.and_then(|k| self.local.get(k)) {
            return Some(hit.payload.clone());
        }
        let epoch = self.local.epoch();
        let value = match &self.backend {
            Backend::Memory(m) => m.get(&self.full_key(&m.generation().to_string(), key)),
            Backend::Redis(r) => {
                r.get_with_generation(&self.gen_key(), &self.prefix, &format!(":{}", key.suffix()))
                    .await
            }
        }?;
        if let Some(k) = local_key {
            self.local.put(k.to_owned(), &value, self.ttl, epoch);
        }
        Some(value)
    }

    /// The redirect target cached in this process for `code`, without any I/O: the hot path's
    /// lookup. `None` means "ask [`Cache::get`]" (not cached here, expired or tier off).
    #[must_use]
    pub fn get_local_redirect(&self, code: &str) -> Option<Arc<Cached>> {
        self.local.get(code)
    }

    /// Stores a payload under the generation current *before* the data was read. The caller
    /// passes the generation it got from [`Cache::generation`].
    pub async fn put(&self, generation: &Generation, key: &CacheKey, payload: &str) {
        let full = self.full_key(&generation.shared, key);
        let ttl = key.ttl(self.ttl);
        if let Some(k) = key.local() {
            self.local
                .put(k.to_owned(), payload, ttl, generation.local_epoch);
        }
        match &self.backend {
            Backend::Memory(m) => m.put(full, payload.to_owned(), ttl),
            Backend::Redis(r) => r.put(&full, payload, ttl).await,
        }
    }

    /// The current generation, read before loading data that will be cached.
    pub async fn generation(&self) -> Option<Generation> {
        match &self.backend {
            Backend::Memory(m) => Some(Generation {
                shared: m.generation().to_string(),
                local_epoch: self.local.epoch(),
            }),
            Backend::Redis(r) => {
                let local_epoch = self.local.epoch();
                let shared = r
                    .get_string(&self.gen_key())
                    .await?
                    .unwrap_or_else(|| "0".into());
                Some(Generation {
                    shared,
                    local_epoch,
                })
            }
        }
    }

    /// Invalidates every URL-derived payload (after a write that changed one).
    pub async fn invalidate_all(&self) {
        match &self.backend {
            Backend::Memory(m) => m.bump(),
            Backend::Redis(r) => r.bump(&self.gen_key(), &self.channel()).await,
        }
        // Shared generation first, then the local tier: a reader that starts after the clear
        // sees the new generation; one that started before cannot store.
        self.local.clear();
    }

    /// Drops the analytics payloads of these URLs (click ingestion: never the redirect cache).
    pub async fn invalidate_analytics(&self, url_ids: &[i64]) {
        let Some(generation) = self.generation().await else {
            return;
        };
        let keys: Vec<String> = url_ids
            .iter()
            .map(|id| self.full_key(&generation.shared, &CacheKey::Analytics(*id)))
            .collect();
        match &self.backend {
            Backend::Memory(m) => m.delete(&keys),
            Backend::Redis(r) => r.delete(&keys).await,
        }
    }
}

#[derive(Default)]
struct MemoryCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, (Instant, String)>>,
}

impl MemoryCache {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        // Old generations are unreachable now; free their memory.
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    fn get(&self, key: &str) -> Option<String> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: String, value: String, ttl: Duration) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MEMORY_MAX_ENTRIES {
                let now = Instant::now();
                entries.retain(|_, (expires, _)| *expires > now);
                if entries.len() >= MEMORY_MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key, (Instant::now() + ttl, value));
        }
    }

    fn delete(&self, keys: &[String]) {
        if let Ok(mut entries) = self.entries.lock() {
            for key in keys {
                entries.remove(key);
            }
        }
    }
}

struct RedisCache {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    get_script: redis::Script,
}

impl RedisCache {
    fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            conn: tokio::sync::Mutex::new(None),
            // One round trip: read the generation, then the key under it.
            get_script: redis::Script::new(
                "local g = redis.call('GET', KEYS[1]) or '0' \
                 return redis.call('GET', ARGV[1] .. g .. ARGV[2])",
            ),
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

    async fn get_with_generation(
        &self,
        gen_key: &str,
        before: &str,
        after: &str,
    ) -> Option<String> {
        let script = self.get_script.clone();
        let (gen_key, before, after) = (gen_key.to_owned(), before.to_owned(), after.to_owned());
        self.run(move |mut conn| {
            Box::pin(async move {
                script
                    .key(gen_key)
                    .arg(before)
                    .arg(after)
                    .invoke_async(&mut conn)
                    .await
            })
        })
        .await
        .flatten()
    }

    async fn get_string(&self, key: &str) -> Option<Option<String>> {
        let key = key.to_owned();
        self.run(move |mut conn| {
            Box::pin(async move { redis::cmd("GET").arg(key).query_async(&mut conn).await })
        })
        .await
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) {
        let (key, value) = (key.to_owned(), value.to_owned());
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

    /// Bumps the generation and tells every process to clear its in-process tier.
    async fn bump(&self, key: &str, channel: &str) {
        let (key, channel) = (key.to_owned(), channel.to_owned());
        self.run(move |mut conn| {
            Box::pin(async move {
                redis::pipe()
                    .cmd("INCR")
                    .arg(key)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(channel)
                    .arg("all")
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
            })
        })
        .await;
    }

    async fn delete(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let keys = keys.to_vec();
        self.run(move |mut conn| {
            Box::pin(async move {
                redis::cmd("DEL")
                    .arg(keys)
                    .query_async::<i64>(&mut conn)
                    .await
            })
        })
        .await;
    }
}

/// The in-process tier of redirect targets. `enabled` only while the invalidation
/// subscription is live; `epoch` counts invalidations so a reader that fetched before one can
/// never store what it fetched after it.
#[derive(Default)]
struct LocalTier {
    enabled: std::sync::atomic::AtomicBool,
    epoch: AtomicU64,
    entries: Mutex<HashMap<String, (Instant, Arc<Cached>)>>,
}

/// A payload held by the in-process tier, with a decoded form built once by its first reader
/// (the redirect hot path keeps a ready-made response there).
pub struct Cached {
    payload: String,
    decoded: OnceLock<Option<Box<dyn Any + Send + Sync>>>,
}

impl Cached {
    /// The decoded form, made by `decode` on first use; `None` if it does not decode (or was
    /// decoded as another type).
    pub fn decoded<T: Any + Send + Sync>(
        &self,
        decode: impl FnOnce(&str) -> Option<T>,
    ) -> Option<&T> {
        self.decoded
            .get_or_init(|| {
                decode(&self.payload).map(|v| Box::new(v) as Box<dyn Any + Send + Sync>)
            })
            .as_ref()?
            .downcast_ref()
    }
}

impl LocalTier {
    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn get(&self, key: &str) -> Option<Arc<Cached>> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, v)| Arc::clone(v))
    }

    fn put(&self, key: String, value: &str, ttl: Duration, epoch_seen: u64) {
        if !self.enabled.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            // Checked under the lock that `clear` takes: no invalidation slipped in between.
            if self.epoch() != epoch_seen {
                return;
            }
            if entries.len() >= MEMORY_MAX_ENTRIES {
                entries.clear();
            }
            let cached = Cached {
                payload: value.to_owned(),
                decoded: OnceLock::new(),
            };
            entries.insert(key, (Instant::now() + ttl, Arc::new(cached)));
        }
    }

    fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            entries.clear();
        }
    }

    fn set_enabled(&self, on: bool) {
        self.clear();
        self.enabled.store(on, Ordering::Release);
    }
}

/// Keeps a subscription to the invalidation channel for the life of the process; the tier is
/// enabled only while it is live.
async fn subscribe(client: redis::Client, channel: String, local: Arc<LocalTier>) {
    use futures_util::StreamExt;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub.subscribe(&channel).await.is_ok() {
                    local.set_enabled(true);
                    let mut messages = pubsub.on_message();
                    while messages.next().await.is_some() {
                        local.clear();
                    }
                }
                local.set_enabled(false);
                tracing::warn!(
                    "cache invalidation subscription lost; in-process tier off until it is back"
                );
            }
            Err(e) => {
                local.set_enabled(false);
                tracing::debug!(error = %e, "cache invalidation subscription unavailable");
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
