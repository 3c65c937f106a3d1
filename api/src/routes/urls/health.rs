//! `POST /urls/<id>/health/check`: an immediate health check of one link, for operators and
//! tests. Its result shows in `GET /urls/<id>/details` (`health_status`, `health_checked_at`,
//! `health_last_error`).

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{NOT_FOUND, find};
use crate::error::{ApiError, ApiResult};
use crate::health::LinkChecks;
use crate::routes::{Api, Tag, path_id};

pub struct HealthCheckApi(pub Api);

/// Answer of `POST /urls/<id>/health/check`.
#[derive(Debug, Object)]
pub struct HealthCheckQueued {
    /// The link to be checked.
    pub url_id: i64,
    /// Always `queued`: the check runs in the background.
    pub status: String,
}

#[derive(ApiResponse)]
pub enum HealthCheckAnswer {
    /// The check is queued (by `curtain-worker`, or in process in the embedded default).
    #[oai(status = 202)]
    Accepted(Json<HealthCheckQueued>),
}

#[OpenApi(tag = "Tag::Urls")]
impl HealthCheckApi {
    /// Check a link's target now
    ///
    /// Queues one health check of the link (the same probe as the schedule's: `HEAD`, then
    /// `GET` on 405/501, 5 redirects at most); its result shows in `GET /urls/<id>/details`.
    /// 404 for an unknown id, 409 when the link's `health_check` is off, 503 when the queue
    /// cannot take the job.
    #[oai(path = "/urls/:id/health/check", method = "post")]
    async fn check(&self, id: Path<String>) -> ApiResult<HealthCheckAnswer> {
        let id = path_id(&id, NOT_FOUND)?;
        let row = find(&self.0, id).await?;
        if !row.health_check {
            return Err(ApiError::conflict(
                "Health checks are off for this link: set health_check to true first",
            ));
        }
        LinkChecks::check_now(&self.0.0, id).await.map_err(|e| {
            tracing::warn!(url.id = id, error = %e, "queueing a link health check failed");
            ApiError::unavailable("Health check queue unavailable; try again")
        })?;
        Ok(HealthCheckAnswer::Accepted(Json(HealthCheckQueued {
            url_id: id,
            status: "queued".to_owned(),
        })))
    }
}
