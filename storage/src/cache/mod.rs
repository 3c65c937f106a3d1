//! The read-through cache behind `X-Cache: HIT|MISS`.
//!
//! Payloads are cached as the exact JSON the API answers. Each cached payload has a *version
//! key* naming what it shows: the link (`v:link:<id>`: its detail), the link's events
//! (`v:stats:<id>`: its analytics), the code (`v:code:<code>`: its redirect) or every list at
//! once (`v:lists`: a list key covers every query parameter, so lists share one version). A
//! payload is stored as `<key>@<version>`; a write bumps the versions of exactly what it
//! changed ([`Invalidation`]). A reader reads the version with the payload (one round trip)
//! and stores what it loaded under that version, so a reader that loaded data before a write
//! can only store it where nobody reads again: per-key invalidation without a race, and other
//! links' entries stay warm.
//!
//! Redis is used when configured; otherwise an in-process tier holds everything. A Redis
//! outage is a miss: reads answer a miss and writes are skipped, each bounded by a short
//! timeout. An invalidation Redis does not take is retried until it does ([`pending`]).
//!
//! The redirect hot path adds an in-process tier in front of Redis for redirect targets: a
//! hit costs no network round trip. A bump publishes the codes whose redirects changed; every
//! process subscribes and drops those codes from its tier (the writing process at once), so
//! deactivating or deleting a link stops its redirects on every instance. While the
//! subscription is down the tier is off (and cleared), so it never serves stale targets.

mod invalidate;
mod keys;
mod metrics;
mod pending;
mod shared;
mod tier;

use std::sync::Arc;
use std::time::Duration;

pub use keys::{CacheKey, Invalidation};
pub use metrics::CacheMetrics;
pub use tier::Cached;

use pending::Pending;
use shared::RedisCache;
use tier::Tier;

/// Analytics payloads live at most this long, so new clicks show within two seconds.
pub const ANALYTICS_TTL: Duration = Duration::from_secs(1);
/// Bytes the in-process tier may hold (weighed as key + payload + overhead).
pub const MEMORY_TIER_BYTES: u64 = 64 << 20;
/// How long a version key outlives its last bump beyond the payload TTL: longer than any
/// reader takes between reading a version and storing under it, so a version that expires
/// (and starts again at 0) can never make an old payload readable again.
const VERSION_GRACE: Duration = Duration::from_mins(10);
/// What a reader noted before loading data it may store ([`Cache::put`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The payload's version in Redis (`None` for the in-process backend).
    version: Option<String>,
    /// The in-process tier's epoch.
    epoch: u64,
}

/// The answer of [`Cache::lookup`].
#[derive(Debug)]
pub enum Lookup {
    Hit(String),
    /// Load the data, then store it with this snapshot (`None`: do not store; the cache is
    /// unreachable or catching up on an invalidation).
    Miss(Option<Snapshot>),
}

pub struct Cache {
    shared: Option<Arc<RedisCache>>,
    /// The in-process backend's whole cache, or (with Redis) the redirect tier: on only in
    /// processes that serve redirects and only while the invalidation subscription is live.
    tier: Arc<Tier>,
    prefix: String,
    ttl: Duration,
    metrics: CacheMetrics,
    pending: Arc<Pending>,
}

impl Cache {
    #[must_use]
    pub fn memory(ttl: Duration) -> Self {
        Self {
            shared: None,
            tier: Arc::new(Tier::new(MEMORY_TIER_BYTES, true)),
            prefix: String::new(),
            ttl,
            metrics: CacheMetrics::new(),
            pending: Arc::default(),
        }
    }

    /// A Redis-backed cache shared by every process with the same `prefix`.
    pub fn redis(url: &str, prefix: &str, ttl: Duration) -> Result<Self, redis::RedisError> {
        Ok(Self {
            shared: Some(Arc::new(RedisCache::new(url)?)),
            tier: Arc::new(Tier::new(MEMORY_TIER_BYTES, false)),
            prefix: format!("{prefix}:cache:"),
            ttl,
            metrics: CacheMetrics::new(),
            pending: Arc::default(),
        })
    }

    /// Turns on the in-process redirect tier (for processes that serve redirects): starts the
    /// invalidation subscriber, which enables the tier while it is subscribed. Must be called
    /// inside a Tokio runtime. A no-op for the in-process backend.
    #[must_use]
    pub fn with_redirect_tier(self) -> Self {
        if let Some(shared) = &self.shared {
            tokio::spawn(shared::subscribe(
                shared.client.clone(),
                self.channel(),
                self.tier.clone(),
            ));
        }
        self
    }

    #[must_use]
    pub fn metrics(&self) -> &CacheMetrics {
        &self.metrics
    }

    /// True when payloads are shared through Redis (else this process holds them all).
    #[must_use]
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    fn channel(&self) -> String {
        format!("{}invalidate", self.prefix)
    }

    fn version_key(&self, key: &CacheKey) -> String {
        format!("{}{}", self.prefix, key.version_key())
    }

    fn versioned_base(&self, key: &CacheKey) -> String {
        format!("{}{}@", self.prefix, key.base())
    }

    /// The cached payload, or a miss with what to store the loaded data under.
    pub async fn lookup(&self, key: &CacheKey) -> Lookup {
        let epoch = self.tier.epoch();
        let Some(shared) = &self.shared else {
            if let Some(hit) = self.tier.get(&key.tier_key(self.tier.list_generation())) {
                self.metrics.memory_hit.inc();
                return Lookup::Hit(hit.payload.clone());
            }
            self.metrics.memory_miss.inc();
            return Lookup::Miss(Some(Snapshot {
                version: None,
                epoch,
            }));
        };
        let redirect = matches!(key, CacheKey::Redirect(_));
        if redirect && self.tier.enabled() {
            if let Some(hit) = self.tier.get(&key.tier_key(0)) {
                self.metrics.memory_hit.inc();
                return Lookup::Hit(hit.payload.clone());
            }
            self.metrics.memory_miss.inc();
        }
        if self.pending.degraded() {
            self.metrics.redis_miss.inc();
            return Lookup::Miss(None);
        }
        let Some((version, value)) = shared
            .get(self.version_key(key), self.versioned_base(key))
            .await
        else {
            self.metrics.redis_miss.inc();
            return Lookup::Miss(None);
        };
        if let Some(payload) = value {
            self.metrics.redis_hit.inc();
            if redirect {
                self.tier
                    .put(key.tier_key(0), &payload, key.ttl(self.ttl), epoch);
            }
            return Lookup::Hit(payload);
        }
        self.metrics.redis_miss.inc();
        Lookup::Miss(Some(Snapshot {
            version: Some(version),
            epoch,
        }))
    }

    /// The redirect target cached in this process for `code`, without any I/O: the hot path's
    /// lookup. `None` means "ask [`Cache::lookup`]" (not cached here, expired or tier off).
    #[must_use]
    pub fn get_local_redirect(&self, code: &str) -> Option<Arc<Cached>> {
        let hit = self.tier.get(code)?;
        self.metrics.memory_hit.inc();
        Some(hit)
    }

    /// Snapshots of `keys` taken before loading their data without a lookup (warming).
    /// `None`: do not store.
    pub async fn snapshots(&self, keys: &[CacheKey]) -> Option<Vec<Snapshot>> {
        let epoch = self.tier.epoch();
        let Some(shared) = &self.shared else {
            return Some(vec![
                Snapshot {
                    version: None,
                    epoch
                };
                keys.len()
            ]);
        };
        if self.pending.degraded() {
            return None;
        }
        let versions = shared
            .versions(keys.iter().map(|k| self.version_key(k)).collect())
            .await?;
        Some(
            versions
                .into_iter()
                .map(|v| Snapshot {
                    version: Some(v),
                    epoch,
                })
                .collect(),
        )
    }

    /// Stores a payload loaded after `snapshot` was taken: where readers look only if no
    /// write changed it since.
    pub async fn put(&self, snapshot: &Snapshot, key: &CacheKey, payload: &str) {
        let ttl = key.ttl(self.ttl);
        let Some(shared) = &self.shared else {
            let tier_key = key.tier_key(self.tier.list_generation());
            self.tier.put(tier_key, payload, ttl, snapshot.epoch);
            return;
        };
        let Some(version) = &snapshot.version else {
            return;
        };
        if self.pending.degraded() {
            return;
        }
        if matches!(key, CacheKey::Redirect(_)) {
            self.tier.put(key.tier_key(0), payload, ttl, snapshot.epoch);
        }
        let full = format!("{}{version}", self.versioned_base(key));
        shared.put(full, payload.to_owned(), ttl).await;
    }
}

#[cfg(test)]
mod tests;
