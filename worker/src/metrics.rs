//! Prometheus metrics of `curtain-worker`: jobs, ingestion, lag, queue depth read from the keys,
//! and counter-shard failures. Names follow Prometheus conventions; labels carry the queue and
//! the instance, never a short code.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct WorkerMetrics {
    registry: Registry,
    /// Metrics whose series carry no `instance` label (Prometheus adds its own on scrape).
    unlabelled: Registry,
    pub jobs_done: IntCounter,
    pub job_failures: IntCounter,
    pub clicks_ingested: IntCounter,
    pub clicks_dropped_deleted: IntCounter,
    pub job_seconds: Histogram,
    pub ingest_lag_seconds: Histogram,
    pub queue_jobs: IntGaugeVec,
    pub queue_oldest_age_seconds: IntGaugeVec,
    pub shard_failures: IntCounter,
    pub shard_failovers: IntCounter,
    pub jobs_pruned: IntCounter,
    pub worker_records_pruned: IntCounter,
    pub pool_restarts: IntCounter,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| panic!("metric registration: {e}"));
    metric
}

impl WorkerMetrics {
    /// Builds the registry; definitions are constants, so a failure here is a programming
    /// error that every test would catch.
    #[must_use]
    pub fn new(instance: &str) -> Self {
        let registry = Registry::new_custom(
            None,
            Some([("instance".to_owned(), instance.to_owned())].into()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let counter = |name: &str, help: &str| {
            reg(
                &registry,
                IntCounter::new(name, help).unwrap_or_else(|e| panic!("{e}")),
            )
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            reg(
                &registry,
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                    .unwrap_or_else(|e| panic!("{e}")),
            )
        };
        let gauges = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("{e}")),
            )
        };
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        let seconds = vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
        ];
        Self {
            jobs_done: counter(
                "curtain_worker_jobs_done_total",
                "Jobs finished successfully.",
            ),
            job_failures: counter(
                "curtain_worker_job_failures_total",
                "Job executions that failed (and will be retried).",
            ),
            clicks_ingested: counter(
                "curtain_worker_clicks_ingested_total",
                "Clicks inserted as redirect events.",
            ),
            clicks_dropped_deleted: counter(
                "curtain_worker_clicks_dropped_deleted_total",
                "Clicks dropped because their link was deleted before ingestion.",
            ),
            job_seconds: histogram(
                "curtain_worker_job_duration_seconds",
                "Duration of one click-batch job.",
                seconds.clone(),
            ),
            ingest_lag_seconds: histogram(
                "curtain_worker_ingest_lag_seconds",
                "Time from the oldest redirect of a batch to its ingestion.",
                seconds,
            ),
            queue_jobs: gauges(
                "curtain_queue_jobs",
                "Jobs in the queue by state (read from the Redis keys).",
                &["queue", "state"],
            ),
            queue_oldest_age_seconds: gauges(
                "curtain_queue_oldest_job_age_seconds",
                "Age of the oldest due job not yet picked up.",
                &["queue"],
            ),
            shard_failures: counter(
                "curtain_counter_shard_failures_total",
                "Counter-shard calls that failed.",
            ),
            shard_failovers: counter(
                "curtain_counter_shard_failovers_total",
                "Counter updates written to a failover shard because the owner failed.",
            ),
            jobs_pruned: counter(
                "curtain_queue_jobs_pruned_total",
                "Finished jobs deleted from Redis.",
            ),
            worker_records_pruned: counter(
                "curtain_queue_worker_records_pruned_total",
                "Metadata of dead workers deleted from Redis (apalis-redis leaves it behind).",
            ),
            pool_restarts: counter(
                "curtain_worker_pool_restarts_total",
                "Times the worker pools stopped on their own and were started again.",
            ),
            registry,
            unlabelled: Registry::new(),
        }
    }

    /// Adds the cache's metrics (lookups per tier, warm jobs) to this registry.
    pub fn register_cache(&self, cache: &storage::cache::CacheMetrics) {
        cache
            .register(&self.unlabelled)
            .unwrap_or_else(|e| panic!("cache metrics: {e}"));
    }

    /// The text exposition of every metric.
    #[must_use]
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let mut families = self.registry.gather();
        families.extend(self.unlabelled.gather());
        let _ = TextEncoder::new().encode(&families, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}
