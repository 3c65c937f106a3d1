//! Invalidation: bumping the shared versions of what a write changed, publishing the codes
//! whose redirects changed, and retrying a bump Redis did not take.

use std::sync::Arc;
use std::time::Duration;

use super::pending::Pending;
use super::shared::RedisCache;
use super::{Cache, Invalidation, VERSION_GRACE};

impl Cache {
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
