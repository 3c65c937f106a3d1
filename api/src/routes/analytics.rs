//! `GET /urls/<id>/analytics`: event counts of one link, exactly the contract's eight keys,
//! read from the rollups plus the raw events of the open hour (and of any hour not yet rolled
//! up), so its cost does not grow with the link's clicks. Cached for at most one second and
//! invalidated by click ingestion, so a redirect shows up within two seconds.
//!
//! `GET /urls/<id>/analytics/timeseries`: events, clicks and unique visitors per hour or day.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use entity::url;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use sea_orm::EntityTrait;
use storage::rollup::{Bots, Granularity};

use super::urls::NOT_FOUND;
use super::{Api, BYPASS, Tag, path_id, read_through};
use crate::cache::CacheKey;
use crate::error::{ApiError, ApiResult};
use crate::models::{Analytics, now, ts};
use crate::state::AppState;

pub struct AnalyticsApi(pub Api);

#[derive(ApiResponse)]
pub enum AnalyticsRead {
    /// Counts of the link's events. `X-Cache` tells whether they came from the cache.
    #[oai(status = 200)]
    Ok(Json<Analytics>, #[oai(header = "X-Cache")] String),
}

async fn load(state: &AppState, id: i64, bots: Bots) -> ApiResult<Option<Analytics>> {
    let Some(link) = url::Entity::find_by_id(id).one(&state.db).await? else {
        return Ok(None);
    };
    let totals = storage::rollup::totals(&state.db, id, now()).await?;
    let counted = |t: &storage::rollup::TypeTotal| match bots {
        Bots::Include => t.events,
        Bots::Exclude => t.events - t.bots,
    };
    let event_counts: BTreeMap<String, u64> = totals
        .iter()
        .map(|(t, n)| (t.clone(), counted(n)))
        .collect();
    let latest = totals.values().filter_map(|t| t.latest).max();
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

/// `?exclude_bots=`: absent or `false` → every event; `true` → none flagged as a bot's.
fn parse_bots(raw: Option<&str>) -> ApiResult<Bots> {
    match raw.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
        None | Some("false") => Ok(Bots::Include),
        Some("true") => Ok(Bots::Exclude),
        Some(_) => Err(ApiError::bad_request(
            "Query parameter 'exclude_bots' must be true or false",
        )),
    }
}

/// Most buckets one time-series request may ask for.
pub const MAX_POINTS: i64 = 1_000;

/// One bucket of a time series.
#[derive(Debug, Object)]
pub struct SeriesPoint {
    /// Start of the bucket, UTC `YYYY-MM-DDTHH:MM:SS`.
    pub start: String,
    /// Events of every type.
    pub events: u64,
    /// Redirects served (`redirect` events).
    pub clicks: u64,
    /// Distinct visitors of those redirects (HyperLogLog estimate, standard error 0.81%).
    pub unique_visitors: u64,
}

/// A link's events over time.
#[derive(Debug, Object)]
pub struct TimeSeries {
    /// The link's id.
    pub url_id: i64,
    /// The link's short code.
    pub short_code: String,
    /// `hour` or `day` (UTC).
    pub granularity: String,
    /// Start of the first bucket.
    pub from: String,
    /// End of the last bucket (exclusive).
    pub to: String,
    /// Every bucket from `from` to `to`, oldest first, empty ones included.
    pub points: Vec<SeriesPoint>,
}

/// An ISO 8601 instant: RFC 3339 with an offset (`2026-12-01T10:00:00Z`), a UTC date-time
/// without one (`2026-12-01T10:00:00`, fractions allowed), or a date (its midnight, UTC).
fn parse_instant(name: &str, raw: &str) -> ApiResult<NaiveDateTime> {
    let raw = raw.trim();
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.naive_utc())
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f"))
        .or_else(|_| NaiveDate::parse_from_str(raw, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN)))
        .ok()
        // Far enough from chrono's limits that a range around it cannot overflow.
        .filter(|t| (1..=9999).contains(&chrono::Datelike::year(t)))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Query parameter '{name}' must be an ISO 8601 date-time (e.g. 2026-12-01T10:00:00Z)"
            ))
        })
}

/// The validated range: `[from, to)` with `from` aligned to the granularity.
fn series_range(
    granularity: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    now: NaiveDateTime,
) -> ApiResult<(Granularity, NaiveDateTime, NaiveDateTime)> {
    let granularity = match granularity.map(str::trim) {
        None | Some("hour") => Granularity::Hour,
        Some("day") => Granularity::Day,
        Some(_) => {
            return Err(ApiError::bad_request(
                "Query parameter 'granularity' must be 'hour' or 'day'",
            ));
        }
    };
    let to = match to {
        Some(raw) => parse_instant("to", raw)?,
        // The current bucket included.
        None => granularity.floor(now) + granularity.step(),
    };
    let from = if let Some(raw) = from {
        parse_instant("from", raw)?
    } else {
        // The last 24 hours or 30 days, and the current bucket.
        let default = match granularity {
            Granularity::Hour => 25,
            Granularity::Day => 31,
        };
        granularity.floor(to) - granularity.step() * default
    };
    let from = granularity.floor(from);
    if from >= to {
        return Err(ApiError::bad_request(
            "Query parameter 'from' must be earlier than 'to'",
        ));
    }
    let step = granularity.step().num_seconds();
    let points = ((to - from).num_seconds() + step - 1) / step;
    if points > MAX_POINTS {
        return Err(ApiError::bad_request(format!(
            "The range from 'from' to 'to' spans {points} buckets; at most {MAX_POINTS} are served per request"
        )));
    }
    Ok((granularity, from, to))
}

#[OpenApi(tag = "Tag::Events")]
impl AnalyticsApi {
    /// Analytics of a link
    ///
    /// Event counts of the link: all events, `click` events, `redirect` events (one per
    /// redirect served, shown within 2 seconds), counts per type and the newest event's time.
    ///
    /// `exclude_bots=true` leaves out the redirects flagged as bots' (a user agent on the
    /// `isbot` list, or a HEAD request): the counts are those of the other events (a type
    /// whose events are all bots' shows 0), `latest_event_at` stays the newest event's time.
    /// The keys are the same; that answer is computed per request (`X-Cache: BYPASS`).
    /// `false` or absent: the default answer. Another value is a 400.
    #[oai(path = "/urls/:id/analytics", method = "get")]
    async fn analytics(
        &self,
        id: Path<String>,
        exclude_bots: Query<Option<String>>,
    ) -> ApiResult<AnalyticsRead> {
        let id = path_id(&id, NOT_FOUND)?;
        let bots = parse_bots(exclude_bots.as_deref())?;
        let state = &self.0;
        if bots == Bots::Exclude {
            let body = load(state, id, bots)
                .await?
                .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
            return Ok(AnalyticsRead::Ok(Json(body), BYPASS.into()));
        }
        let (body, status) = read_through(state, CacheKey::Analytics(id), || {
            load(state, id, Bots::Include)
        })
        .await?
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
        Ok(AnalyticsRead::Ok(Json(body), status.into()))
    }

    /// Time series of a link's events
    ///
    /// Events, clicks (redirects) and unique visitors per UTC hour or day, from the rollups
    /// plus the raw events of the open hour. `granularity` is `hour` (default) or `day`;
    /// `from` and `to` are ISO 8601 (RFC 3339 such as `2026-12-01T10:00:00Z`, a UTC date-time
    /// without offset, or a date). Default range: the last 24 hours, or the last 30 days,
    /// current bucket included. Buckets start at `from` rounded down to the granularity and
    /// end before `to`; at most 1,000 per request. 400 for an unknown granularity, an
    /// unparseable time, `from` not before `to`, or too many buckets; 404 for an unknown link.
    /// `exclude_bots=true` counts only the events not flagged as bots' (and only their
    /// visitors); `false` or absent counts every event; another value is a 400.
    #[oai(path = "/urls/:id/analytics/timeseries", method = "get")]
    async fn timeseries(
        &self,
        id: Path<String>,
        granularity: Query<Option<String>>,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
        exclude_bots: Query<Option<String>>,
    ) -> ApiResult<Json<TimeSeries>> {
        let id = path_id(&id, NOT_FOUND)?;
        let now = now();
        let (granularity, from, to) =
            series_range(granularity.as_deref(), from.as_deref(), to.as_deref(), now)?;
        let bots = parse_bots(exclude_bots.as_deref())?;
        let state = &self.0;
        let link = url::Entity::find_by_id(id)
            .one(&state.db)
            .await?
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
        let points =
            storage::rollup::series(&state.db, id, granularity, (from, to), now, bots).await?;
        Ok(Json(TimeSeries {
            url_id: link.id,
            short_code: link.short_code,
            granularity: match granularity {
                Granularity::Hour => "hour",
                Granularity::Day => "day",
            }
            .to_owned(),
            from: ts(from),
            to: ts(to),
            points: points
                .into_iter()
                .map(|p| SeriesPoint {
                    start: ts(p.start),
                    events: p.events,
                    clicks: p.clicks,
                    unique_visitors: p.unique_visitors,
                })
                .collect(),
        }))
    }
}
