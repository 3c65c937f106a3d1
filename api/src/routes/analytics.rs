//! `GET /urls/<id>/analytics`: event counts of one link, exactly the contract's eight keys.
//! Cached for at most one second and invalidated by click ingestion, so a redirect shows up
//! within two seconds.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use entity::{event, url};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::urls::NOT_FOUND;
use super::{Api, Tag, path_id, read_through};
use crate::cache::CacheKey;
use crate::error::{ApiError, ApiResult};
use crate::models::{Analytics, ts};
use crate::state::AppState;

pub struct AnalyticsApi(pub Api);

#[derive(ApiResponse)]
pub enum AnalyticsRead {
    /// Counts of the link's events. `X-Cache` tells whether they came from the cache.
    #[oai(status = 200)]
    Ok(Json<Analytics>, #[oai(header = "X-Cache")] String),
}

async fn load(state: &AppState, id: i64) -> ApiResult<Option<Analytics>> {
    let Some(link) = url::Entity::find_by_id(id).one(&state.db).await? else {
        return Ok(None);
    };
    let rows: Vec<(String, i64, Option<NaiveDateTime>)> = event::Entity::find()
        .select_only()
        .column(event::Column::EventType)
        .column_as(Expr::expr(Func::count(Expr::col(event::Column::Id))), "n")
        .column_as(
            Expr::expr(Func::max(Expr::col(event::Column::Timestamp))),
            "latest",
        )
        .filter(event::Column::UrlId.eq(id))
        .group_by(event::Column::EventType)
        .into_tuple()
        .all(&state.db)
        .await?;
    let event_counts: BTreeMap<String, u64> = rows
        .iter()
        .map(|(t, n, _)| (t.clone(), *n as u64))
        .collect();
    let latest = rows.iter().filter_map(|(_, _, l)| *l).max();
    Ok(Some(Analytics {
        url_id: link.id,
        short_code: link.short_code,
        original_url: link.original_url,
        total_events: event_counts.values().sum(),
        click_count: event_counts.get("click").copied().unwrap_or(0),
        redirect_count: event_counts.get("redirect").copied().unwrap_or(0),
        event_counts,
        latest_event_at: latest.map(ts),
    }))
}

#[OpenApi(tag = "Tag::Events")]
impl AnalyticsApi {
    /// Analytics of a link
    ///
    /// Event counts of the link: all events, `click` events, `redirect` events (one per
    /// redirect served, shown within 2 seconds), counts per type and the newest event's time.
    #[oai(path = "/urls/:id/analytics", method = "get")]
    async fn analytics(&self, id: Path<String>) -> ApiResult<AnalyticsRead> {
        let id = path_id(&id, NOT_FOUND)?;
        let state = &self.0;
        let (body, status) = read_through(state, CacheKey::Analytics(id), || load(state, id))
            .await?
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
        Ok(AnalyticsRead::Ok(Json(body), status.into()))
    }
}
