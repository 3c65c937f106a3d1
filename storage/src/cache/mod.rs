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

mod metrics;
mod pending;
mod shared;
mod tier;

use std::sync::Arc;
use std::time::Duration;

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
    /// The key without its version.
    fn base(&self) -> String {
        match self {
            Self::Url(id) => format!("url:{id}"),
            Self::UrlList {
                user_id,
                is_active,
                limit,
            } => format!("urls:{user_id:?}:{is_active:?}:{limit}"),
            Self::Redirect(code) => format!("redirect:{code}"),
            Self::Analytics(id) => format!("analytics:{id}"),
        }
    }

    fn version_key(&self) -> String {
        match self {
            Self::Url(id) => format!("v:link:{id}"),
            Self::UrlList { .. } => "v:lists".to_owned(),
            Self::Redirect(code) => format!("v:code:{code}"),
            Self::Analytics(id) => format!("v:stats:{id}"),
        }
    }

    /// The key in the in-process tier: a redirect by its bare code (the hot path looks it up
    /// without building a string; codes hold no `:`), a list under the tier's list generation.
    fn tier_key(&self, list_generation: u64) -> String {
        match self {
            Self::Redirect(code) => code.clone(),
            Self::UrlList { .. } => format!("{}@{list_generation}", self.base()),
            _ => self.base(),
        }
    }

    fn ttl(&self, default: Duration) -> Duration {
        match self {
            Self::Analytics(_) => default.min(ANALYTICS_TTL),
            _ => default,
        }
    }
}

/// What a write made stale: exactly the payloads it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invalidation {
    links: Vec<i64>,
    codes: Vec<String>,
    stats: Vec<i64>,
    lists: bool,
}

impl Invalidation {
    /// A create, update or delete of one link: its detail, analytics (the write adds or
    /// removes events) and redirect, and every list (old and new owner's lists alike).
    #[must_use]
    pub fn link(id: i64, code: &str) -> Self {
        Self {
            links: vec![id],
            codes: vec![code.to_owned()],
            stats: vec![id],
            lists: true,
        }
    }

    /// Links whose owner changed (a user deleted): their details and every list. Their
    /// redirects show no owner and stay.
    #[must_use]
    pub fn owner_changed(ids: impl IntoIterator<Item = i64>) -> Self {
        Self {
            links: ids.into_iter().collect(),
            lists: true,
            ..Self::default()
        }
    }

    /// New events of these links (clicks, posted events): their analytics only.
    #[must_use]
    pub fn analytics(ids: &[i64]) -> Self {
        Self {
            stats: ids.to_vec(),
            ..Self::default()
        }
    }

    fn merge(&mut self, other: Self) {
        self.links.extend(other.links);
        self.codes.extend(other.codes);
        self.stats.extend(other.stats);
        self.lists |= other.lists;
    }

    fn version_keys(&self) -> Vec<String> {
        let links = self.links.iter().map(|id| CacheKey::Url(*id));
        let codes = self.codes.iter().map(|c| CacheKey::Redirect(c.clone()));
        let stats = self.stats.iter().map(|id| CacheKey::Analytics(*id));
        let mut keys: Vec<String> = links
            .chain(codes)
            .chain(stats)
            .map(|k| k.version_key())
            .collect();
        if self.lists {
            keys.push("v:lists".to_owned());
        }
        keys.sort();
        keys.dedup();
        keys
    }

    fn tier_keys(&self) -> Vec<String> {
        let links = self.links.iter().map(|id| CacheKey::Url(*id));
        let stats = self.stats.iter().map(|id| CacheKey::Analytics(*id));
        links
            .chain(stats)
            .map(|k| k.tier_key(0))
            .chain(self.codes.iter().cloned())
            .collect()
    }
}

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

    /// Invalidates what a write changed, on every instance: the shared versions first, then
    /// this process's tier (at once, even if Redis failed). A failed bump is retried.
    pub async fn invalidate(&self, inv: Invalidation) {
        if let Some(shared) = &self.shared
            && !self.bump(shared, &inv).await
        {
            self.metrics.invalidation_retries.inc();
            tracing::warn!(
                ?inv,
                "cache invalidation failed; retrying until Redis takes it"
            );
            if self.pending.add(inv.clone()) {
                tokio::spawn(retry(
                    shared.clone(),
                    self.pending.clone(),
                    self.prefix.clone(),
                    self.ttl,
                ));
            }
        }
        // With Redis the tier holds redirects only: an invalidation naming no code leaves it
        // (and the epoch that in-flight redirect reads check) alone.
        if self.shared.is_none() || !inv.codes.is_empty() {
            self.tier.invalidate(&inv.tier_keys(), inv.lists);
        }
    }

    async fn bump(&self, shared: &RedisCache, inv: &Invalidation) -> bool {
        bump(shared, &self.prefix, self.ttl, inv).await
    }

    /// Drops the analytics payloads of these URLs (new events: never the redirect cache).
    pub async fn invalidate_analytics(&self, url_ids: &[i64]) {
        if !url_ids.is_empty() {
            self.invalidate(Invalidation::analytics(url_ids)).await;
        }
    }
}

async fn bump(shared: &RedisCache, prefix: &str, ttl: Duration, inv: &Invalidation) -> bool {
    let keys = inv
        .version_keys()
        .into_iter()
        .map(|k| format!("{prefix}{k}"))
        .collect();
    shared
        .bump(
            keys,
            ttl + VERSION_GRACE,
            format!("{prefix}invalidate"),
            inv.codes.join(" "),
        )
        .await
}

/// Retries the pending invalidations (merged) with back-off until Redis takes them.
async fn retry(shared: Arc<RedisCache>, pending: Arc<Pending>, prefix: String, ttl: Duration) {
    let mut delay = Duration::from_millis(50);
    loop {
        tokio::time::sleep(delay).await;
        if let Some(inv) = pending.take() {
            if bump(&shared, &prefix, ttl, &inv).await {
                tracing::info!("pending cache invalidation delivered");
            } else {
                pending.put_back(inv);
                delay = (delay * 2).min(Duration::from_secs(1));
                continue;
            }
        }
        if pending.finish() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
