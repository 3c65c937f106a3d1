//! `/health`, `/metrics` and the incident drill routes `/debug/fail` and `/debug/slow`.

use poem_openapi::param::Query;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, OpenApi};

use super::{Api, Tag};
use crate::error::{ApiError, ApiResult};
use crate::models::Health;

pub struct SystemApi(pub Api);

#[derive(ApiResponse)]
pub enum MetricsText {
    /// Prometheus text exposition format.
    #[oai(
        status = 200,
        content_type = "text/plain; version=0.0.4; charset=utf-8"
    )]
    Ok(PlainText<String>),
}

#[OpenApi(tag = "Tag::System")]
impl SystemApi {
    /// Liveness
    ///
    /// Answers while the process serves requests; checks no dependency.
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> Json<Health> {
        Json(Health {
            status: "ok".into(),
            instance: self.0.instance.clone(),
        })
    }

    /// Prometheus metrics
    ///
    /// `http_requests_total` and `http_request_duration_seconds` by route template, click
    /// counters and process metrics. Requests to `/metrics` are not counted.
    #[oai(path = "/metrics", method = "get")]
    async fn metrics(&self) -> MetricsText {
        MetricsText::Ok(PlainText(
            self.0.metrics.render_with_shards(self.0.counters.stats()),
        ))
    }

    /// Deliberate failure (incident drills)
    ///
    /// 404 unless `ENABLE_INCIDENT_DEBUG_ROUTES=true`; then always 500.
    #[oai(path = "/debug/fail", method = "get")]
    async fn debug_fail(&self) -> ApiResult<Json<Health>> {
        if self.0.debug_routes {
            Err(ApiError::internal(&"deliberate failure from /debug/fail"))
        } else {
            Err(ApiError::not_found("Not found"))
        }
    }

    /// Deliberately slow answer (incident drills)
    ///
    /// 404 unless `ENABLE_INCIDENT_DEBUG_ROUTES=true`; then answers `/health`'s body after
    /// `seconds` (0 to 60, fractions allowed), to drill `REQUEST_TIMEOUT_SECONDS` and
    /// `MAX_CONCURRENT_REQUESTS`.
    #[oai(path = "/debug/slow", method = "get")]
    async fn debug_slow(&self, seconds: Query<Option<String>>) -> ApiResult<Json<Health>> {
        if !self.0.debug_routes {
            return Err(ApiError::not_found("Not found"));
        }
        let seconds = match seconds.as_deref().map(str::parse::<f64>) {
            None => 1.0,
            Some(Ok(s)) if (0.0..=60.0).contains(&s) => s,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "Query parameter 'seconds' must be a number from 0 to 60",
                ));
            }
        };
        tokio::time::sleep(std::time::Duration::from_secs_f64(seconds)).await;
        Ok(Json(Health {
            status: "ok".into(),
            instance: self.0.instance.clone(),
        }))
    }
}
