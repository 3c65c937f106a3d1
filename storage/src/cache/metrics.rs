//! Cache metrics, registered by each binary on its own registry: lookups per tier and result,
//! warm jobs, and invalidations that had to be retried.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct CacheMetrics {
    requests: IntCounterVec,
    pub(crate) memory_hit: IntCounter,
    pub(crate) memory_miss: IntCounter,
    pub(crate) redis_hit: IntCounter,
    pub(crate) redis_miss: IntCounter,
    /// Warm runs (a job, the embedded warm step after a write, a scheduled top-N pass).
    pub warm_jobs: IntCounter,
    /// Redirect targets written by warming.
    pub warmed_links: IntCounter,
    /// Invalidations that failed and were queued for retry.
    pub invalidation_retries: IntCounter,
}

impl Default for CacheMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheMetrics {
    /// Definitions are constants: a failure here is a programming error every test catches.
    #[must_use]
    pub fn new() -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "curtain_cache_requests_total",
                "Cache lookups by tier (memory: in process, redis: shared) and result.",
            ),
            &["tier", "result"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let counter =
            |name: &str, help: &str| IntCounter::new(name, help).unwrap_or_else(|e| panic!("{e}"));
        Self {
            memory_hit: requests.with_label_values(&["memory", "hit"]),
            memory_miss: requests.with_label_values(&["memory", "miss"]),
            redis_hit: requests.with_label_values(&["redis", "hit"]),
            redis_miss: requests.with_label_values(&["redis", "miss"]),
            requests,
            warm_jobs: counter(
                "curtain_cache_warm_jobs_total",
                "Cache-warming runs: after a create or update, and the scheduled top links.",
            ),
            warmed_links: counter(
                "curtain_cache_warmed_links_total",
                "Redirect targets stored by cache warming.",
            ),
            invalidation_retries: counter(
                "curtain_cache_invalidation_retries_total",
                "Cache invalidations that failed and were queued for retry.",
            ),
        }
    }

    /// Adds every cache metric to `registry`.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.requests.clone()))?;
        registry.register(Box::new(self.warm_jobs.clone()))?;
        registry.register(Box::new(self.warmed_links.clone()))?;
        registry.register(Box::new(self.invalidation_retries.clone()))?;
        Ok(())
    }
}
