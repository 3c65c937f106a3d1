//! The resources as the API shows them (section 1 of the contract), and their OpenAPI schemas.

use chrono::NaiveDateTime;
use entity::prelude::{EventModel, UrlModel, UserModel};
use poem_openapi::Object;
use serde::{Deserialize, Serialize};

/// Formats a timestamp the contract's way: UTC, `YYYY-MM-DDTHH:MM:SS`.
#[must_use]
pub fn ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

pub use domain::now;

/// A user account.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct User {
    /// Identifier.
    pub id: i64,
    /// Display name (at most 120 characters).
    pub username: String,
    /// Email address, unique without regard to case (at most 255 characters).
    pub email: String,
    /// Creation time, UTC `YYYY-MM-DDTHH:MM:SS`.
    pub created_at: String,
}

impl From<UserModel> for User {
    fn from(m: UserModel) -> Self {
        Self {
            id: m.id,
            username: m.username,
            email: m.email,
            created_at: ts(m.created_at),
        }
    }
}

/// A short link.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct Url {
    /// Identifier.
    pub id: i64,
    /// Owner, or null.
    pub user_id: Option<i64>,
    /// The code used in `/r/<short_code>`: base62, case-sensitive.
    pub short_code: String,
    /// The target, exactly as it was sent (trimmed).
    pub original_url: String,
    /// Optional title.
    pub title: Option<String>,
    /// Inactive links answer 404 on redirect.
    pub is_active: bool,
    /// Creation time, UTC `YYYY-MM-DDTHH:MM:SS`.
    pub created_at: String,
    /// Last change, UTC `YYYY-MM-DDTHH:MM:SS`.
    pub updated_at: String,
    /// The link's options: only with `?expand=details` (absent otherwise, so the contract's
    /// key set is unchanged for clients that do not ask).
    #[oai(skip_serializing_if_is_none)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<LinkDetails>,
}

/// The options of a link beyond the contract's `Url` (`GET /urls/<id>/details`, or `details`
/// with `?expand=details`).
#[derive(Debug, Clone, Default, Object, Serialize, Deserialize)]
pub struct LinkDetails {
    /// True when the client chose the short code (`custom_code` on create).
    pub custom_code: bool,
    /// The status redirects answer with: 301, 302 (the default), 307 or 308.
    pub redirect_status: u16,
    /// The `Cache-Control` redirects send, or null (none, the default).
    pub cache_control: Option<String>,
    /// From this time on (UTC `YYYY-MM-DDTHH:MM:SS`) the link is expired; null: never.
    pub expires_at: Option<String>,
    /// The link is expired once it has served this many redirects; null: no limit.
    pub max_clicks: Option<i64>,
    /// Where an expired link redirects (302); null: it answers 410.
    pub expired_url: Option<String>,
    /// The link's tags, sorted (`GET /urls?tag=` filters on them).
    pub tags: Vec<String>,
    /// UTM parameters the redirect adds to the target's query string (null: not added).
    pub utm_source: Option<String>,
    /// See `utm_source`.
    pub utm_medium: Option<String>,
    /// See `utm_source`.
    pub utm_campaign: Option<String>,
    /// See `utm_source`.
    pub utm_term: Option<String>,
    /// See `utm_source`.
    pub utm_content: Option<String>,
    /// True when the link asks visitors for a password (the password is never shown).
    pub password_protected: bool,
}

/// The status a redirect answers with when the link names none.
pub const DEFAULT_REDIRECT_STATUS: u16 = 302;

impl LinkDetails {
    /// The details of link `m` with its `tags`.
    #[must_use]
    pub fn of(m: &UrlModel, tags: Vec<String>) -> Self {
        Self {
            custom_code: m.custom_code,
            redirect_status: m
                .redirect_status
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(DEFAULT_REDIRECT_STATUS),
            cache_control: m.cache_control.clone(),
            expires_at: m.expires_at.map(ts),
            max_clicks: m.max_clicks,
            expired_url: m.expired_url.clone(),
            tags,
            utm_source: m.utm_source.clone(),
            utm_medium: m.utm_medium.clone(),
            utm_campaign: m.utm_campaign.clone(),
            utm_term: m.utm_term.clone(),
            utm_content: m.utm_content.clone(),
            password_protected: m.password_hash.is_some(),
        }
    }
}

/// Request body of `PATCH /urls/<id>/details`: the options to change. An absent field stays
/// as it is; `null` sets it back to its default. Any other key is a 400 (the short code never
/// changes).
#[derive(Debug, Object)]
pub struct LinkOptionsUpdate {
    /// 301, 302, 307 or 308 (null: 302).
    pub redirect_status: Option<u16>,
    /// The redirect's `Cache-Control`: 1 to 255 printable ASCII characters, trimmed (null:
    /// none).
    pub cache_control: Option<String>,
    /// Expiry time, RFC 3339 with an offset (`2026-12-31T23:59:59Z`; null: never). A past time
    /// expires the link at once.
    pub expires_at: Option<String>,
    /// Redirects the link serves before it is expired, at least 1 (null: no limit). Clicks
    /// already served count.
    pub max_clicks: Option<i64>,
    /// Where the expired link redirects (302), with `original_url`'s rules (null: 410).
    pub expired_url: Option<String>,
    /// The tags, replacing the old ones: 0 to 20 tags, each trimmed, 1 to 64 characters without commas or control
    /// characters; duplicates count once (null or `[]`: none).
    pub tags: Option<Vec<String>>,
    /// UTM parameters (each trimmed, 1 to 255 characters): the redirect appends them to
    /// the target's query string with the `url` crate, after its own parameters (a parameter
    /// of the same name in the target is replaced) (null: not added).
    pub utm_source: Option<String>,
    /// See `utm_source`.
    pub utm_medium: Option<String>,
    /// See `utm_source`.
    pub utm_campaign: Option<String>,
    /// See `utm_source`.
    pub utm_term: Option<String>,
    /// See `utm_source`.
    pub utm_content: Option<String>,
    /// A new password for the link (1 to 128 characters without control characters, kept as
    /// given); `null` opens the link to everybody. Only its argon2id hash is stored.
    pub password: Option<String>,
}

impl From<UrlModel> for Url {
    fn from(m: UrlModel) -> Self {
        Self {
            id: m.id,
            user_id: m.user_id,
            short_code: m.short_code,
            original_url: m.original_url,
            title: m.title,
            is_active: m.is_active,
            created_at: ts(m.created_at),
            updated_at: ts(m.updated_at),
            details: None,
        }
    }
}

/// Something that happened to a link: `created`, `updated`, `redirect`, or any type posted by
/// a client (e.g. `click`).
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct Event {
    /// Identifier.
    pub id: i64,
    /// The link, or null.
    pub url_id: Option<i64>,
    /// The user, or null.
    pub user_id: Option<i64>,
    /// The kind of event (at most 64 characters).
    pub event_type: String,
    /// When it happened, UTC `YYYY-MM-DDTHH:MM:SS`.
    pub timestamp: String,
    /// Free-form JSON object, or null. A `redirect` carries exactly `{"short_code": ...}`.
    pub details: Option<serde_json::Value>,
}

impl From<EventModel> for Event {
    fn from(m: EventModel) -> Self {
        Self {
            id: m.id,
            url_id: m.url_id,
            user_id: m.user_id,
            event_type: m.event_type,
            timestamp: ts(m.timestamp),
            details: m.details,
        }
    }
}

/// Request body of `POST /users` and `PUT /users/<id>`.
#[derive(Debug, Object)]
pub struct UserInput {
    /// 1-120 characters after trimming. Required on create.
    pub username: Option<String>,
    /// Must contain `@` with a `.` after the last `@`; unique without regard to case;
    /// at most 255 characters. Required on create.
    pub email: Option<String>,
}

/// Request body of `POST /urls`.
#[derive(Debug, Object)]
pub struct UrlInput {
    /// The target: `http://` or `https://` with a host, at most 2048 characters.
    pub original_url: Option<String>,
    /// Alias of `original_url`, used when `original_url` is absent, null or empty.
    pub long_url: Option<String>,
    /// Optional title (trimmed; blank means null; at most 255 characters).
    pub title: Option<String>,
    /// Optional owner: an existing user's id.
    pub user_id: Option<i64>,
    /// Optional custom alias used as the short code: 3 to 16 characters of `[A-Za-z0-9_-]`,
    /// case-sensitive, not a reserved word (`r`, `urls`, `users`, `events`, `docs`, `admin`,
    /// `ui`, `static`, `metrics`, `health`, `api`, `openapi.json`, ...). 409 when the code is
    /// taken (by an alias or a generated code). A create with any link option always makes a
    /// new link (no idempotent match).
    pub custom_code: Option<String>,
    /// Optional status of the link's redirects: 301, 302, 307 or 308 (default 302, as the
    /// contract's redirects); anything else is a 400.
    pub redirect_status: Option<u16>,
    /// Optional `Cache-Control` the link's redirects send (1 to 255 printable ASCII
    /// characters, trimmed); by default they send none.
    pub cache_control: Option<String>,
    /// Optional expiry time, RFC 3339 with an offset (`2026-12-31T23:59:59Z`). From then on
    /// the link redirects to `expired_url`, or answers 410 without one.
    pub expires_at: Option<String>,
    /// Optional limit: the link serves this many redirects (at least 1), then it is expired
    /// like past `expires_at`. Enforced exactly across every api instance.
    pub max_clicks: Option<i64>,
    /// Optional target for visitors of the expired link (302), with `original_url`'s rules.
    pub expired_url: Option<String>,
    /// Optional tags: 0 to 20 tags, each trimmed, 1 to 64 characters without commas or control
    /// characters; duplicates count once.
    pub tags: Option<Vec<String>>,
    /// UTM parameters, optional (each trimmed, 1 to 255 characters): the redirect appends them to
    /// the target's query string with the `url` crate, after its own parameters (a parameter
    /// of the same name in the target is replaced).
    pub utm_source: Option<String>,
    /// See `utm_source`.
    pub utm_medium: Option<String>,
    /// See `utm_source`.
    pub utm_campaign: Option<String>,
    /// See `utm_source`.
    pub utm_term: Option<String>,
    /// See `utm_source`.
    pub utm_content: Option<String>,
    /// Optional password (1 to 128 characters without control characters, kept as given):
    /// visitors must give it before they are redirected, in the `X-Link-Password` header or
    /// the form a browser is shown. Only its argon2id hash is stored.
    pub password: Option<String>,
}

/// Request body of `PUT /urls/<id>`: only these two fields may be given.
#[derive(Debug, Object)]
pub struct UrlUpdate {
    /// New title (string or null; trimmed; blank means null).
    pub title: Option<String>,
    /// Activate or deactivate the link (a JSON boolean).
    pub is_active: Option<bool>,
}

/// Request body of `POST /events`.
#[derive(Debug, Object)]
pub struct EventInput {
    /// Required, non-empty, at most 64 characters (trimmed).
    pub event_type: String,
    /// Required: an existing link's id.
    pub url_id: i64,
    /// Optional: an existing user's id, or null.
    pub user_id: Option<i64>,
    /// Optional JSON object.
    pub details: Option<serde_json::Value>,
}

/// Answer of `POST /users/bulk`.
#[derive(Debug, Object)]
pub struct ImportCount {
    /// Rows inserted (rows whose id already existed are skipped).
    pub count: u64,
}

/// Event counts of one link.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct Analytics {
    /// The link's id.
    pub url_id: i64,
    /// The link's short code.
    pub short_code: String,
    /// The link's target.
    pub original_url: String,
    /// All events of the link.
    pub total_events: u64,
    /// Events of type `click`.
    pub click_count: u64,
    /// Events of type `redirect` (one per redirect served).
    pub redirect_count: u64,
    /// Count per event type.
    pub event_counts: std::collections::BTreeMap<String, u64>,
    /// Timestamp of the newest event, or null.
    pub latest_event_at: Option<String>,
}

/// `GET /health`.
#[derive(Debug, Object)]
pub struct Health {
    /// Always `ok` while the process serves requests.
    pub status: String,
    /// The instance's host name.
    pub instance: String,
}
