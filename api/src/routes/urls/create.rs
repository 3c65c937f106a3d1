//! Creating a link: the validation of a create request, its short code, and what follows
//! every committed write of a link.

use entity::{event, url, user};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, SqlErr, TransactionTrait,
};
use serde_json::{Map, Value};

use super::options::{Change, CreateOptions, code_taken};
use super::tags::replace_tags;
use super::url_hash;
use crate::cache::Invalidation;
use crate::error::{ApiError, ApiResult};
use crate::fields::{IntValue, char_len, int_value};
use crate::models::now;
use crate::state::AppState;
use crate::target_url::TargetUrl;

const MAX_URL: usize = 2048;
const MAX_TITLE: usize = 255;

/// A validated create request.
struct NewUrl {
    target: TargetUrl,
    title: Option<String>,
    user_id: Option<i64>,
    options: CreateOptions,
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null() && v.as_str() != Some(""))
}

/// Title rules shared by create and update for a given `title`: string or null; trimmed;
/// blank → null.
pub(super) fn title_value(value: &Value) -> ApiResult<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            let s = s.trim();
            if s.contains('\0') {
                return Err(ApiError::bad_request(
                    "Field 'title' must not contain NUL characters",
                ));
            }
            if char_len(s) > MAX_TITLE {
                return Err(ApiError::bad_request(format!(
                    "Field 'title' must not exceed {MAX_TITLE} characters"
                )));
            }
            Ok((!s.is_empty()).then(|| s.to_owned()))
        }
        _ => Err(ApiError::bad_request("Field 'title' must be a string")),
    }
}

/// The contract's validation order for a create; the user look-up comes last.
async fn validate_create(state: &AppState, obj: &Map<String, Value>) -> ApiResult<NewUrl> {
    let raw = present(obj.get("original_url"))
        .or_else(|| present(obj.get("long_url")))
        .ok_or_else(|| ApiError::bad_request("Field 'original_url' is required"))?;
    let Value::String(raw) = raw else {
        return Err(ApiError::bad_request(
            "Field 'original_url' must be a string",
        ));
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ApiError::bad_request(
            "Field 'original_url' must not be empty",
        ));
    }
    if !matches!(
        obj.get("title"),
        None | Some(Value::Null | Value::String(_))
    ) {
        return Err(ApiError::bad_request("Field 'title' must be a string"));
    }
    let user_ref = obj.get("user_id").map_or(IntValue::Null, int_value);
    if user_ref == IntValue::NotInt {
        return Err(ApiError::bad_request("Field 'user_id' must be an integer"));
    }
    let target = TargetUrl::parse(trimmed).ok_or_else(|| {
        ApiError::bad_request("Field 'original_url' must be a valid http or https URL")
    })?;
    if char_len(trimmed) > MAX_URL {
        return Err(ApiError::bad_request(format!(
            "Field 'original_url' must not exceed {MAX_URL} characters"
        )));
    }
    let title = obj.get("title").map(title_value).transpose()?.flatten();
    let unknown_user = || ApiError::bad_request("Field 'user_id' must reference an existing user");
    let user_id = match user_ref {
        IntValue::Int(id) => {
            user::Entity::find_by_id(id)
                .one(&state.db)
                .await?
                .ok_or_else(unknown_user)?;
            Some(id)
        }
        IntValue::OutOfRange => return Err(unknown_user()),
        IntValue::Null | IntValue::NotInt => None,
    };
    let options = CreateOptions::parse(obj)?;
    Ok(NewUrl {
        target,
        title,
        user_id,
        options,
    })
}

/// Creates a link (or finds the active one with the same URL): the single code path of
/// `POST /urls` and `POST /shorten-ui`. Returns the link and whether it is new.
///
/// Only a plain create (no link option) is idempotent, and it only finds links created without
/// options: a client asking for an alias, an expiry or a click limit gets a link of its own.
pub async fn create_url(state: &AppState, body: Option<&Value>) -> ApiResult<(url::Model, bool)> {
    let empty = Map::new();
    let obj = match body {
        None => &empty,
        Some(Value::Object(obj)) => obj,
        Some(_) => return Err(ApiError::bad_request("JSON body must be an object")),
    };
    let new = validate_create(state, obj).await?;
    let hash = url_hash(new.target.as_str());
    let plain = new.options.is_plain();
    if plain {
        let existing = url::Entity::find()
            .filter(url::Column::OriginalUrlHash.eq(hash))
            .filter(url::Column::OriginalUrl.eq(new.target.as_str()))
            .filter(url::Column::IsActive.eq(true))
            .filter(url::Column::HasOptions.eq(false))
            .order_by_asc(url::Column::Id)
            .one(&state.db)
            .await?;
        if let Some(existing) = existing {
            return Ok((existing, false));
        }
    }
    let custom = new.options.custom_code.clone();
    if let Some(code) = &custom
        && code_in_use(&state.db, code.as_str()).await?
    {
        return Err(code_taken(code.as_str()));
    }

    let created_at = now();
    // A generated code is derived from the id, known once the row exists: until then the row
    // holds a placeholder no code can equal (`~` is outside the code alphabet).
    let first_code = custom.as_ref().map_or_else(
        || format!("~{}", &uuid::Uuid::new_v4().simple().to_string()[..15]),
        |c| c.as_str().to_owned(),
    );
    let mut fresh = url::ActiveModel {
        user_id: Set(new.user_id),
        short_code: Set(first_code),
        original_url: Set(new.target.into_string()),
        original_url_hash: Set(hash),
        title: Set(new.title),
        is_active: Set(true),
        created_at: Set(created_at),
        updated_at: Set(created_at),
        custom_code: Set(custom.is_some()),
        has_options: Set(!plain),
        ..Default::default()
    };
    let tags = new.options.patch.apply(&mut fresh).await?;
    // After the password's hash is computed: no connection is held through it.
    let txn = state.db.begin().await?;
    let inserted = fresh.insert(&txn).await;
    let row = match (inserted, &custom) {
        // Taken since the check above (by a concurrent create): still a 409.
        (Err(e), Some(code)) if is_unique_violation(&e) => return Err(code_taken(code.as_str())),
        (inserted, Some(_)) => inserted?,
        (inserted, None) => assign_code(state, &txn, inserted?).await?,
    };
    if let Change::To(tags) = &tags {
        replace_tags(&txn, row.id, tags).await?;
    }
    event::ActiveModel {
        url_id: Set(Some(row.id)),
        user_id: Set(row.user_id),
        event_type: Set("created".to_owned()),
        timestamp: Set(created_at),
        details: Set(Some(serde_json::json!({
            "short_code": row.short_code,
            "original_url": row.original_url,
        }))),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    storage::webhooks::record_link_event(
        &txn,
        storage::webhooks::LINK_CREATED,
        &link_data(&row, None),
        created_at,
    )
    .await?;
    txn.commit().await?;
    after_link_write(state, &row).await;
    Ok((row, true))
}

/// The `data` of a link event's webhook delivery: the link as `GET /urls/<id>` shows it
/// (with its options when `details` is given).
pub(super) fn link_data(
    row: &url::Model,
    details: Option<crate::models::LinkDetails>,
) -> serde_json::Value {
    let mut link = crate::models::Url::from(row.clone());
    link.details = details;
    serde_json::to_value(link).unwrap_or_default()
}

/// After a committed create or update of `row`: its webhook deliveries handed over, its
/// caches invalidated on every instance, then its redirect warmed with the new state.
pub(super) async fn after_link_write(state: &AppState, row: &url::Model) {
    state.webhooks.committed();
    state
        .cache
        .invalidate(Invalidation::link(row.id, &row.short_code))
        .await;
    state
        .warmer
        .after_write(&state.db, &state.cache, row.id)
        .await;
}

async fn code_in_use(db: &impl ConnectionTrait, code: &str) -> Result<bool, DbErr> {
    Ok(url::Entity::find()
        .filter(url::Column::ShortCode.eq(code))
        .count(db)
        .await?
        > 0)
}

fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Gives the new `row` its generated code: the id's code, or the next longer one while that
/// code is taken (by an imported code or a custom alias). An alias committed between the check
/// and the write loses nothing: the write fails on the unique index inside a savepoint, which
/// alone is undone, and the next length is tried.
async fn assign_code(
    state: &AppState,
    txn: &DatabaseTransaction,
    row: url::Model,
) -> ApiResult<url::Model> {
    let id = row.id;
    for attempt in 0.. {
        let Some(code) = state.codes.code_for(id as u64, attempt) else {
            break;
        };
        if code_in_use(txn, &code).await? {
            continue;
        }
        let savepoint = txn.begin().await?;
        let mut active: url::ActiveModel = row.clone().into();
        active.short_code = Set(code);
        match active.update(&savepoint).await {
            Ok(updated) => {
                savepoint.commit().await?;
                return Ok(updated);
            }
            Err(e) if is_unique_violation(&e) => savepoint.rollback().await?,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::internal(&format!(
        "no free short code for url {id}"
    )))
}
