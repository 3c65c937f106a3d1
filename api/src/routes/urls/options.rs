//! Link options beyond the contract's `Url`: what a create may carry besides `original_url`,
//! `title` and `user_id`, and what `PATCH /urls/<id>/details` may change. Each option is checked
//! after the contract's own fields, so a request the contract knows gets the contract's first
//! error. In a body, an absent option is "unchanged" (on create: the default) and `null` is
//! "back to the default".

use chrono::{NaiveDateTime, Timelike};
use entity::url;
use sea_orm::ActiveValue::Set;
use serde_json::{Map, Value};

use super::tags;
use crate::error::{ApiError, ApiResult};
use crate::fields::char_len;
use crate::short_code::{AliasError, ShortCode};
use crate::target_url::TargetUrl;

/// Longest target (the contract's `original_url` limit).
const MAX_URL: usize = 2048;

/// Redirect statuses a link may answer with.
pub const REDIRECT_STATUSES: [i16; 4] = [301, 302, 307, 308];
/// Longest `cache_control` value.
const MAX_CACHE_CONTROL: usize = 255;

/// What a body says about one option.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Absent: unchanged (on create: the default).
    #[default]
    Keep,
    /// `null`: back to the default.
    Reset,
    /// A new value.
    To(T),
}

impl<T> Change<T> {
    fn is_keep(&self) -> bool {
        matches!(self, Self::Keep)
    }

    fn is_value(&self) -> bool {
        matches!(self, Self::To(_))
    }

    /// Writes the change into a nullable column (`Keep` leaves it as it is).
    fn write(self, column: &mut sea_orm::ActiveValue<Option<T>>)
    where
        Option<T>: Into<sea_orm::Value>,
    {
        match self {
            Self::Keep => {}
            Self::Reset => *column = Set(None),
            Self::To(v) => *column = Set(Some(v)),
        }
    }
}

/// The options that may change after a create (`PATCH /urls/<id>/details`).
#[derive(Debug, Default)]
pub struct OptionPatch {
    pub redirect_status: Change<i16>,
    pub cache_control: Change<String>,
    pub expires_at: Change<NaiveDateTime>,
    pub max_clicks: Change<i64>,
    pub expired_url: Change<String>,
    /// The UTM parameters, in [`UTM`] order.
    pub utm: [Change<String>; 5],
    /// The tags (`null`: none); written to `url_tags` by [`super::tags::replace_tags`].
    pub tags: Change<Vec<String>>,
    /// The new password as given (`null`: the link opens without one); [`Self::apply`] stores
    /// its hash.
    pub password: Change<String>,
}

/// The UTM parameters a link may carry.
pub const UTM: [&str; 5] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
];

/// The keys [`OptionPatch::parse`] reads, in the order it checks them.
pub const PATCH_KEYS: [&str; 12] = [
    "redirect_status",
    "cache_control",
    "expires_at",
    "max_clicks",
    "expired_url",
    "tags",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "password",
];

/// Longest UTM value.
const MAX_UTM: usize = 255;

impl OptionPatch {
    /// Reads the changeable options of `obj` (other keys are the caller's business).
    pub fn parse(obj: &Map<String, Value>) -> ApiResult<Self> {
        Ok(Self {
            redirect_status: field(obj, "redirect_status", redirect_status)?,
            cache_control: field(obj, "cache_control", cache_control)?,
            expires_at: field(obj, "expires_at", expires_at)?,
            max_clicks: field(obj, "max_clicks", max_clicks)?,
            expired_url: field(obj, "expired_url", expired_url)?,
            tags: field(obj, "tags", tags::parse)?,
            utm: [
                field(obj, UTM[0], |v| utm(UTM[0], v))?,
                field(obj, UTM[1], |v| utm(UTM[1], v))?,
                field(obj, UTM[2], |v| utm(UTM[2], v))?,
                field(obj, UTM[3], |v| utm(UTM[3], v))?,
                field(obj, UTM[4], |v| utm(UTM[4], v))?,
            ],
            password: field(obj, "password", password)?,
        })
    }

    /// True when some option is given a non-default value.
    pub fn sets_anything(&self) -> bool {
        self.redirect_status.is_value()
            || self.cache_control.is_value()
            || self.expires_at.is_value()
            || self.max_clicks.is_value()
            || self.expired_url.is_value()
            || matches!(&self.tags, Change::To(tags) if !tags.is_empty())
            || self.utm.iter().any(Change::is_value)
            || self.password.is_value()
    }

    /// True when the body named no option at all.
    pub fn is_empty(&self) -> bool {
        self.redirect_status.is_keep()
            && self.cache_control.is_keep()
            && self.expires_at.is_keep()
            && self.max_clicks.is_keep()
            && self.expired_url.is_keep()
            && self.tags.is_keep()
            && self.utm.iter().all(Change::is_keep)
            && self.password.is_keep()
    }

    /// Writes the given options of `row`'s own columns into it (a password as its argon2id
    /// hash; tags: `replace_tags`); returns the tag change.
    pub async fn apply(self, row: &mut url::ActiveModel) -> ApiResult<Change<Vec<String>>> {
        let password = match self.password {
            Change::To(plain) => Change::To(
                crate::link_passwords::hash(plain)
                    .await
                    .map_err(|e| ApiError::internal(&e))?,
            ),
            Change::Reset => Change::Reset,
            Change::Keep => Change::Keep,
        };
        password.write(&mut row.password_hash);
        self.redirect_status.write(&mut row.redirect_status);
        self.cache_control.write(&mut row.cache_control);
        self.expires_at.write(&mut row.expires_at);
        self.max_clicks.write(&mut row.max_clicks);
        self.expired_url.write(&mut row.expired_url);
        let [source, medium, campaign, term, content] = self.utm;
        source.write(&mut row.utm_source);
        medium.write(&mut row.utm_medium);
        campaign.write(&mut row.utm_campaign);
        term.write(&mut row.utm_term);
        content.write(&mut row.utm_content);
        Ok(self.tags)
    }
}

/// True when `row` (with or without tags) has any option (the contract's idempotent create
/// skips such links).
pub fn has_options(row: &url::Model, tagged: bool) -> bool {
    tagged
        || row.custom_code
        || row.redirect_status.is_some()
        || row.cache_control.is_some()
        || row.expires_at.is_some()
        || row.max_clicks.is_some()
        || row.expired_url.is_some()
        || row.password_hash.is_some()
        || [
            &row.utm_source,
            &row.utm_medium,
            &row.utm_campaign,
            &row.utm_term,
            &row.utm_content,
        ]
        .iter()
        .any(|v| v.is_some())
}

/// `obj[name]` read by `parse`.
fn field<T>(
    obj: &Map<String, Value>,
    name: &str,
    parse: impl FnOnce(&Value) -> ApiResult<T>,
) -> ApiResult<Change<T>> {
    match obj.get(name) {
        None => Ok(Change::Keep),
        Some(Value::Null) => Ok(Change::Reset),
        Some(value) => parse(value).map(Change::To),
    }
}

fn redirect_status(value: &Value) -> ApiResult<i16> {
    value
        .as_i64()
        .filter(|_| !value.is_boolean())
        .and_then(|n| i16::try_from(n).ok())
        .filter(|n| REDIRECT_STATUSES.contains(n))
        .ok_or_else(|| {
            ApiError::bad_request("Field 'redirect_status' must be one of 301, 302, 307, 308")
        })
}

fn cache_control(value: &Value) -> ApiResult<String> {
    let Value::String(raw) = value else {
        return Err(ApiError::bad_request(
            "Field 'cache_control' must be a string",
        ));
    };
    let trimmed = raw.trim();
    // What an HTTP header value may hold: visible ASCII and spaces.
    let valid = !trimmed.is_empty()
        && trimmed.len() <= MAX_CACHE_CONTROL
        && trimmed.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::bad_request(format!(
            "Field 'cache_control' must be 1 to {MAX_CACHE_CONTROL} printable ASCII characters"
        )));
    }
    Ok(trimmed.to_owned())
}

fn expires_at(value: &Value) -> ApiResult<NaiveDateTime> {
    let Value::String(raw) = value else {
        return Err(ApiError::bad_request("Field 'expires_at' must be a string"));
    };
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.naive_utc())
        .map(|t| t.with_nanosecond(0).unwrap_or(t))
        .map_err(|_| {
            ApiError::bad_request(
                "Field 'expires_at' must be an RFC 3339 date-time (e.g. 2026-12-31T23:59:59Z)",
            )
        })
}

fn max_clicks(value: &Value) -> ApiResult<i64> {
    value
        .as_i64()
        .filter(|n| *n >= 1 && !value.is_boolean())
        .ok_or_else(|| ApiError::bad_request("Field 'max_clicks' must be an integer of at least 1"))
}

/// The same rules as `original_url`.
fn expired_url(value: &Value) -> ApiResult<String> {
    let Value::String(raw) = value else {
        return Err(ApiError::bad_request(
            "Field 'expired_url' must be a string",
        ));
    };
    let trimmed = raw.trim();
    let target = TargetUrl::parse(trimmed).ok_or_else(|| {
        ApiError::bad_request("Field 'expired_url' must be a valid http or https URL")
    })?;
    if char_len(trimmed) > MAX_URL {
        return Err(ApiError::bad_request(format!(
            "Field 'expired_url' must not exceed {MAX_URL} characters"
        )));
    }
    Ok(target.into_string())
}

/// A UTM value: trimmed, 1 to 255 characters, no control characters.
fn utm(name: &str, value: &Value) -> ApiResult<String> {
    let Value::String(raw) = value else {
        return Err(ApiError::bad_request(format!(
            "Field '{name}' must be a string"
        )));
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() || char_len(trimmed) > MAX_UTM || trimmed.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "Field '{name}' must be 1 to {MAX_UTM} characters without control characters"
        )));
    }
    Ok(trimmed.to_owned())
}

/// A link password: 1 to 128 characters without control characters, kept exactly as given
/// (no trimming: spaces may be part of it).
fn password(value: &Value) -> ApiResult<String> {
    let Value::String(raw) = value else {
        return Err(ApiError::bad_request("Field 'password' must be a string"));
    };
    let max = crate::link_passwords::MAX_PASSWORD;
    if raw.is_empty() || char_len(raw) > max || raw.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "Field 'password' must be 1 to {max} characters without control characters"
        )));
    }
    Ok(raw.clone())
}

/// The options of a create request, validated.
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// The alias the client chose as the short code.
    pub custom_code: Option<ShortCode>,
    /// The options that may also change later.
    pub patch: OptionPatch,
}

impl CreateOptions {
    /// Reads the options of a create body; absent or null means "not set".
    pub fn parse(obj: &Map<String, Value>) -> ApiResult<Self> {
        let custom_code = match obj.get("custom_code") {
            None | Some(Value::Null) => None,
            Some(Value::String(raw)) => Some(custom_code(raw)?),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "Field 'custom_code' must be a string",
                ));
            }
        };
        let patch = OptionPatch::parse(obj)?;
        Ok(Self { custom_code, patch })
    }

    /// True when the create carries no option: the contract's idempotent create applies.
    pub fn is_plain(&self) -> bool {
        self.custom_code.is_none() && !self.patch.sets_anything()
    }
}

fn custom_code(raw: &str) -> ApiResult<ShortCode> {
    ShortCode::custom(raw).map_err(|e| {
        ApiError::bad_request(match e {
            AliasError::Length | AliasError::Alphabet => {
                "Field 'custom_code' must be 3 to 16 characters of A-Z, a-z, 0-9, '_' and '-'"
                    .to_owned()
            }
            AliasError::Reserved => format!("Field 'custom_code' is a reserved word: '{raw}'"),
        })
    })
}

/// The 409 of a code already in use.
pub fn code_taken(code: &str) -> ApiError {
    ApiError::conflict(format!("Short code '{code}' is already taken"))
}
