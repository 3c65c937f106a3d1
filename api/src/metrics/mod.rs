//! Prometheus metrics of the api process: HTTP requests by route template (never the raw
//! path), click-path counters, visits to unknown codes by prefix, counter-shard failures, the click queue's depth and age (also
//! exported by the workers, but read here too so the backlog stays visible when every worker is
//! down) and the process collector. `/metrics` itself is not counted.
//!
//! Labels: only the two HTTP families carry `instance` (the contract requires it; Prometheus
//! scrapes the api with `honor_labels: true` so it is kept, see monitoring/prometheus.yml).
//! No other family may carry `instance` or `job`. The hot-path series are created at start-up
//! ([`Metrics::hot_redirect`]), so both HTTP families are exported from the first scrape, and
//! so is every operation's 500 series ([`Metrics::create_failure_series`]), so a route's first
//! failures count in `rate()`.

mod http;
mod limits;
mod queue;
mod unknown_codes;

use std::sync::{Arc, Mutex, PoisonError};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

use storage::counters::ShardStats;

use crate::clicks::ClickMetrics;

pub use http::{HotRedirectMetrics, RouteTemplates, track};
pub use limits::LimitMetrics;
pub use queue::QueueGauges;
pub use unknown_codes::UnknownCodeMetrics;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    instance: String,
    pub clicks: ClickMetrics,
    pub queue: QueueGauges,
    pub alerts: alerts::AlertMetrics,
    pub limits: LimitMetrics,
    pub unknown_codes: UnknownCodeMetrics,
    pub webhooks: webhooks::WebhookMetrics,
    pub templates: RouteTemplates,
    shard_failures: IntCounter,
    shard_failovers: IntCounter,
    /// The shard stats last mirrored into the two counters above.
    shards_seen: Arc<Mutex<ShardStats>>,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

impl Metrics {
    /// Builds the registry. Metric definitions are constants: failing here is a programming
    /// error caught by every test.
    #[must_use]
    pub fn new(instance: &str) -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests served, by route template.",
            ),
            &["method", "path", "status_code", "instance"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency, by route template and status.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "path", "status_code", "instance"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        registry
            .register(Box::new(requests.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        registry
            .register(Box::new(duration.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(storage::process::ProcessMetrics::for_self()))
            .unwrap_or_else(|e| panic!("{e}"));
        let clicks = ClickMetrics {
            recorded: counter(
                &registry,
                "curtain_clicks_recorded_total",
                "Clicks written as redirect events in process (embedded default).",
            ),
            enqueued: counter(
                &registry,
                "curtain_clicks_enqueued_total",
                "Clicks enqueued for curtain-worker.",
            ),
            spooled: counter(
                &registry,
                "curtain_clicks_spooled_total",
                "Clicks written to the durable spool because the queue was unreachable.",
            ),
            dropped_deleted: counter(
                &registry,
                "curtain_clicks_dropped_deleted_total",
                "Clicks dropped because their link was deleted before ingestion.",
            ),
            lost_overflow: counter(
                &registry,
                "curtain_clicks_lost_overflow_total",
                "Clicks lost because the in-process click queue was full.",
            ),
        };
        let queue = QueueGauges::new(&registry);
        let alerts = alerts::AlertMetrics::register(&registry);
        let limits = LimitMetrics::register(&registry);
        let unknown_codes = UnknownCodeMetrics::register(&registry);
        let webhooks = webhooks::WebhookMetrics::register(&registry);
        Self {
            alerts,
            limits,
            unknown_codes,
            webhooks,
            shard_failures: counter(
                &registry,
                "curtain_counter_shard_failures_total",
                "Counter-shard calls of this process that failed (reads fan out to every shard).",
            ),
            shard_failovers: counter(
                &registry,
                "curtain_counter_shard_failovers_total",
                "Counter updates written to a failover shard because the owner failed.",
            ),
            shards_seen: Arc::default(),
            registry,
            requests,
            duration,
            instance: instance.to_owned(),
            clicks,
            queue,
            templates: RouteTemplates::default(),
        }
    }

    /// The registry, for families that live with their feature (password links).
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition of every metric, with the counter-shard totals `shards` (read from
    /// the process' counters) mirrored in first.
    #[must_use]
    pub fn render_with_shards(&self, shards: ShardStats) -> String {
        {
            let mut seen = self
                .shards_seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.shard_failures
                .inc_by(shards.failures.saturating_sub(seen.failures));
            self.shard_failovers
                .inc_by(shards.failovers.saturating_sub(seen.failovers));
            *seen = shards;
        }
        self.render()
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
