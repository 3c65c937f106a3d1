//! The HTTP families: the [`track`] middleware, the pre-resolved redirect series and the
//! route templates that label every request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use poem::PathPattern;
use poem::{Endpoint, IntoResponse, Request, Response};
use prometheus::{Histogram, IntCounter};

use super::Metrics;

impl Metrics {
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
