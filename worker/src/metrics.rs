//! Prometheus metrics of `curtain-worker`: per-queue job outcomes and durations, queue depth,
//! age and live workers read from the Redis keys, ingestion and its lag, counter-shard
//! failures and pool restarts, plus the process collector.
//!
//! Rules: every `curtain_queue_*` family carries a `queue` label and nothing else identifies a
//! process: no `instance` or `job` label (Prometheus sets those from the scrape target, and a
//! constant one here would collide with them). Every label set is created at start-up
//! ([`WorkerMetrics::queue`]), so each family is exported from the first scrape, before any
//! job ran; the monitoring check in CI relies on it.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Depth states of [`WorkerMetrics::queue_jobs`]; together they partition a queue's jobs.
pub const QUEUE_STATES: [&str; 6] = ["ready", "due", "scheduled", "running", "dead", "done"];

#[derive(Clone)]
pub struct WorkerMetrics {
    registry: Registry,
    per_queue: QueueFamilies,
    /// The series of the click queue, resolved once.
    pub clicks: QueueSeries,
    pub clicks_ingested: IntCounter,
    pub clicks_dropped_deleted: IntCounter,
    /// Groups of click batches ingested together ([`crate::coalesce`]).
    pub click_ingest_groups: IntCounter,
    /// Duration of each group's ingestion (events, counters, cache).
    pub click_ingest_group_seconds: Histogram,
    pub ingest_lag_seconds: Histogram,
    /// `{queue, state}`: see [`QUEUE_STATES`].
    pub queue_jobs: IntGaugeVec,
    pub queue_oldest_age_seconds: IntGaugeVec,
    pub workers_alive: IntGaugeVec,
    pub queue_oldest_ready_age_seconds: IntGaugeVec,
    pub shard_failures: IntCounter,
    pub shard_failovers: IntCounter,
    pub pool_restarts: IntCounter,
    /// Counter rebuilds by result (`ok`, `failed`).
    pub counter_rebuilds: IntCounterVec,
    /// Redirect events read by counter rebuilds.
    pub counter_rebuild_clicks: IntCounter,
    pub alerts: alerts::AlertMetrics,
    pub webhooks: webhooks::WebhookMetrics,
}

/// One queue's job counters and duration histogram.
#[derive(Clone)]
pub struct QueueSeries {
    /// Executions that succeeded.
    pub processed: IntCounter,
    /// Executions that returned an error.
    pub failed: IntCounter,
    /// Failed executions the queue runs again (the rest go to the dead set).
    pub retried: IntCounter,
    /// Duration of every execution, successful or not.
    pub duration: Histogram,
    /// Finished jobs deleted from Redis.
    pub pruned: IntCounter,
    /// Metadata hashes of dead workers deleted from Redis.
    pub worker_records_pruned: IntCounter,
    /// Jobs found stranded (nowhere, or held by an unregistered worker) and put back.
    pub stranded_recovered: IntCounter,
    /// Jobs apalis-redis buried after 25 attempts that were scheduled again.
    pub dead_redriven: IntCounter,
}

/// The `{queue}` families behind [`QueueSeries`].
#[derive(Clone)]
struct QueueFamilies {
    processed: IntCounterVec,
    failed: IntCounterVec,
    retried: IntCounterVec,
    duration: HistogramVec,
    pruned: IntCounterVec,
    worker_records_pruned: IntCounterVec,
    stranded_recovered: IntCounterVec,
    dead_redriven: IntCounterVec,
}

impl QueueFamilies {
    fn register(registry: &Registry, buckets: &[f64]) -> Self {
        let counters = |name: &str, help: &str| {
            reg(
                registry,
                IntCounterVec::new(Opts::new(name, help), &["queue"])
                    .unwrap_or_else(|e| panic!("{e}")),
            )
        };
        Self {
            processed: counters(
                "curtain_queue_jobs_processed_total",
                "Job executions that succeeded.",
            ),
            failed: counters(
                "curtain_queue_jobs_failed_total",
                "Job executions that returned an error.",
            ),
            retried: counters(
                "curtain_queue_jobs_retried_total",
                "Failed job executions the queue schedules again (the others go to the dead set).",
            ),
            duration: reg(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "curtain_queue_job_duration_seconds",
                        "Duration of one job execution, successful or not.",
                    )
                    .buckets(buckets.to_vec()),
                    &["queue"],
                )
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            pruned: counters(
                "curtain_queue_jobs_pruned_total",
                "Finished jobs deleted from Redis.",
            ),
            worker_records_pruned: counters(
                "curtain_queue_worker_records_pruned_total",
                "Metadata of dead workers deleted from Redis (apalis-redis leaves it behind).",
            ),
            stranded_recovered: counters(
                "curtain_queue_stranded_jobs_recovered_total",
                "Jobs found in no list or set, or held by a worker no longer registered, and \
                 put back on the queue.",
            ),
            dead_redriven: counters(
                "curtain_queue_dead_jobs_redriven_total",
                "Jobs apalis-redis buried after 25 failed attempts that were scheduled again.",
            ),
        }
    }

    fn series(&self, queue: &str) -> QueueSeries {
        QueueSeries {
            processed: self.processed.with_label_values(&[queue]),
            failed: self.failed.with_label_values(&[queue]),
            retried: self.retried.with_label_values(&[queue]),
            duration: self.duration.with_label_values(&[queue]),
            pruned: self.pruned.with_label_values(&[queue]),
            worker_records_pruned: self.worker_records_pruned.with_label_values(&[queue]),
            stranded_recovered: self.stranded_recovered.with_label_values(&[queue]),
            dead_redriven: self.dead_redriven.with_label_values(&[queue]),
        }
    }
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| panic!("metric registration: {e}"));
    metric
}

impl WorkerMetrics {
    /// Builds the registry with the label sets of `click_queue` created. Definitions are
    /// constants, so a failure here is a programming error that every test would catch.
    #[must_use]
    #[expect(
        clippy::too_many_lines,
        reason = "one definition per metric family, read top to bottom"
    )]
    pub fn new(click_queue: &str) -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            reg(
                &registry,
                IntCounter::new(name, help).unwrap_or_else(|e| panic!("{e}")),
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
            .register(Box::new(storage::process::ProcessMetrics::for_self()))
            .unwrap_or_else(|e| panic!("{e}"));
        let seconds = vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
        ];
        let per_queue = QueueFamilies::register(&registry, &seconds);
        let clicks = per_queue.series(click_queue);
        let metrics = Self {
            clicks,
            per_queue,
            clicks_ingested: counter(
                "curtain_worker_clicks_ingested_total",
                "Clicks inserted as redirect events.",
            ),
            clicks_dropped_deleted: counter(
                "curtain_worker_clicks_dropped_deleted_total",
                "Clicks dropped because their link was deleted before ingestion.",
            ),
            click_ingest_groups: counter(
                "curtain_worker_click_ingest_groups_total",
                "Ingestions of click batches taken together (jobs per group = click jobs processed / this).",
            ),
            click_ingest_group_seconds: reg(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "curtain_worker_click_ingest_group_seconds",
                        "Duration of the ingestion of one group of click batches.",
                    )
                    .buckets(seconds.clone()),
                )
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            ingest_lag_seconds: reg(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "curtain_worker_ingest_lag_seconds",
                        "Time from the oldest redirect of a batch to its ingestion.",
                    )
                    .buckets(seconds),
                )
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            queue_jobs: gauges(
                "curtain_queue_jobs",
                "Jobs in the queue by state, read from the Redis keys: ready (waiting for a \
                 worker), due (scheduled, time come, not yet promoted), scheduled (waiting for \
                 their time: retry back-off), running, dead (failed for good), done (not yet \
                 pruned).",
                &["queue", "state"],
            ),
            queue_oldest_age_seconds: gauges(
                "curtain_queue_oldest_job_age_seconds",
                "Age of the oldest due job not yet picked up.",
                &["queue"],
            ),
            workers_alive: gauges(
                "curtain_queue_workers_alive",
                "Workers of any process whose heartbeat on the queue is recent.",
                &["queue"],
            ),
            queue_oldest_ready_age_seconds: gauges(
                "curtain_queue_oldest_ready_age_seconds",
                "Age of the oldest job ready for a worker (where producers push) not yet picked up.",
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
            pool_restarts: counter(
                "curtain_worker_pool_restarts_total",
                "Times the worker pools stopped on their own and were started again.",
            ),
            counter_rebuilds: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "curtain_counter_rebuilds_total",
                        "Rebuilds of the real-time counters from the events, by result.",
                    ),
                    &["result"],
                )
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            counter_rebuild_clicks: counter(
                "curtain_counter_rebuild_clicks_total",
                "Redirect events read by counter rebuilds.",
            ),
            alerts: alerts::AlertMetrics::register(&registry),
            webhooks: webhooks::WebhookMetrics::register(&registry),
            registry,
        };
        for result in ["ok", "failed"] {
            let _ = metrics.counter_rebuilds.with_label_values(&[result]);
        }
        let _ = metrics.queue(click_queue);
        metrics
    }

    /// The series of `queue`, created (at zero) if new, gauges included.
    #[must_use]
    pub fn queue(&self, queue: &str) -> QueueSeries {
        for state in QUEUE_STATES {
            let _ = self.queue_jobs.with_label_values(&[queue, state]);
        }
        let _ = self.queue_oldest_age_seconds.with_label_values(&[queue]);
        let _ = self
            .queue_oldest_ready_age_seconds
            .with_label_values(&[queue]);
        let _ = self.workers_alive.with_label_values(&[queue]);
        self.per_queue.series(queue)
    }

    /// Adds the cache's metrics (lookups per tier, warm jobs) to this registry.
    pub fn register_cache(&self, cache: &storage::cache::CacheMetrics) {
        cache
            .register(&self.registry)
            .unwrap_or_else(|e| panic!("cache metrics: {e}"));
    }

    pub fn register_rollups(&self, rollups: &storage::rollup::RollupMetrics) {
        rollups
            .register(&self.registry)
            .unwrap_or_else(|e| panic!("rollup metrics: {e}"));
    }

    pub fn register_health(&self, health: &storage::health::HealthMetrics) {
        health
            .register(&self.registry)
            .unwrap_or_else(|e| panic!("link health metrics: {e}"));
    }

    /// The text exposition of every metric.
    #[must_use]
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}
