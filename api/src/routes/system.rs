//! `/health`, `/metrics` and the incident drill route `/debug/fail`.

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
}
