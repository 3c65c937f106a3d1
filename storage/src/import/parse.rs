//! Parsing each legacy file into the rows to insert.

use entity::{event, url, user};
use sea_orm::ActiveValue::{NotSet, Set};

use domain::now;

use super::records::{Row, each_record, records, rows};
use super::{ImportError, USERS_REQUIRED, err};

fn opt<T: Into<sea_orm::Value> + Clone>(v: Option<T>) -> sea_orm::ActiveValue<T> {
    v.map_or(NotSet, Set)
}

/// Parses `users.csv`: `username`, `email` required; `id`, `created_at` optional.
pub fn parse_users(data: &[u8]) -> Result<Vec<user::ActiveModel>, ImportError> {
    let mut out = Vec::new();
    for_each_user(data, |row| {
        out.push(row);
        Ok(())
    })?;
    Ok(out)
}

/// The users of a `users.csv` read from `reader`, validated and handed to `each` one at a time
/// (constant memory: see [`crate::import_stream`]).
pub fn for_each_user<R: std::io::Read>(
    reader: R,
    mut each: impl FnMut(user::ActiveModel) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    each_record(reader, |line, headers, fields| {
        let row = Row {
            line,
            headers,
            fields: &fields,
        };
        each(user_row(&row)?)
    })
    .map(|_| ())
}

fn user_row(row: &Row<'_>) -> Result<user::ActiveModel, ImportError> {
    let (Some(_), Some(_)) = (row.get("username"), row.get("email")) else {
        return Err(ImportError {
            line: None,
            message: USERS_REQUIRED.to_owned(),
        });
    };
    let email = row.text("email", 255)?.unwrap_or_default();
    Ok(user::ActiveModel {
        id: opt(row.id("id")?),
        username: Set(row.text("username", 120)?.unwrap_or_default()),
        email: Set(email.clone()),
        email_key: Set(Some(email.to_lowercase())),
        created_at: Set(row.timestamp("created_at")?.unwrap_or_else(now)),
    })
}

/// Parses `urls.csv`: `id, user_id, short_code, original_url, title, is_active, created_at,
/// updated_at`; `short_code` and `original_url` required.
pub fn parse_urls(data: &[u8]) -> Result<Vec<url::ActiveModel>, ImportError> {
    let (headers, data) = records(data)?;
    let mut out = Vec::with_capacity(data.len());
    for row in rows(&headers, &data) {
        let code = row
            .get("short_code")
            .filter(|c| domain::ShortCode::parse(c).is_some())
            .ok_or_else(|| {
                err(
                    row.line,
                    "short_code must be 1-16 characters of [A-Za-z0-9_-]",
                )
            })?;
        let raw_target = row
            .text("original_url", 2048)?
            .ok_or_else(|| err(row.line, "original_url is required"))?;
        // The same rule as `POST /urls`: an import must not smuggle in a `javascript:` link.
        let target = domain::TargetUrl::parse(&raw_target)
            .ok_or_else(|| {
                err(
                    row.line,
                    format!("original_url '{raw_target}' must be an http(s) URL with a valid host"),
                )
            })?
            .into_string();
        let is_active = match row.get("is_active").map(str::to_ascii_lowercase).as_deref() {
            None | Some("true" | "1" | "t" | "yes") => true,
            Some("false" | "0" | "f" | "no") => false,
            Some(other) => return Err(err(row.line, format!("invalid is_active '{other}'"))),
        };
        let created = row.timestamp("created_at")?.unwrap_or_else(now);
        out.push(url::ActiveModel {
            id: opt(row.id("id")?),
            user_id: Set(row.id("user_id")?),
            short_code: Set(code.to_owned()),
            original_url_hash: Set(domain::url_hash(&target)),
            original_url: Set(target),
            title: Set(row.text("title", 255)?),
            is_active: Set(is_active),
            created_at: Set(created),
            updated_at: Set(row.timestamp("updated_at")?.unwrap_or(created)),
            // Link options are not part of the legacy data: the columns' defaults.
            ..Default::default()
        });
    }
    Ok(out)
}

/// Parses `events.csv`: `id, url_id, user_id, event_type, timestamp, details` (details a JSON
/// object or empty).
pub fn parse_events(data: &[u8]) -> Result<Vec<event::ActiveModel>, ImportError> {
    let (headers, data) = records(data)?;
    let mut out = Vec::with_capacity(data.len());
    for row in rows(&headers, &data) {
        let event_type = row
            .text("event_type", 64)?
            .ok_or_else(|| err(row.line, "event_type is required"))?;
        let details = row
            .get("details")
            .map(|raw| match serde_json::from_str::<serde_json::Value>(raw) {
                Ok(v @ serde_json::Value::Object(_)) => Ok(v),
                _ => Err(err(row.line, "details must be a JSON object")),
            })
            .transpose()?;
        out.push(event::ActiveModel {
            id: opt(row.id("id")?),
            url_id: Set(row.id("url_id")?),
            user_id: Set(row.id("user_id")?),
            event_type: Set(event_type),
            timestamp: Set(row.timestamp("timestamp")?.unwrap_or_else(now)),
            details: Set(details),
            click_id: Set(None),
            visitor_hash: Set(None),
            user_agent: Set(None),
            referrer: Set(None),
            batch_id: Set(None),
            is_bot: Set(false),
        });
    }
    Ok(out)
}
