//! Prometheus metrics of the api process: HTTP requests by route template (never the raw
//! path), click-path counters, counter-shard failures, the click queue's depth and age (also
//! exported by the workers, but read here too so the backlog stays visible when every worker is
//! down) and the process collector. `/metrics` itself is not counted.
//!
//! Labels: only the two HTTP families carry `instance` (the contract requires it; Prometheus
//! scrapes the api with `honor_labels: true` so it is kept, see monitoring/prometheus.yml).
//! No other family may carry `instance` or `job`. The hot-path series are created at start-up
//! ([`Metrics::hot_redirect`]), so both HTTP families are exported from the first scrape, and
//! so is every operation's 500 series ([`Metrics::create_failure_series`]), so a route's first
//! failures count in `rate()`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use jobs::QueueDepth;
use poem::PathPattern;
use poem::{Endpoint, IntoResponse, Request, Response};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use storage::counters::ShardStats;

use crate::clicks::ClickMetrics;

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
    pub templates: RouteTemplates,
    shard_failures: IntCounter,
    shard_failovers: IntCounter,
    /// The shard stats last mirrored into the two counters above.
    shards_seen: Arc<Mutex<ShardStats>>,
}

/// What the rate limits count.
#[derive(Clone)]
pub struct LimitMetrics {
    pub limited: IntCounterVec,
    pub unavailable: IntCounter,
}

impl LimitMetrics {
    fn register(registry: &Registry) -> Self {
        let limited = IntCounterVec::new(
            Opts::new(
                "curtain_rate_limited_total",
                "Requests answered 429 by the rate limits, by budget (write, bulk).",
            ),
            &["class"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        registry
            .register(Box::new(limited.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        limited.with_label_values(&["write"]);
        limited.with_label_values(&["bulk"]);
        Self {
            limited,
            unavailable: counter(
                registry,
                "curtain_rate_limit_unavailable_total",
                "Limited requests let through because the rate limiter's Redis did not answer.",
            ),
        }
    }
}

/// Every queue's depth, ages and live workers, under the names and labels the worker exports;
/// set only from a [`crate::queues::QueueMonitor`] reading, the one the queue page shows.
#[derive(Clone)]
pub struct QueueGauges {
    jobs: IntGaugeVec,
    oldest_age_seconds: IntGaugeVec,
    oldest_ready_age_seconds: IntGaugeVec,
    workers_alive: IntGaugeVec,
}

impl QueueGauges {
    fn new(registry: &Registry) -> Self {
        let gauges = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            registry
                .register(Box::new(g.clone()))
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            g
        };
        Self {
            jobs: gauges(
                "curtain_queue_jobs",
                "Jobs in the queue by state (read from the Redis keys; in the embedded default's \
                 in-process click queue, clicks).",
                &["queue", "state"],
            ),
            oldest_age_seconds: gauges(
                "curtain_queue_oldest_job_age_seconds",
                "Age of the oldest due job not yet picked up.",
                &["queue"],
            ),
            oldest_ready_age_seconds: gauges(
                "curtain_queue_oldest_ready_age_seconds",
                "Age of the oldest job ready for a worker (where producers push) not yet picked up.",
                &["queue"],
            ),
            workers_alive: gauges(
                "curtain_queue_workers_alive",
                "Workers of any process whose heartbeat on the queue is recent (in process: the \
                 consuming task).",
                &["queue"],
            ),
        }
    }

    /// Sets the live workers of `queue`.
    pub fn set_workers_alive(&self, queue: &str, n: u64) {
        self.workers_alive.with_label_values(&[queue]).set(n as i64);
    }

    /// Sets every depth gauge of `queue` from one reading.
    pub fn set(&self, queue: &str, d: &QueueDepth) {
        for (state, value) in d.by_state() {
            self.jobs
                .with_label_values(&[queue, state])
                .set(value as i64);
        }
        self.oldest_age_seconds
            .with_label_values(&[queue])
            .set(d.oldest_age_seconds as i64);
        self.oldest_ready_age_seconds
            .with_label_values(&[queue])
            .set(d.oldest_ready_age_seconds as i64);
    }
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
        Self {
            alerts,
            limits,
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

    /// The text exposition of every metric.
    #[must_use]
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Pre-resolved series of the redirect hot path (`/r/<short_code>` answering 302), so it
    /// pays no label lookup per request.
    #[must_use]
    pub fn hot_redirect(&self) -> HotRedirectMetrics {
        let series = |method: &str| {
            (
                self.requests
                    .with_label_values(&[method, HOT_PATH, "302", &self.instance]),
                self.duration
                    .with_label_values(&[method, HOT_PATH, "302", &self.instance]),
            )
        };
        HotRedirectMetrics {
            get: series("GET"),
            head: series("HEAD"),
        }
    }

    /// Creates `http_requests_total{status_code="500"}` at 0 for every operation of the spec
    /// (`paths` of `openapi.json`; `/metrics` is not counted). A counter series that first
    /// appears at 1 shows Prometheus no increase (`rate()` needs an earlier sample), so without
    /// it a route's first 500s, up to a scrape interval of them, would be missing from the 5xx
    /// ratio (`CurtainHigh5xxRatio`) and the dashboards. `.ci/alert-e2e.sh` fires that alert
    /// from one burst of 500s.
    pub fn create_failure_series(&self, paths: &serde_json::Map<String, serde_json::Value>) {
        const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];
        for (path, operations) in paths {
            if path == "/metrics" {
                continue;
            }
            let template = path.replace('{', "<").replace('}', ">");
            for method in operations.as_object().into_iter().flat_map(|o| o.keys()) {
                if METHODS.contains(&method.as_str()) {
                    let method = method.to_ascii_uppercase();
                    self.requests
                        .with_label_values(&[&method, &template, "500", &self.instance]);
                }
            }
        }
    }

    fn observe(&self, method: &str, path: &str, status: poem::http::StatusCode, seconds: f64) {
        self.requests
            .with_label_values(&[method, path, status.as_str(), &self.instance])
            .inc();
        self.duration
            .with_label_values(&[method, path, status.as_str(), &self.instance])
            .observe(seconds);
    }
}

/// The template label of the redirect route.
const HOT_PATH: &str = "/r/<short_code>";

/// See [`Metrics::hot_redirect`].
#[derive(Clone)]
pub struct HotRedirectMetrics {
    get: (IntCounter, Histogram),
    head: (IntCounter, Histogram),
}

impl HotRedirectMetrics {
    pub fn observe(&self, method: &poem::http::Method, started: Instant) {
        let (count, duration) = if method == poem::http::Method::HEAD {
            &self.head
        } else {
            &self.get
        };
        count.inc();
        duration.observe(started.elapsed().as_secs_f64());
    }
}

/// Middleware: times every request and labels it with the matched route template.
pub async fn track<E: Endpoint>(
    metrics: std::sync::Arc<Metrics>,
    ep: E,
    req: Request,
) -> poem::Result<Response> {
    if req.uri().path() == "/metrics" {
        return ep.call(req).await.map(IntoResponse::into_response);
    }
    let method = req.method().clone();
    let raw_path = req.uri().path().to_owned();
    let started = Instant::now();
    let resp = ep.call(req).await.map(IntoResponse::into_response);
    let (status, pattern) = match &resp {
        Ok(r) => (r.status(), r.data::<PathPattern>().map(|p| p.0.to_string())),
        Err(e) => (e.status(), e.data::<PathPattern>().map(|p| p.0.to_string())),
    };
    // A request answered before routing (401, 429) has no pattern: its template is found from
    // the path itself.
    let path = match pattern.as_deref() {
        Some(p) => metrics.templates.label(p),
        None => metrics.templates.for_raw_path(&raw_path),
    };
    metrics.observe(
        method.as_str(),
        path,
        status,
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// Maps the router's patterns (`/users/:param0`) to the contract's templates (`/users/<id>`),
/// learnt once from the OpenAPI paths (`/users/{id}`).
#[derive(Clone, Default)]
pub struct RouteTemplates(Arc<HashMap<String, String>>);

fn shape(path: &str, is_param: impl Fn(&str) -> bool) -> String {
    path.split('/')
        .map(|seg| if is_param(seg) { "*" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

impl RouteTemplates {
    pub fn from_spec_paths<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        let map = paths
            .into_iter()
            .map(|p| {
                let shaped = shape(p, |seg| seg.starts_with('{'));
                (shaped, p.replace('{', "<").replace('}', ">"))
            })
            .collect();
        Self(Arc::new(map))
    }

    /// The template of a matched pattern; patterns outside the spec keep their own text.
    #[must_use]
    pub fn label<'a>(&'a self, pattern: &'a str) -> &'a str {
        if pattern.is_empty() {
            return "unmatched";
        }
        self.0
            .get(&shape(pattern, |seg| {
                seg.starts_with(':') || seg.starts_with('*')
            }))
            .map_or(pattern, String::as_str)
    }

    /// The template a raw request path falls under (the one with the most literal segments), or
    /// `unmatched`.
    #[must_use]
    pub fn for_raw_path(&self, path: &str) -> &str {
        let parts: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .filter(|(shaped, _)| {
                let segs: Vec<&str> = shaped.split('/').collect();
                segs.len() == parts.len()
                    && segs.iter().zip(&parts).all(|(s, p)| *s == "*" || s == p)
            })
            .max_by_key(|(shaped, _)| shaped.split('/').filter(|s| *s != "*").count())
            .map_or("unmatched", |(_, template)| template.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::RouteTemplates;

    #[test]
    fn raw_paths_fall_under_their_most_literal_template() {
        let t = RouteTemplates::from_spec_paths([
            "/users/{id}",
            "/users/bulk",
            "/urls/{id}/analytics",
            "/",
        ]);
        assert_eq!(t.for_raw_path("/users/17"), "/users/<id>");
        assert_eq!(t.for_raw_path("/users/bulk"), "/users/bulk");
        assert_eq!(t.for_raw_path("/urls/3/analytics"), "/urls/<id>/analytics");
        assert_eq!(t.for_raw_path("/"), "/");
        assert_eq!(t.for_raw_path("/nope/a/b"), "unmatched");
        assert_eq!(t.label("/users/:param0"), "/users/<id>");
    }
}
