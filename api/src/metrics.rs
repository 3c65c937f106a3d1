//! Prometheus metrics of the api process: HTTP requests by route template (never the raw
//! path), click-path counters and the process collector. `/metrics` itself is not counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use poem::PathPattern;
use poem::{Endpoint, IntoResponse, Request, Response};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::clicks::ClickMetrics;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    instance: String,
    pub clicks: ClickMetrics,
    pub templates: RouteTemplates,
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
                "HTTP request latency, by route template.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "path", "instance"],
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
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
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
        Self {
            registry,
            requests,
            duration,
            instance: instance.to_owned(),
            clicks,
            templates: RouteTemplates::default(),
        }
    }

    /// Adds the cache's metrics (lookups per tier, warm jobs) to this registry.
    pub fn register_cache(&self, cache: &storage::cache::CacheMetrics) {
        cache
            .register(&self.registry)
            .unwrap_or_else(|e| panic!("cache metrics: {e}"));
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
                    .with_label_values(&[method, HOT_PATH, &self.instance]),
            )
        };
        HotRedirectMetrics {
            get: series("GET"),
            head: series("HEAD"),
        }
    }

    fn observe(&self, method: &str, path: &str, status: poem::http::StatusCode, seconds: f64) {
        self.requests
            .with_label_values(&[method, path, status.as_str(), &self.instance])
            .inc();
        self.duration
            .with_label_values(&[method, path, &self.instance])
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
    let started = Instant::now();
    let resp = ep.call(req).await.map(IntoResponse::into_response);
    let (status, pattern) = match &resp {
        Ok(r) => (r.status(), r.data::<PathPattern>().map(|p| p.0.to_string())),
        Err(e) => (e.status(), e.data::<PathPattern>().map(|p| p.0.to_string())),
    };
    let path = pattern
        .as_deref()
        .map_or("unmatched", |p| metrics.templates.label(p));
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
}
