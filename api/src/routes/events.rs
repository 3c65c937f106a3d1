//! `/events`: list with filters, read one, and post client events (e.g. `click`).

use entity::{event, url, user};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::Value;

use super::{Api, Tag, path_id};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::fields::{
    IntParam, IntValue, char_len, contains_nul, int_value, parse_int_param, parse_page,
};
use crate::models::{Event, EventInput, now};

pub struct EventsApi(pub Api);

const NOT_FOUND: &str = "Event not found";

#[derive(ApiResponse)]
pub enum EventCreated {
    /// The event was recorded.
    #[oai(status = 201)]
    Created(Json<Event>),
}

fn bad(message: &str) -> ApiError {
    ApiError::bad_request(message)
}

/// True if every number inside `value` can be stored as written. Numbers are kept verbatim
/// (`arbitrary_precision`), and PostgreSQL's `jsonb` refuses magnitudes its `numeric` cannot
/// hold (`1e1000000`, a 200 000-digit integer) or whose scale is too small (`1e-1000000`): those
/// are client errors, not 500s. The bound used is what an `f64` can represent (finite, and not
/// a non-zero literal that underflows to zero), far inside `numeric`'s range.
fn numbers_storable(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                return true;
            }
            let text = n.to_string();
            let mantissa = text.split(['e', 'E']).next().unwrap_or("");
            let zero = mantissa
                .bytes()
                .all(|b| matches!(b, b'0' | b'.' | b'-' | b'+'));
            text.parse::<f64>()
                .is_ok_and(|f| f.is_finite() && (f != 0.0 || zero))
        }
        Value::Array(items) => items.iter().all(numbers_storable),
        Value::Object(map) => map.values().all(numbers_storable),
        _ => true,
    }
}

/// The list, streamed from the database (constant memory whatever its length).
#[derive(poem_openapi::ApiResponse)]
pub enum EventList {
    /// The events, ordered by id.
    #[oai(status = 200)]
    Ok(crate::stream::JsonArray<Event>),
}

#[OpenApi(tag = "Tag::Events")]
impl EventsApi {
    /// List events
    ///
    /// Ordered by id. Filters: `url_id`, `user_id` (integers) and `event_type` (exact match).
    /// Optional `page`/`per_page` as for users.
    #[oai(path = "/events", method = "get")]
    async fn list(
        &self,
        url_id: Query<Option<String>>,
        user_id: Query<Option<String>>,
        event_type: Query<Option<String>>,
        page: Query<Option<String>>,
        per_page: Query<Option<String>>,
    ) -> ApiResult<EventList> {
        let mut query = event::Entity::find().order_by_asc(event::Column::Id);
        // A filter that can match no row (an id too large for the column, a type holding a NUL
        // that no stored type can contain) answers `[]`, but only once every parameter is valid.
        let mut matches_nothing = false;
        for (name, raw, column) in [
            ("url_id", &url_id.0, event::Column::UrlId),
            ("user_id", &user_id.0, event::Column::UserId),
        ] {
            match raw.as_deref().map(parse_int_param) {
                None => {}
                Some(None) => {
                    return Err(ApiError::bad_request(format!(
                        "Query parameter '{name}' must be an integer"
                    )));
                }
                Some(Some(IntParam::Int(id))) => query = query.filter(column.eq(id)),
                Some(Some(IntParam::OutOfRange)) => matches_nothing = true,
            }
        }
        let page =
            parse_page(page.0.as_deref(), per_page.0.as_deref()).map_err(ApiError::bad_request)?;
        if let Some(event_type) = event_type.0 {
            // PostgreSQL refuses NUL in text parameters: such a filter matches nothing anyway.
            matches_nothing |= event_type.contains('\0');
            if event_type != "redirect" {
                // Written as a literal so PostgreSQL and SQLite both match the partial index
                // of the non-click events (`idx_events_event_type_not_redirect`).
                query = query.filter(Expr::cust("event_type <> 'redirect'"));
            }
            query = query.filter(event::Column::EventType.eq(event_type));
        }
        if matches_nothing {
            // Only an id no row has (a NUL must not reach PostgreSQL as a parameter).
            query = event::Entity::find().filter(event::Column::Id.lt(0));
        }
        if let Some(p) = page {
            query = query.offset(p.offset()).limit(p.per_page);
        }
        Ok(EventList::Ok(crate::stream::rows(
            &self.0.db,
            query,
            Event::from,
        )))
    }

    /// Get an event
    #[oai(path = "/events/:id", method = "get")]
    async fn get(&self, id: Path<String>) -> ApiResult<Json<Event>> {
        let id = path_id(&id, NOT_FOUND)?;
        let row = event::Entity::find_by_id(id)
            .one(&self.0.db)
            .await?
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
        Ok(Json(row.into()))
    }

    /// Record an event
    ///
    /// 400 in this order: body not an object, `event_type` missing, not a non-empty string of
    /// at most 64 characters, `url_id` missing, not an integer, `user_id` not an integer or
    /// null, `details` not an object or null. Then 404 for an unknown link or user. The
    /// timestamp is now; `event_type` is trimmed.
    #[oai(path = "/events", method = "post")]
    async fn create(&self, body: JsonBody<EventInput>) -> ApiResult<EventCreated> {
        let obj = body
            .object()
            .ok_or_else(|| bad("JSON body must be an object"))?;
        let event_type = obj
            .get("event_type")
            .ok_or_else(|| bad("Field 'event_type' is required"))?;
        let event_type = event_type
            .as_str()
            .map(str::trim)
            .filter(|t| !t.is_empty() && char_len(t) <= 64 && !t.contains('\0'))
            .ok_or_else(|| bad("Field 'event_type' must be a non-empty string"))?
            .to_owned();
        let url_ref = match obj.get("url_id").map(int_value) {
            None => return Err(bad("Field 'url_id' is required")),
            Some(IntValue::Null | IntValue::NotInt) => {
                return Err(bad("Field 'url_id' must be an integer"));
            }
            Some(v) => v,
        };
        let user_ref = obj.get("user_id").map_or(IntValue::Null, int_value);
        if user_ref == IntValue::NotInt {
            return Err(bad("Field 'user_id' must be an integer"));
        }
        let details = match obj.get("details") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) if contains_nul(v) => {
                return Err(bad("Field 'details' must not contain NUL characters"));
            }
            Some(v @ Value::Object(_)) if !numbers_storable(v) => {
                return Err(bad("Field 'details' contains a number out of range"));
            }
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => return Err(bad("Field 'details' must be a JSON object")),
        };
        let url_id = match url_ref {
            IntValue::Int(id) if url::Entity::find_by_id(id).one(&self.0.db).await?.is_some() => id,
            _ => return Err(ApiError::not_found(super::urls::NOT_FOUND)),
        };
        let user_id = match user_ref {
            IntValue::Null => None,
            IntValue::Int(id)
                if user::Entity::find_by_id(id)
                    .one(&self.0.db)
                    .await?
                    .is_some() =>
            {
                Some(id)
            }
            _ => return Err(ApiError::not_found("User not found")),
        };
        let row = event::ActiveModel {
            url_id: Set(Some(url_id)),
            user_id: Set(user_id),
            event_type: Set(event_type),
            timestamp: Set(now()),
            details: Set(details),
            ..Default::default()
        }
        .insert(&self.0.db)
        .await?;
        self.0.cache.invalidate_analytics(&[url_id]).await;
        Ok(EventCreated::Created(Json(row.into())))
    }
}
