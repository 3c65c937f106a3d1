//! Redirects: `/r/<code>`, `/urls/short/<code>` and `/urls/<code>/redirect` (GET and HEAD).
//!
//! The target comes from the cache (the database only on a miss), the click goes to the click
//! recorder (which, with `CLICK_DURABILITY=ack`, returns once the click is durable), and the
//! 302 goes out. Unknown and inactive codes answer 404.
//!
//! [`hot`] is the hot path proper: `GET|HEAD /r/<code>` for a code cached in this process is
//! answered, ahead of the router, from a 302 prepared once per cache entry. Anything else
//! (a miss, an unknown code, an alias) takes the documented operation below, which gives the
//! same answer.

use std::net::IpAddr;

use bytes::Bytes;
use entity::url;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Request, Response};
use poem_openapi::param::Path;
use poem_openapi::payload::{Form, Html, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::urls::NOT_FOUND;
use super::{Api, Tag, read_through};
use crate::cache::CacheKey;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::html;
use crate::link_passwords::Verdict;
use crate::short_code::ShortCode;
use crate::state::AppState;
use crate::warm::RedirectTarget;
use jobs::Click;

pub struct RedirectsApi(pub Api);

#[derive(ApiResponse)]
pub enum Redirect {
    /// Found (the default): `Location` holds the target (as a valid URI) and the body a link
    /// to it. `Cache-Control` only when the link has one.
    #[oai(status = 302)]
    Found(
        Html<String>,
        #[oai(header = "Location")] String,
        #[oai(header = "X-Cache")] String,
        #[oai(header = "Cache-Control")] Option<String>,
    ),
    /// Moved Permanently: a link created with `redirect_status: 301`.
    #[oai(status = 301)]
    Moved(
        Html<String>,
        #[oai(header = "Location")] String,
        #[oai(header = "X-Cache")] String,
        #[oai(header = "Cache-Control")] Option<String>,
    ),
    /// Temporary Redirect (method and body kept): a link with `redirect_status: 307`.
    #[oai(status = 307)]
    Temporary(
        Html<String>,
        #[oai(header = "Location")] String,
        #[oai(header = "X-Cache")] String,
        #[oai(header = "Cache-Control")] Option<String>,
    ),
    /// Permanent Redirect (method and body kept): a link with `redirect_status: 308`.
    #[oai(status = 308)]
    Permanent(
        Html<String>,
        #[oai(header = "Location")] String,
        #[oai(header = "X-Cache")] String,
        #[oai(header = "Cache-Control")] Option<String>,
    ),
    /// The link expired (its `expires_at` passed or it served its `max_clicks`) and has no
    /// `expired_url`: `{"error": "URL has expired"}`. With an `expired_url` the answer is a
    /// 302 there instead. Neither is counted as a click.
    #[oai(status = 410)]
    Gone(Json<ErrorBody>),
    /// A password link asked for by a browser (`Accept` names `text/html`) without a
    /// password: a form that posts it to `POST /r/<short_code>/unlock`. Not counted.
    #[oai(status = 200)]
    PasswordForm(Html<String>, #[oai(header = "Cache-Control")] String),
    /// A password link without the `X-Link-Password` header (`{"error": "Password
    /// required"}`) or with a wrong one (`{"error": "Wrong password"}`). Not counted. Each
    /// client has `LINK_PASSWORD_ATTEMPTS` (5) attempts per link per
    /// `LINK_PASSWORD_WINDOW_SECONDS` (300); past them every attempt is a 429 with
    /// `Retry-After` until the window ends.
    #[oai(status = 401)]
    PasswordRequired(Json<ErrorBody>),
}

/// The answer of `POST /r/<short_code>/unlock` (a password link's form).
#[derive(ApiResponse)]
pub enum Unlock {
    /// The password was right: 303 See Other to the target (the browser follows with a GET,
    /// so neither the method nor the password goes on to the target), counted as one click.
    /// An expired link sends its `expired_url` the same way; a link without a password simply
    /// redirects.
    #[oai(status = 303)]
    SeeOther(
        Html<String>,
        #[oai(header = "Location")] String,
        #[oai(header = "Cache-Control")] String,
    ),
    /// A wrong password: the form again, saying so. Not counted. Past the client's attempts:
    /// 429 with `Retry-After`.
    #[oai(status = 401)]
    Wrong(Html<String>),
    /// The link expired and has no `expired_url`: `{"error": "URL has expired"}`.
    #[oai(status = 410)]
    Gone(Json<ErrorBody>),
    /// The body is not `application/x-www-form-urlencoded` (or has no `Content-Type`).
    /// (Answered by the form extractor before the handler runs; declared here for the spec.)
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
}

/// The body of `POST /r/<short_code>/unlock`: the form's one field.
#[derive(Debug, Object, serde::Deserialize)]
pub struct PasswordFormBody {
    /// The link's password.
    pub password: String,
}

/// The message of a 410.
pub const EXPIRED: &str = "URL has expired";
/// The 401 of a password link asked for without a password.
pub const PASSWORD_REQUIRED: &str = "Password required";
/// The 401 of a wrong password.
pub const WRONG_PASSWORD: &str = "Wrong password";
/// A password link's answers are never stored by a browser or a shared cache: a cached
/// redirect would skip the password.
const NO_STORE: &str = "no-store";

impl Redirect {
    /// The answer with the link's status (302 unless it names 301, 307 or 308).
    fn with_status(
        status: Option<u16>,
        body: String,
        location: String,
        cache: String,
        cache_control: Option<String>,
    ) -> Self {
        let body = Html(body);
        match status {
            Some(301) => Self::Moved(body, location, cache, cache_control),
            Some(307) => Self::Temporary(body, location, cache, cache_control),
            Some(308) => Self::Permanent(body, location, cache, cache_control),
            _ => Self::Found(body, location, cache, cache_control),
        }
    }
}

/// A cached target ready to answer: built once per in-process cache entry.
struct Prepared {
    id: i64,
    status: StatusCode,
    location: HeaderValue,
    cache_control: Option<HeaderValue>,
    body: Bytes,
}

impl Prepared {
    /// `None` also for a link that may expire or has a password: each of its redirects takes
    /// the full path, which checks the time, reserves a click or asks for the password.
    fn decode(payload: &str, templates: &tera::Tera) -> Option<Self> {
        let target: RedirectTarget = serde_json::from_str(payload).ok()?;
        if target.needs_full_path() {
            return None;
        }
        let status = match target.status {
            Some(code) => StatusCode::from_u16(code).ok()?,
            None => StatusCode::FOUND,
        };
        let cache_control = match &target.cache_control {
            Some(value) => Some(HeaderValue::from_str(value).ok()?),
            None => None,
        };
        Some(Self {
            id: target.id,
            status,
            location: HeaderValue::from_str(&target.location).ok()?,
            cache_control,
            body: Bytes::from(html::redirect_body(templates, &target.location).ok()?),
        })
    }
}

const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const X_CACHE_HIT: HeaderValue = HeaderValue::from_static(super::HIT);

/// The hot path of `GET|HEAD /r/<code>`: a code whose target this process has cached is
/// answered at once from its prepared 302, its click recorded as on the full path. `None`:
/// take the full route (not cached here, not a plain code, …), which answers the same.
pub async fn hot(state: &AppState, req: &Request) -> Option<Response> {
    let raw = req.uri().path().strip_prefix("/r/")?;
    let code = ShortCode::parse(raw)?;
    let cached = state.cache.get_local_redirect(code.as_str())?;
    let target = cached.decoded(|payload| Prepared::decode(payload, &state.templates))?;
    state
        .clicks
        .record(click(state, target.id, code, req))
        .await;
    let mut resp = Response::builder()
        .status(target.status)
        .body(target.body.clone());
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HTML);
    headers.insert(header::LOCATION, target.location.clone());
    headers.insert("x-cache", X_CACHE_HIT);
    if let Some(value) = &target.cache_control {
        headers.insert(header::CACHE_CONTROL, value.clone());
    }
    Some(resp)
}

/// The click of one redirect, with its id given here at the edge.
fn click(state: &AppState, url_id: i64, code: ShortCode, req: &Request) -> Click {
    Click {
        // Time-ordered (UUIDv7): new ids land at the right edge of the unique index, which
        // stays hot in PostgreSQL's cache however large the events table grows (random v4
        // ids touch a random page of it per click).
        click_id: uuid::Uuid::now_v7().to_string(),
        url_id,
        short_code: code.into_string(),
        at: chrono::Utc::now().naive_utc(),
        visitor_hash: visitor_hash(state, client_ip(state, req)),
        user_agent: header_text(req, "user-agent"),
        referrer: header_text(req, "referer"),
        head: req.method() == poem::http::Method::HEAD,
    }
}

/// The client address: the socket peer, or the last `X-Forwarded-For` hop when the peer is
/// the configured trusted proxy.
fn client_ip(state: &AppState, req: &Request) -> Option<IpAddr> {
    client_ip_of(req, state.trusted_proxy)
}

/// [`client_ip`] for a given trusted proxy (the rate limits use it too).
pub(crate) fn client_ip_of(req: &Request, trusted_proxy: Option<IpAddr>) -> Option<IpAddr> {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(std::net::SocketAddr::ip);
    if peer.is_some() && peer == trusted_proxy {
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok());
        return forwarded.or(peer);
    }
    peer
}

/// HMAC-SHA256 of the client address keyed with the deployment's salt, as hex: raw addresses
/// are never stored, and a keyed hash cannot be reversed by hashing every address.
fn visitor_hash(state: &AppState, ip: Option<IpAddr>) -> String {
    use hmac::{KeyInit, Mac};
    // HMAC takes a key of any length: this cannot fail.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(state.visitor_salt.as_bytes())
    else {
        return String::new();
    };
    mac.update(ip.map(|i| i.to_string()).unwrap_or_default().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn header_text(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(1024).collect())
}

/// Where an expired link sends its visitors.
enum Expiry {
    Live,
    /// To the link's `expired_url` (a valid `Location`).
    To(String),
    /// Nowhere: 410.
    Gone,
}

/// The expiry of `target` for this redirect: before `expires_at`, and for a link with
/// `max_clicks` only once this redirect has reserved one of its clicks (atomically across
/// instances; a store that cannot answer refuses with 503 rather than over-serve).
async fn expiry(state: &AppState, target: &RedirectTarget) -> ApiResult<Expiry> {
    let now = chrono::Utc::now().timestamp();
    let live = match (target.expires_at, target.max_clicks) {
        (Some(at), _) if now >= at => false,
        (_, Some(max)) => state
            .click_limits
            .reserve(target.id, max)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, url.id = target.id, "click limit unavailable");
                ApiError::unavailable("Click limit unavailable; try again")
            })?,
        _ => true,
    };
    Ok(match (live, &target.expired_location) {
        (true, _) => Expiry::Live,
        (false, Some(location)) => Expiry::To(location.clone()),
        (false, None) => Expiry::Gone,
    })
}

fn error_body(message: &str) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: message.to_owned(),
    })
}

/// The 404 of a code that does not redirect, counted by its prefix.
fn unknown(state: &AppState, raw: &str) -> ApiError {
    state.metrics.unknown_codes.visit(raw);
    ApiError::not_found(NOT_FOUND)
}

/// The target of an active code, from the cache or the database, and which of them answered.
async fn lookup(
    state: &AppState,
    raw: &str,
) -> ApiResult<(ShortCode, RedirectTarget, &'static str)> {
    let code = ShortCode::parse(raw).ok_or_else(|| unknown(state, raw))?;
    let (target, cache) = read_through(
        state,
        CacheKey::Redirect(code.as_str().to_owned()),
        || async {
            let row = url::Entity::find()
                .filter(url::Column::ShortCode.eq(code.as_str()))
                .filter(url::Column::IsActive.eq(true))
                .one(&state.db)
                .await?;
            Ok(row.as_ref().map(RedirectTarget::of))
        },
    )
    .await?
    .ok_or_else(|| unknown(state, raw))?;
    Ok((code, target, cache))
}

/// One attempt at the password of `target` (whose hash is `phc`) by this request's client.
async fn try_password(
    state: &AppState,
    target: &RedirectTarget,
    phc: &str,
    req: &Request,
    presented: &str,
) -> ApiResult<Verdict> {
    let client = visitor_hash(state, client_ip(state, req));
    let verdict = state
        .link_passwords
        .check(target.id, &client, phc, presented)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if let Verdict::Limited(retry_after) = verdict {
        return Err(ApiError::too_many(
            format!("Too many password attempts; try again in {retry_after} seconds"),
            retry_after,
        ));
    }
    Ok(verdict)
}

/// The password a client sent in `X-Link-Password` (UTF-8; anything else cannot match).
fn header_password(req: &Request) -> Option<String> {
    req.headers()
        .get("x-link-password")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// True when the client reads HTML (a browser): it is shown the form, not a JSON 401.
fn wants_html(req: &Request) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn password_page(state: &AppState, code: &ShortCode, error: Option<&str>) -> ApiResult<String> {
    html::password_page(&state.templates, code.as_str(), error).map_err(|e| ApiError::internal(&e))
}

/// After any password: the link's expiry, then (while it lives) the click. `Expiry::Live`
/// means the click is recorded and the visitor goes to the target.
async fn admit(
    state: &AppState,
    target: &RedirectTarget,
    code: ShortCode,
    req: &Request,
) -> ApiResult<Expiry> {
    if target.may_expire() {
        let expiry = expiry(state, target).await?;
        if !matches!(expiry, Expiry::Live) {
            return Ok(expiry);
        }
    }
    state
        .clicks
        .record(click(state, target.id, code, req))
        .await;
    Ok(Expiry::Live)
}

async fn redirect(state: &AppState, raw: &str, req: &Request) -> ApiResult<Redirect> {
    let (code, target, cache) = lookup(state, raw).await?;
    if let Some(phc) = &target.password_hash {
        let Some(presented) = header_password(req) else {
            if wants_html(req) {
                let page = password_page(state, &code, None)?;
                return Ok(Redirect::PasswordForm(Html(page), NO_STORE.to_owned()));
            }
            return Ok(Redirect::PasswordRequired(error_body(PASSWORD_REQUIRED)));
        };
        if try_password(state, &target, phc, req, &presented).await? == Verdict::Wrong {
            return Ok(Redirect::PasswordRequired(error_body(WRONG_PASSWORD)));
        }
    }
    let cache_control = if target.password_hash.is_some() {
        Some(NO_STORE.to_owned())
    } else {
        target.cache_control.clone()
    };
    match admit(state, &target, code, req).await? {
        Expiry::Live => {}
        Expiry::To(location) => {
            let body = html::redirect_body(&state.templates, &location)
                .map_err(|e| ApiError::internal(&e))?;
            return Ok(Redirect::Found(
                Html(body),
                location,
                cache.to_owned(),
                // A plain expired redirect sends no `Cache-Control`: the link may be
                // extended.
                target.password_hash.as_ref().map(|_| NO_STORE.to_owned()),
            ));
        }
        Expiry::Gone => return Ok(Redirect::Gone(error_body(EXPIRED))),
    }
    let body = html::redirect_body(&state.templates, &target.location)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Redirect::with_status(
        target.status,
        body,
        target.location,
        cache.into(),
        cache_control,
    ))
}

/// `POST /r/<short_code>/unlock`: the password form of a password link.
async fn unlock(state: &AppState, raw: &str, req: &Request, password: &str) -> ApiResult<Unlock> {
    let (code, target, _) = lookup(state, raw).await?;
    if let Some(phc) = &target.password_hash
        && try_password(state, &target, phc, req, password).await? == Verdict::Wrong
    {
        return Ok(Unlock::Wrong(Html(password_page(
            state,
            &code,
            Some(WRONG_PASSWORD),
        )?)));
    }
    let see_other = |location: String| -> ApiResult<Unlock> {
        let body =
            html::redirect_body(&state.templates, &location).map_err(|e| ApiError::internal(&e))?;
        Ok(Unlock::SeeOther(Html(body), location, NO_STORE.to_owned()))
    };
    match admit(state, &target, code, req).await? {
        Expiry::Live => {}
        Expiry::To(location) => return see_other(location),
        Expiry::Gone => return Ok(Unlock::Gone(error_body(EXPIRED))),
    }
    see_other(target.location)
}

#[OpenApi(tag = "Tag::Redirects")]
impl RedirectsApi {
    /// Follow a short link
    ///
    /// 302 to the target of an active code (codes are case-sensitive); 404 for an unknown or
    /// inactive one. Each redirect is counted once as a `redirect` event. HEAD works too. A
    /// link created with `redirect_status` answers 301, 307 or 308 instead, and one with
    /// `cache_control` sends that `Cache-Control` (by default none is sent). A password link
    /// needs its password in `X-Link-Password` (else 401, or for a browser the form); its
    /// answers carry `Cache-Control: no-store`.
    #[oai(path = "/r/:short_code", method = "get")]
    async fn short(&self, short_code: Path<String>, req: &Request) -> ApiResult<Redirect> {
        redirect(&self.0, &short_code, req).await
    }

    /// Open a password link
    ///
    /// The form a browser is shown for a password link posts here
    /// (`application/x-www-form-urlencoded`, field `password`). A right password answers 303
    /// to the target and counts one click; a wrong one shows the form again (401); past the
    /// client's attempts, 429 with `Retry-After`. 404 for an unknown or inactive code. API
    /// clients may instead send `X-Link-Password` on `GET /r/<short_code>`.
    #[oai(path = "/r/:short_code/unlock", method = "post")]
    async fn unlock(
        &self,
        short_code: Path<String>,
        body: Form<PasswordFormBody>,
        req: &Request,
    ) -> ApiResult<Unlock> {
        unlock(&self.0, &short_code, req, &body.0.password).await
    }

    /// Follow a short link (alias of `/r/<short_code>`)
    #[oai(path = "/urls/short/:short_code", method = "get")]
    async fn short_alias(&self, short_code: Path<String>, req: &Request) -> ApiResult<Redirect> {
        redirect(&self.0, &short_code, req).await
    }

    /// Follow a short link (alias of `/r/<short_code>`)
    #[oai(path = "/urls/:short_code/redirect", method = "get")]
    async fn redirect_alias(&self, short_code: Path<String>, req: &Request) -> ApiResult<Redirect> {
        redirect(&self.0, &short_code, req).await
    }
}
