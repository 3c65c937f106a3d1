//! `/urls`: create (idempotent), list, read, update, delete.
//!
//! [`create_url`] is the one code path for `POST /urls` and `POST /shorten-ui`. Reads go
//! through the cache (`X-Cache: HIT|MISS`); writes answer `X-Cache: BYPASS` and invalidate every
//! payload they change before answering.

mod create;
pub mod details;
pub mod health;
mod options;
pub mod qr;
mod tags;

use entity::{event, url, url_tag};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde_json::Value;

use super::users::Deleted;
use super::{Api, BYPASS, Tag, path_id, read_through};
use crate::body::JsonBody;
use crate::cache::{CacheKey, Invalidation};
use crate::error::{ApiError, ApiResult};
use crate::fields::{IntParam, parse_int_param};
use crate::models::{LinkDetails, Url, UrlInput, UrlUpdate, now};
use crate::state::AppState;
use create::{after_link_write, link_data, title_value};
use tags::TagFilter;

pub use create::create_url;

pub struct UrlsApi(pub Api);

pub const NOT_FOUND: &str = "URL not found";

pub use domain::url_hash;

#[derive(ApiResponse)]
pub enum UrlWrite {
    /// An active link with this exact URL already existed; it is returned unchanged.
    #[oai(status = 200)]
    Existing(Json<Url>, #[oai(header = "X-Cache")] String),
    /// The link was created.
    #[oai(status = 201)]
    Created(Json<Url>, #[oai(header = "X-Cache")] String),
}

#[derive(ApiResponse)]
pub enum UrlRead {
    /// The link. `X-Cache` tells whether it came from the cache.
    #[oai(status = 200)]
    Ok(Json<Url>, #[oai(header = "X-Cache")] String),
}

#[derive(ApiResponse)]
pub enum UrlListRead {
    /// Links ordered by id. `X-Cache` tells whether the list came from the cache.
    #[oai(status = 200)]
    Ok(Json<Vec<Url>>, #[oai(header = "X-Cache")] String),
}

async fn find(state: &AppState, id: i64) -> ApiResult<url::Model> {
    url::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))
}

fn query_int(name: &str, raw: Option<&str>) -> ApiResult<Option<IntParam>> {
    raw.map(|r| {
        parse_int_param(r).ok_or_else(|| {
            ApiError::bad_request(format!("Query parameter '{name}' must be an integer"))
        })
    })
    .transpose()
}

/// `?expand=`: absent → the contract's `Url`; `details` → with its `details` object.
fn expand_details(raw: Option<&str>) -> ApiResult<bool> {
    match raw.map(str::trim) {
        None => Ok(false),
        Some("details") => Ok(true),
        Some(_) => Err(ApiError::bad_request(
            "Query parameter 'expand' must be 'details'",
        )),
    }
}

/// The API's `Url`s of `rows`, with their `details` when asked for (tags in one query).
async fn with_details(
    db: &impl sea_orm::ConnectionTrait,
    rows: Vec<url::Model>,
    expand: bool,
) -> ApiResult<Vec<Url>> {
    if !expand {
        return Ok(rows.into_iter().map(Url::from).collect());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut tags = tags::tags_of(db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let details = LinkDetails::of(&row, tags.remove(&row.id).unwrap_or_default());
            Url {
                details: Some(details),
                ..Url::from(row)
            }
        })
        .collect())
}

#[OpenApi(tag = "Tag::Urls")]
impl UrlsApi {
    /// Shorten a URL
    ///
    /// `original_url` (or its alias `long_url`) must be `http://` or `https://` with a host, at
    /// most 2048 characters; it is stored exactly as sent (trimmed). If an active link with the
    /// same URL exists it is returned unchanged with 200 (no event); otherwise 201 with a new
    /// 6-character base62 code and a `created` event. 400 messages, first failure wins: body
    /// not an object, URL required, not a string, blank, `title` not a string, `user_id` not an
    /// integer, invalid URL, too long, unknown user.
    #[oai(path = "/urls", method = "post")]
    async fn create(&self, body: JsonBody<UrlInput>) -> ApiResult<UrlWrite> {
        let (row, created) = create_url(&self.0, body.value.as_ref()).await?;
        let url = Json(Url::from(row));
        Ok(if created {
            UrlWrite::Created(url, BYPASS.into())
        } else {
            UrlWrite::Existing(url, BYPASS.into())
        })
    }

    /// List links
    ///
    /// Ordered by id. Filters: `user_id` (integer), `is_active` (`true`/`false`), `limit`
    /// (default 100, clamped to 1..500; a non-integer means 100), `tag` (repeated and/or
    /// comma-separated: `tag=a&tag=b` or `tag=a,b`) with `tag_mode` `any` (the default: links
    /// with at least one of the tags) or `all` (links with every one). `expand=details` adds
    /// each link's `details` object (its options); any other `expand` is a 400.
    #[oai(path = "/urls", method = "get")]
    async fn list(
        &self,
        user_id: Query<Option<String>>,
        is_active: Query<Option<String>>,
        limit: Query<Option<String>>,
        expand: Query<Option<String>>,
        tag: Query<Option<Vec<String>>>,
        tag_mode: Query<Option<String>>,
    ) -> ApiResult<UrlListRead> {
        let user_id = query_int("user_id", user_id.0.as_deref())?;
        let expand = expand_details(expand.0.as_deref())?;
        let tags = TagFilter::parse(tag.0.as_deref(), tag_mode.0.as_deref())?;
        let is_active = match is_active
            .0
            .as_deref()
            .map(|s| s.trim().to_ascii_lowercase())
        {
            None => None,
            Some(s) if s == "true" => Some(true),
            Some(s) if s == "false" => Some(false),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "Query parameter 'is_active' must be true or false",
                ));
            }
        };
        // A non-integer (or empty) limit means the default; an integer too large for i64 is
        // still an integer and is clamped like any other.
        let raw_limit = limit.0.as_deref().map(str::trim);
        let limit = match raw_limit.and_then(parse_int_param) {
            Some(IntParam::Int(n)) => n,
            Some(IntParam::OutOfRange) if raw_limit.is_some_and(|l| l.starts_with('-')) => 1,
            Some(IntParam::OutOfRange) => 500,
            None => 100,
        }
        .clamp(1, 500) as u64;
        let user_id = match user_id {
            Some(IntParam::OutOfRange) => {
                return Ok(UrlListRead::Ok(Json(Vec::new()), super::MISS.into()));
            }
            Some(IntParam::Int(id)) => Some(id),
            None => None,
        };
        let key = CacheKey::UrlList {
            user_id,
            is_active,
            limit,
            extra: [
                tags.as_ref().map(TagFilter::key),
                expand.then(|| "details".to_owned()),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(";"),
        };
        let db = &self.0.db;
        let (urls, status) = read_through(&self.0, key, || async move {
            let mut query = url::Entity::find()
                .order_by_asc(url::Column::Id)
                .limit(limit);
            if let Some(user_id) = user_id {
                query = query.filter(url::Column::UserId.eq(user_id));
            }
            if let Some(active) = is_active {
                query = query.filter(url::Column::IsActive.eq(active));
            }
            if let Some(tags) = &tags {
                query = query.filter(tags.condition());
            }
            let rows = query.all(db).await?;
            Ok(Some(with_details(db, rows, expand).await?))
        })
        .await?
        .unwrap_or_default();
        Ok(UrlListRead::Ok(Json(urls), status.into()))
    }

    /// Get a link
    ///
    /// `expand=details` adds its `details` object (its options); any other `expand` is a 400.
    #[oai(path = "/urls/:id", method = "get")]
    async fn get(&self, id: Path<String>, expand: Query<Option<String>>) -> ApiResult<UrlRead> {
        let id = path_id(&id, NOT_FOUND)?;
        let expand = expand_details(expand.0.as_deref())?;
        let state = &self.0;
        let key = if expand {
            CacheKey::UrlDetails(id)
        } else {
            CacheKey::Url(id)
        };
        let (url, status) = read_through(state, key, || async move {
            let Some(row) = url::Entity::find_by_id(id).one(&state.db).await? else {
                return Ok(None);
            };
            Ok(with_details(&state.db, vec![row], expand).await?.pop())
        })
        .await?
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
        Ok(UrlRead::Ok(Json(url), status.into()))
    }

    /// Update a link
    ///
    /// Only `title` (string or null) and `is_active` (a JSON boolean) may be given; any other
    /// key answers 400 naming the first one (sorted). A change sets `updated_at`, records an
    /// `updated` event and invalidates every cache of the link, redirects included. `{}`
    /// answers 200 unchanged.
    #[oai(path = "/urls/:id", method = "put")]
    async fn update(&self, id: Path<String>, body: JsonBody<UrlUpdate>) -> ApiResult<UrlRead> {
        let id = path_id(&id, NOT_FOUND)?;
        let existing = find(&self.0, id).await?;
        let obj = body
            .object()
            .ok_or_else(|| ApiError::bad_request("JSON body must be an object"))?;
        let mut unknown: Vec<&String> = obj
            .keys()
            .filter(|k| *k != "title" && *k != "is_active")
            .collect();
        unknown.sort();
        if let Some(key) = unknown.first() {
            return Err(ApiError::bad_request(format!(
                "Field '{key}' cannot be updated"
            )));
        }
        if !matches!(
            obj.get("title"),
            None | Some(Value::Null | Value::String(_))
        ) {
            return Err(ApiError::bad_request("Field 'title' must be a string"));
        }
        let is_active = match obj.get("is_active") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(ApiError::bad_request("Field 'is_active' must be a boolean")),
        };
        let new_title = match obj.get("title") {
            None => existing.title.clone(),
            Some(value) => title_value(value)?,
        };
        let new_active = is_active.unwrap_or(existing.is_active);
        if new_title == existing.title && new_active == existing.is_active {
            return Ok(UrlRead::Ok(Json(existing.into()), BYPASS.into()));
        }
        let owner = existing.user_id;
        let txn = self.0.db.begin().await?;
        let mut active: url::ActiveModel = existing.into();
        active.title = Set(new_title.clone());
        active.is_active = Set(new_active);
        let at = now();
        active.updated_at = Set(at);
        let row = active.update(&txn).await?;
        event::ActiveModel {
            url_id: Set(Some(id)),
            user_id: Set(owner),
            event_type: Set("updated".to_owned()),
            timestamp: Set(at),
            details: Set(Some(
                serde_json::json!({ "title": new_title, "is_active": new_active }),
            )),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        storage::webhooks::record_link_event(
            &txn,
            storage::webhooks::LINK_UPDATED,
            &link_data(&row, None),
            at,
        )
        .await?;
        txn.commit().await?;
        after_link_write(&self.0, &row).await;
        Ok(UrlRead::Ok(Json(row.into()), BYPASS.into()))
    }

    /// Delete a link
    ///
    /// Deletes the link and its events in one transaction; its redirect, detail and analytics
    /// answer 404 afterwards, on every instance; its real-time counters are deleted within
    /// seconds.
    #[oai(path = "/urls/:id", method = "delete")]
    async fn delete(&self, id: Path<String>) -> ApiResult<Deleted> {
        let id = path_id(&id, NOT_FOUND)?;
        let existing = find(&self.0, id).await?;
        let txn = self.0.db.begin().await?;
        event::Entity::delete_many()
            .filter(event::Column::UrlId.eq(id))
            .exec(&txn)
            .await?;
        url_tag::Entity::delete_many()
            .filter(url_tag::Column::UrlId.eq(id))
            .exec(&txn)
            .await?;
        let deleted = url::Entity::delete_by_id(id).exec(&txn).await?;
        // Its real-time counters go too: queued with the delete, removed within seconds.
        storage::tombstones::bury(&txn, &existing.short_code, now()).await?;
        if deleted.rows_affected > 0 {
            storage::webhooks::record_link_event(
                &txn,
                storage::webhooks::LINK_DELETED,
                &link_data(&existing, None),
                now(),
            )
            .await?;
        }
        txn.commit().await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::not_found(NOT_FOUND));
        }
        self.0.webhooks.committed();
        self.0.click_limits.forget(id).await;
        self.0
            .cache
            .invalidate(Invalidation::link(id, &existing.short_code))
            .await;
        Ok(Deleted::NoContent)
    }
}
