//! `/webhooks`: subscriptions to link events (`link.created`, `link.updated`, `link.deleted`,
//! `link.clicked`), and their deliveries (recent ones by state; dead ones are the dead-letter
//! list that `curtain-ops webhooks replay` delivers again).
//!
//! A webhook sees every link's events, so with `CURTAIN_REQUIRE_API_KEY=true` these need the
//! `admin` scope ([`crate::keys::needed`]). The secret is shown once, by the create.

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;
use storage::webhooks::{self, DeliveryState, EVENTS};

use super::users::Deleted;
use super::{Api, Tag, path_id};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::fields::{IntParam, char_len, parse_int_param};
use crate::models::{now, ts};

pub struct WebhooksApi(pub Api);

const NOT_FOUND: &str = "Webhook not found";

/// Request body of `POST /webhooks`.
#[derive(Debug, Object)]
pub struct WebhookInput {
    /// Where deliveries are posted: an `http://` or `https://` URL, at most 2048 characters.
    pub url: String,
    /// The events to deliver, at least one of `link.created`, `link.updated`,
    /// `link.deleted`, `link.clicked` (click batches).
    pub events: Vec<String>,
    /// The signing secret, 16 to 128 printable ASCII characters; generated (32 random bytes,
    /// hex) when absent or null.
    pub secret: Option<String>,
}

/// A subscription.
#[derive(Debug, Clone, Object)]
pub struct Webhook {
    /// Identifier.
    pub id: i64,
    /// Where deliveries are posted.
    pub url: String,
    /// The events delivered.
    pub events: Vec<String>,
    /// Creation time, UTC `YYYY-MM-DDTHH:MM:SS`.
    pub created_at: String,
}

/// A subscription just created, with its signing secret (shown only here).
#[derive(Debug, Clone, Object)]
pub struct WebhookCreatedBody {
    /// Identifier.
    pub id: i64,
    /// Where deliveries are posted.
    pub url: String,
    /// The events delivered.
    pub events: Vec<String>,
    /// The HMAC-SHA256 key of `X-Curtain-Signature`. Keep it: it is not shown again.
    pub secret: String,
    /// Creation time, UTC `YYYY-MM-DDTHH:MM:SS`.
    pub created_at: String,
}

/// One delivery of an event to a webhook.
#[derive(Debug, Clone, Object)]
pub struct Delivery {
    /// Identifier, also sent as `X-Curtain-Delivery` and as `id` in the body (receivers
    /// dedup on it: delivery is at least once).
    pub id: i64,
    /// The event.
    pub event: String,
    /// `pending` (waiting for its next attempt), `delivered` (a 2xx answer) or `dead` (every
    /// attempt failed; `curtain-ops webhooks replay` delivers it again).
    pub state: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// The HTTP status of the last attempt, if the receiver answered.
    pub last_status: Option<i32>,
    /// What went wrong on the last failed attempt.
    pub last_error: Option<String>,
    /// When the event happened, UTC `YYYY-MM-DDTHH:MM:SS`.
    pub created_at: String,
    /// When a 2xx answer came, if it did.
    pub delivered_at: Option<String>,
    /// When a pending delivery is next attempted (null unless pending).
    pub next_attempt_at: Option<String>,
    /// The event's `data`, as delivered.
    pub data: Value,
}

#[derive(ApiResponse)]
pub enum WebhookCreated {
    /// The webhook was created; the body carries its secret (only here).
    #[oai(status = 201)]
    Created(Json<WebhookCreatedBody>),
}

#[derive(ApiResponse)]
pub enum WebhookRead {
    /// The webhook (without its secret).
    #[oai(status = 200)]
    Ok(Json<Webhook>),
}

#[derive(ApiResponse)]
pub enum WebhookList {
    /// Every webhook, by id (without secrets).
    #[oai(status = 200)]
    Ok(Json<Vec<Webhook>>),
}

#[derive(ApiResponse)]
pub enum DeliveryList {
    /// The webhook's newest deliveries first.
    #[oai(status = 200)]
    Ok(Json<Vec<Delivery>>),
}

impl From<webhooks::Webhook> for Webhook {
    fn from(w: webhooks::Webhook) -> Self {
        Self {
            id: w.id,
            url: w.url,
            events: w.events,
            created_at: ts(w.created_at),
        }
    }
}

impl From<webhooks::Delivery> for Delivery {
    fn from(d: webhooks::Delivery) -> Self {
        Self {
            id: d.id,
            event: d.event,
            state: d.state.as_str().to_owned(),
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: ts(d.created_at),
            delivered_at: d.delivered_at.map(ts),
            next_attempt_at: (d.state == DeliveryState::Pending).then(|| ts(d.next_attempt_at)),
            data: serde_json::from_str(&d.payload).unwrap_or(Value::Null),
        }
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// `url`: trimmed, no control characters or spaces, `http://` or `https://` with a host (the
/// `url` crate's parse); stored as that parse writes it.
fn parse_target(value: Option<&Value>) -> ApiResult<String> {
    let raw = match value {
        None | Some(Value::Null) => return Err(bad("Field 'url' is required")),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(bad("Field 'url' must be a string")),
    };
    if raw.is_empty() {
        return Err(bad("Field 'url' is required"));
    }
    if char_len(raw) > 2048 {
        return Err(bad("Field 'url' must not exceed 2048 characters"));
    }
    let invalid = || bad("Field 'url' must be a valid http or https URL");
    // Literally `http://` or `https://` (as link targets): the URL standard would read
    // `http:/x` or `http:x` as `http://x/`.
    let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    if raw.chars().any(|c| c.is_control() || c.is_whitespace())
        || !(lower.starts_with("http://") || lower.starts_with("https://"))
    {
        return Err(invalid());
    }
    let parsed = url::Url::parse(raw).map_err(|_| invalid())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid());
    }
    let stored = parsed.to_string();
    if char_len(&stored) > 2048 {
        return Err(bad("Field 'url' must not exceed 2048 characters"));
    }
    Ok(stored)
}

/// `events`: a non-empty list of known names; each kept once, in the order of [`EVENTS`].
fn parse_events(value: Option<&Value>) -> ApiResult<Vec<String>> {
    let list = match value {
        None | Some(Value::Null) => return Err(bad("Field 'events' is required")),
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(_) => {
            return Err(bad(
                "Field 'events' must be a non-empty list of event names",
            ));
        }
    };
    let mut names = Vec::new();
    for item in list {
        let Value::String(name) = item else {
            return Err(bad(
                "Field 'events' must be a non-empty list of event names",
            ));
        };
        if !EVENTS.contains(&name.as_str()) {
            let shown: String = name.chars().take(64).filter(|c| !c.is_control()).collect();
            return Err(bad(format!(
                "Field 'events' has an unknown event '{shown}' (known: {})",
                EVENTS.join(", ")
            )));
        }
        names.push(name.as_str());
    }
    Ok(EVENTS
        .iter()
        .filter(|e| names.contains(e))
        .map(|e| (*e).to_owned())
        .collect())
}

/// `secret`: absent or null generates one; else 16 to 128 printable ASCII characters.
fn parse_secret(value: Option<&Value>) -> ApiResult<String> {
    match value {
        None | Some(Value::Null) => Ok(webhooks::new_secret()),
        Some(Value::String(s))
            if (16..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(s.clone())
        }
        Some(_) => Err(bad(
            "Field 'secret' must be 16 to 128 printable ASCII characters",
        )),
    }
}

#[OpenApi(tag = "Tag::Webhooks")]
impl WebhooksApi {
    /// Create a webhook
    ///
    /// Subscribes `url` to link events. Each delivery is a signed `POST` of
    /// `{"id", "event", "created_at", "data"}` with headers `X-Curtain-Event`,
    /// `X-Curtain-Delivery` (the delivery id: deliveries are at least once, so dedup on it),
    /// `X-Curtain-Timestamp` (unix seconds) and `X-Curtain-Signature: sha256=<hex>`, the
    /// HMAC-SHA256 of `<timestamp>.<body>` keyed with the secret. A 2xx answer delivers it;
    /// anything else (or no answer within 10 s) is retried with exponential back-off
    /// (`WEBHOOK_RETRY_BASE_SECONDS`, doubled each time) up to `WEBHOOK_MAX_ATTEMPTS`, then
    /// the delivery is dead. `link.clicked` delivers each ingested click batch once (click id,
    /// link id, code, time, bot flag).
    #[oai(path = "/webhooks", method = "post")]
    async fn create(&self, body: JsonBody<WebhookInput>) -> ApiResult<WebhookCreated> {
        let obj = body
            .object()
            .ok_or_else(|| bad("JSON body must be an object"))?;
        let url = parse_target(obj.get("url"))?;
        let events = parse_events(obj.get("events"))?;
        let secret = parse_secret(obj.get("secret"))?;
        let hook = webhooks::create(&self.0.db, &url, &events, &secret, now()).await?;
        self.0.webhooks.subscriptions_changed();
        Ok(WebhookCreated::Created(Json(WebhookCreatedBody {
            id: hook.id,
            url: hook.url,
            events: hook.events,
            secret: hook.secret,
            created_at: ts(hook.created_at),
        })))
    }

    /// List webhooks
    ///
    /// Every webhook by id, without secrets.
    #[oai(path = "/webhooks", method = "get")]
    async fn list(&self) -> ApiResult<WebhookList> {
        let hooks = webhooks::list(&self.0.db).await?;
        Ok(WebhookList::Ok(Json(
            hooks.into_iter().map(Webhook::from).collect(),
        )))
    }

    /// Get a webhook
    #[oai(path = "/webhooks/:id", method = "get")]
    async fn read(&self, id: Path<String>) -> ApiResult<WebhookRead> {
        let id = path_id(&id, NOT_FOUND)?;
        let hook = webhooks::get(&self.0.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
        Ok(WebhookRead::Ok(Json(hook.into())))
    }

    /// Delete a webhook
    ///
    /// Deletes the webhook and its deliveries; pending ones are not sent.
    #[oai(path = "/webhooks/:id", method = "delete")]
    async fn delete(&self, id: Path<String>) -> ApiResult<Deleted> {
        let id = path_id(&id, NOT_FOUND)?;
        if !webhooks::delete(&self.0.db, id).await? {
            return Err(ApiError::not_found(NOT_FOUND));
        }
        self.0.webhooks.subscriptions_changed();
        Ok(Deleted::NoContent)
    }

    /// List a webhook's deliveries
    ///
    /// Newest first, at most `limit` (default 100, clamped to 1..500; a non-integer means
    /// 100). `state` filters: `pending`, `delivered` or `dead` (the dead-letter list).
    #[oai(path = "/webhooks/:id/deliveries", method = "get")]
    async fn deliveries(
        &self,
        id: Path<String>,
        state: Query<Option<String>>,
        limit: Query<Option<String>>,
    ) -> ApiResult<DeliveryList> {
        let id = path_id(&id, NOT_FOUND)?;
        let state =
            match state.0.as_deref().map(str::trim) {
                None => None,
                Some(s) => Some(DeliveryState::parse(&s.to_ascii_lowercase()).ok_or_else(
                    || bad("Query parameter 'state' must be pending, delivered or dead"),
                )?),
            };
        let limit = match limit.0.as_deref().and_then(parse_int_param) {
            Some(IntParam::Int(n)) => n.clamp(1, 500) as u64,
            Some(IntParam::OutOfRange) => 500,
            None => 100,
        };
        if webhooks::get(&self.0.db, id).await?.is_none() {
            return Err(ApiError::not_found(NOT_FOUND));
        }
        let rows = webhooks::deliveries(&self.0.db, id, state, limit).await?;
        Ok(DeliveryList::Ok(Json(
            rows.into_iter().map(Delivery::from).collect(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_must_be_http_or_https_with_a_host() {
        assert_eq!(
            parse_target(Some(&json!(" http://127.0.0.1:9/hook "))).unwrap(),
            "http://127.0.0.1:9/hook"
        );
        for bad in [
            "ftp://x.example/",
            "http:/x",
            "javascript:alert(1)",
            "http://a b/",
            "http://x/\ny",
            "HTTP:x.example",
        ] {
            assert!(parse_target(Some(&json!(bad))).is_err(), "{bad}");
        }
    }

    #[test]
    fn events_are_known_names_each_once() {
        assert_eq!(
            parse_events(Some(&json!([
                "link.clicked",
                "link.created",
                "link.clicked"
            ])))
            .unwrap(),
            ["link.created", "link.clicked"]
        );
        assert!(parse_events(Some(&json!(["link.exploded"]))).is_err());
        assert!(parse_events(Some(&json!([]))).is_err());
        assert!(parse_events(Some(&json!("link.created"))).is_err());
    }
}
