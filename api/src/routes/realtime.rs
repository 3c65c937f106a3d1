//! `GET /urls/<id>/analytics/realtime`: the sharded real-time counters of a link (total
//! clicks, unique visitors, the last 72 hourly buckets). Never cached: it reads the counters.

use entity::url;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use sea_orm::EntityTrait;

use super::urls::NOT_FOUND;
use super::{Api, Tag, path_id};
use crate::error::{ApiError, ApiResult};
use crate::models::{now, ts};

pub struct RealtimeApi(pub Api);

/// Clicks of one UTC hour.
#[derive(Debug, Object)]
pub struct HourlyClicks {
    /// Start of the hour, UTC `YYYY-MM-DDTHH:00:00`.
    pub hour: String,
    /// Redirects served in that hour.
    pub clicks: u64,
}

/// Real-time counters of a link.
#[derive(Debug, Object)]
pub struct RealtimeAnalytics {
    /// The link's id.
    pub url_id: i64,
    /// The link's short code.
    pub short_code: String,
    /// Redirects counted since the link was created.
    pub total_clicks: u64,
    /// Distinct visitors (HyperLogLog estimate, standard error 0.81%; embedded: exact up to
    /// 1,000, then the same estimate).
    pub unique_visitors: u64,
    /// The last 72 UTC hours, oldest first, the current hour last.
    pub hourly: Vec<HourlyClicks>,
    /// Counter shards that could not be read; their clicks are missing from these numbers.
    pub unavailable_shards: u64,
}

#[OpenApi(tag = "Tag::Events")]
impl RealtimeApi {
    /// Real-time click counters of a link
    ///
    /// Read from the sharded counters the worker updates as clicks are ingested (a redirect
    /// shows up within about a second). 404 for an unknown link.
    #[oai(path = "/urls/:id/analytics/realtime", method = "get")]
    async fn realtime(&self, id: Path<String>) -> ApiResult<Json<RealtimeAnalytics>> {
        let id = path_id(&id, NOT_FOUND)?;
        let link = url::Entity::find_by_id(id)
            .one(&self.0.db)
            .await?
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
        let counts = self.0.counters.read(&link.short_code, now()).await;
        Ok(Json(RealtimeAnalytics {
            url_id: link.id,
            short_code: link.short_code,
            total_clicks: counts.total,
            unique_visitors: counts.unique_visitors,
            hourly: counts
                .hourly
                .into_iter()
                .map(|(hour, clicks)| HourlyClicks {
                    hour: ts(hour),
                    clicks,
                })
                .collect(),
            unavailable_shards: counts.unavailable_shards as u64,
        }))
    }
}
