//! Redirects: `/r/<code>`, `/urls/short/<code>` and `/urls/<code>/redirect` (GET and HEAD).
//!
//! The hot path: the target comes from the cache (the database only on a miss), the click is
//! handed to the click recorder without waiting, and the 302 goes out. Unknown and inactive
//! codes answer 404.

use std::net::IpAddr;

use entity::url;
use md5::{Digest, Md5};
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Html;
use poem_openapi::{ApiResponse, OpenApi};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use super::urls::NOT_FOUND;
use super::{Api, Tag, read_through};
use crate::cache::CacheKey;
use crate::error::{ApiError, ApiResult};
use crate::short_code::ShortCode;
use crate::state::AppState;
use crate::target_url::to_location;
use jobs::Click;

pub struct RedirectsApi(pub Api);

#[derive(ApiResponse)]
pub enum Redirect {
    /// Found: `Location` holds the target (as a valid URI) and the body a link to it.
    #[oai(status = 302)]
    Found(
        Html<String>,
        #[oai(header = "Location")] String,
        #[oai(header = "X-Cache")] String,
    ),
}

/// What the redirect cache holds for an active code.
#[derive(Serialize, Deserialize)]
struct Target {
    id: i64,
    location: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn body(location: &str) -> String {
    let href = escape(location);
    format!(
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n\
         <p>You should be redirected automatically to the target URL: <a href=\"{href}\">{href}</a>. \
         If not, click the link.\n"
    )
}

/// The client address: the socket peer, or the last `X-Forwarded-For` hop when the peer is
/// the configured trusted proxy.
fn client_ip(state: &AppState, req: &Request) -> Option<IpAddr> {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(std::net::SocketAddr::ip);
    if peer.is_some() && peer == state.trusted_proxy {
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

/// A salted hash of the client address: raw addresses are never stored.
fn visitor_hash(state: &AppState, ip: Option<IpAddr>) -> String {
    let mut hasher = Md5::new();
    hasher.update(state.visitor_salt.as_bytes());
    hasher.update(ip.map(|i| i.to_string()).unwrap_or_default().as_bytes());
    format!("{:x}", hasher.finalize())
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(1024).collect())
}

async fn redirect(state: &AppState, raw: &str, req: &Request) -> ApiResult<Redirect> {
    let code = ShortCode::parse(raw).ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    let (target, cache) = read_through(
        state,
        CacheKey::Redirect(code.as_str().to_owned()),
        || async {
            let row = url::Entity::find()
                .filter(url::Column::ShortCode.eq(code.as_str()))
                .filter(url::Column::IsActive.eq(true))
                .one(&state.db)
                .await?;
            Ok(row.map(|r| Target {
                id: r.id,
                location: to_location(&r.original_url),
            }))
        },
    )
    .await?
    .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    state
        .clicks
        .record(Click {
            click_id: uuid::Uuid::new_v4().to_string(),
            url_id: target.id,
            short_code: code.as_str().to_owned(),
            at: chrono::Utc::now().naive_utc(),
            visitor_hash: visitor_hash(state, client_ip(state, req)),
            user_agent: header(req, "user-agent"),
            referrer: header(req, "referer"),
        })
        .await;
    Ok(Redirect::Found(
        Html(body(&target.location)),
        target.location,
        cache.into(),
    ))
}

#[OpenApi(tag = "Tag::Redirects")]
impl RedirectsApi {
    /// Follow a short link
    ///
    /// 302 to the target of an active code (codes are case-sensitive); 404 for an unknown or
    /// inactive one. Each redirect is counted once as a `redirect` event. HEAD works too.
    #[oai(path = "/r/:short_code", method = "get")]
    async fn short(&self, short_code: Path<String>, req: &Request) -> ApiResult<Redirect> {
        redirect(&self.0, &short_code, req).await
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
