//! The HTTP surface: one file per route group, all registered here in one OpenAPI service.

pub mod alerts;
pub mod analytics;
pub mod bulk;
pub mod events;
pub mod queues;
pub mod realtime;
pub mod redirects;
pub mod system;
pub mod ui;
pub mod urls;
pub mod users;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;

use poem::{IntoResponse, Response, Route, get, handler};
use poem_openapi::{OpenApiService, Tags};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::{CacheKey, Lookup};
use crate::error::{ApiError, ApiResult};
use crate::fields::{IntParam, parse_path_id};
use crate::state::AppState;

#[derive(Tags)]
pub enum Tag {
    /// User accounts.
    Users,
    /// Short links.
    Urls,
    /// Redirects from short codes to their targets (each one is counted as a click).
    Redirects,
    /// Events of links and their analytics.
    Events,
    /// Health, metrics and drills.
    System,
    /// The HTML shorten form.
    Ui,
    /// Alert delivery: Alertmanager's webhook, delivered to Discord.
    Alerts,
    /// Webhooks: signed deliveries of link events (created, updated, deleted, clicked) to
    /// your URLs, retried with back-off; dead ones are listed and can be replayed.
    Webhooks,
}

/// Builds the OpenAPI service with every route group.
#[must_use]
pub fn api_service(state: &Arc<AppState>) -> OpenApiService<impl poem_openapi::OpenApi, ()> {
    let s = || Api(state.clone());
    OpenApiService::new(
        (
            users::UsersApi(s()),
            bulk::BulkApi(s()),
            urls::UrlsApi(s()),
            urls::details::DetailsApi(s()),
            urls::health::HealthCheckApi(s()),
            urls::qr::QrApi(s()),
            analytics::AnalyticsApi(s()),
            realtime::RealtimeApi(s()),
            redirects::RedirectsApi(s()),
            events::EventsApi(s()),
            system::SystemApi(s()),
            ui::UiApi(s()),
            alerts::AlertsApi(s()),
            webhooks::WebhooksApi(s()),
        ),
        "Curtain",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "A URL shortener with click analytics. JSON everywhere; errors are `{\"error\": \"...\"}` \
         (user validation: `{\"errors\": {\"<field>\": \"...\"}}`). Timestamps are UTC \
         `YYYY-MM-DDTHH:MM:SS`.",
    )
}

/// The state every route group holds.
#[derive(Clone)]
pub struct Api(pub Arc<AppState>);

impl std::ops::Deref for Api {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.0
    }
}

/// The whole HTTP surface: the OpenAPI operations plus the spec (refined once by the caller,
/// [`crate::spec::refine`]), Swagger UI and static assets.
#[must_use]
pub fn routes(state: &Arc<AppState>, spec: &serde_json::Value) -> Route {
    let service = api_service(state);
    let spec = spec.to_string();
    let docs = service.swagger_ui();
    Route::new()
        .at(
            "/openapi.json",
            get(poem::endpoint::make_sync(move |_| {
                spec.clone()
                    .with_content_type("application/json; charset=utf-8")
            })),
        )
        .nest("/docs", docs)
        .at("/static/htmx.min.js", get(htmx))
        .at("/static/chart.js", get(chart_js))
        .at("/favicon.ico", get(favicon))
        .at(
            "/admin/queues",
            get(queues::page(state, queues::View::Page)),
        )
        .at(
            "/admin/queues/table",
            get(queues::page(state, queues::View::Table)),
        )
        .nest_no_strip("/", service)
}

/// The contract's path-id rule: non-numeric or negative → generic 404; too large → the
/// resource's own 404.
pub fn path_id(raw: &str, not_found: &'static str) -> ApiResult<i64> {
    match parse_path_id(raw) {
        None => Err(ApiError::not_found("Not found")),
        Some(IntParam::OutOfRange) => Err(ApiError::not_found(not_found)),
        Some(IntParam::Int(id)) => Ok(id),
    }
}

/// The base of absolute short URLs: `PUBLIC_BASE_URL`, else the request's `Host` (scheme
/// `http`, or the `X-Forwarded-Proto` of the configured trusted proxy).
pub(crate) fn base_url(state: &AppState, req: &poem::Request) -> String {
    state.public_base_url.clone().unwrap_or_else(|| {
        let header = |name: &str| req.headers().get(name).and_then(|h| h.to_str().ok());
        let host = header("host").unwrap_or("localhost");
        let peer = req
            .remote_addr()
            .as_socket_addr()
            .map(std::net::SocketAddr::ip);
        let proxied = peer.is_some() && peer == state.trusted_proxy;
        let scheme = match header("x-forwarded-proto").map(str::trim) {
            Some(p) if proxied && p.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        format!("{scheme}://{host}")
    })
}

/// `X-Cache` values.
pub const HIT: &str = "HIT";
pub const MISS: &str = "MISS";
pub const BYPASS: &str = "BYPASS";

/// Read-through: the cached payload (`HIT`) or `load()` stored under the version read with
/// the miss, before loading (`MISS`). `load` answering `None` (not found) is not cached.
pub async fn read_through<T, F, Fut>(
    state: &AppState,
    key: CacheKey,
    load: F,
) -> ApiResult<Option<(T, &'static str)>>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<Option<T>>>,
{
    let snapshot = match state.cache.lookup(&key).await {
        Lookup::Hit(raw) => {
            if let Ok(value) = serde_json::from_str(&raw) {
                return Ok(Some((value, HIT)));
            }
            None
        }
        Lookup::Miss(snapshot) => snapshot,
    };
    let Some(value) = load().await? else {
        return Ok(None);
    };
    if let (Some(snapshot), Ok(raw)) = (snapshot, serde_json::to_string(&value)) {
        state.cache.put(&snapshot, &key, &raw).await;
    }
    Ok(Some((value, MISS)))
}

/// The link page's chart, served by Curtain itself.
#[handler]
fn chart_js() -> Response {
    include_str!("../../static/chart.js")
        .with_content_type("text/javascript; charset=utf-8")
        .with_header("Cache-Control", "public, max-age=3600")
        .into_response()
}

/// No icon: an empty answer browsers cache, so no page (Swagger UI's included) logs a 404.
#[handler]
fn favicon() -> Response {
    Response::builder()
        .status(poem::http::StatusCode::NO_CONTENT)
        .header("Cache-Control", "public, max-age=86400")
        .finish()
}

/// htmx, served by Curtain itself (embedded in the binary; no CDN).
#[handler]
fn htmx() -> Response {
    include_str!("../../static/htmx.min.js")
        .with_content_type("text/javascript; charset=utf-8")
        .with_header("Cache-Control", "public, max-age=86400")
        .into_response()
}
