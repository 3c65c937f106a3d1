//! Optional API keys (`storage::api_keys`). With `CURTAIN_REQUIRE_API_KEY=true` every write
//! needs a key with `links:write`, and `/metrics`, `/debug/*` and `/admin/*` one with `admin`;
//! with `CURTAIN_REQUIRE_API_KEY_FOR_ANALYTICS=true` as well, the analytics endpoints need
//! `analytics:read`. Redirects, the home page and the other reads stay open. Off by default, so
//! existing clients keep working; while off, keys sent are ignored.
//!
//! A key is sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Missing, unknown or
//! revoked: 401 with `WWW-Authenticate`; valid without the scope: 403 (the contract's envelope).

use std::sync::Arc;

use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use storage::api_keys::{self, Refusal, Scope};

use crate::error::json_error;

/// The header a key may be sent in (besides `Authorization: Bearer`).
pub const HEADER: &str = "x-api-key";

/// The scope a request needs when keys are required, if any.
#[must_use]
pub fn needed(method: &Method, path: &str, guard_analytics: bool) -> Option<Scope> {
    // A webhook sees every link's events: managing them is an admin's.
    if path == "/metrics"
        || path.starts_with("/debug/")
        || path.starts_with("/admin/")
        || path == "/webhooks"
        || path.starts_with("/webhooks/")
    {
        return Some(Scope::Admin);
    }
    match *method {
        // Alertmanager's webhook has its own bearer token; a password link's form is a
        // visitor's, limited per client and link.
        Method::POST if path == "/alerts/alertmanager" || is_unlock(path) => None,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => Some(Scope::LinksWrite),
        Method::GET | Method::HEAD
            if guard_analytics && path.starts_with("/urls/") && path.contains("/analytics") =>
        {
            Some(Scope::AnalyticsRead)
        }
        _ => None,
    }
}

/// True for a password link's form, `POST /r/<code>/unlock` (the spec's template too): a
/// visitor's request, never guarded by keys or the write budget (it has its own).
#[must_use]
pub fn is_unlock(path: &str) -> bool {
    path.strip_prefix("/r/")
        .and_then(|rest| rest.strip_suffix("/unlock"))
        .is_some_and(|code| !code.is_empty() && !code.contains('/'))
}

/// The guard: configured only when keys are required.
pub struct KeyGuard {
    pub db: DatabaseConnection,
    pub guard_analytics: bool,
}

/// The answer to a refused request: the contract's envelope, `WWW-Authenticate` on 401s.
#[must_use]
pub fn refusal_response(refusal: &Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut resp = json_error(status, &refusal.message());
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"curtain\""),
        );
    }
    resp
}

/// The key a request carries, if any.
#[must_use]
pub fn presented(req: &Request) -> Option<&str> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    api_keys::presented(header(HEADER), header("authorization"))
}

/// The middleware: answers 401/403 for guarded requests without a key granting their scope.
pub async fn require_key<E: Endpoint>(
    guard: Arc<KeyGuard>,
    ep: E,
    req: Request,
) -> poem::Result<Response> {
    if let Some(scope) = needed(req.method(), req.uri().path(), guard.guard_analytics)
        && let Err(refusal) = api_keys::authorize(&guard.db, presented(&req), scope).await
    {
        return Ok(refusal_response(&refusal));
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

/// Declares the keys in the served spec: two security schemes, and on every operation they can
/// guard an optional requirement (`{}` first: keys are off by default) with its 401 and 403.
pub fn document(spec: &mut Value) {
    spec["components"]["securitySchemes"]["ApiKey"] = json!({
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key from `curtain-ops keys create --scope ...`. Checked only when \
                        `CURTAIN_REQUIRE_API_KEY=true`: writes need `links:write`; `/metrics`, \
                        `/debug/*`, `/admin/*` and `/webhooks` need `admin`; the analytics endpoints need \
                        `analytics:read` when `CURTAIN_REQUIRE_API_KEY_FOR_ANALYTICS=true`.",
    });
    spec["components"]["securitySchemes"]["ApiKeyBearer"] = json!({
        "type": "http",
        "scheme": "bearer",
        "description": "The same API key as `Authorization: Bearer <key>`.",
    });
    let error = json!({"application/json; charset=utf-8": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
    let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, ops) in paths.iter_mut() {
        let Some(ops) = ops.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let Some(scope) = needed(&method, path, true) else {
                continue;
            };
            op["security"] = json!([{}, {"ApiKey": []}, {"ApiKeyBearer": []}]);
            let when = if scope == Scope::AnalyticsRead {
                "`CURTAIN_REQUIRE_API_KEY_FOR_ANALYTICS=true`"
            } else {
                "`CURTAIN_REQUIRE_API_KEY=true`"
            };
            op["responses"]["401"] = json!({
                "description": format!("With {when}: no API key, or an unknown or revoked one."),
                "content": error,
            });
            op["responses"]["403"] = json!({
                "description": format!("With {when}: the API key lacks the `{scope}` scope."),
                "content": error,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_password_form_post_is_a_visitor_write() {
        assert!(is_unlock("/r/abc/unlock"));
        assert!(is_unlock("/r/{short_code}/unlock"));
        for path in [
            "/r//unlock",
            "/r/a/b/unlock",
            "/r/abc",
            "/urls/1/unlock",
            "/r/abc/unlock/x",
        ] {
            assert!(!is_unlock(path), "{path}");
        }
        assert_eq!(needed(&Method::POST, "/r/abc/unlock", false), None);
        assert_eq!(
            needed(&Method::POST, "/r/abc", false),
            Some(Scope::LinksWrite)
        );
    }

    #[test]
    fn writes_need_links_write_and_operations_need_admin() {
        let n = |m: Method, p: &str| needed(&m, p, false);
        assert_eq!(n(Method::POST, "/urls"), Some(Scope::LinksWrite));
        assert_eq!(n(Method::PUT, "/users/3"), Some(Scope::LinksWrite));
        assert_eq!(n(Method::DELETE, "/urls/3"), Some(Scope::LinksWrite));
        assert_eq!(n(Method::POST, "/users/bulk"), Some(Scope::LinksWrite));
        assert_eq!(n(Method::POST, "/shorten-ui"), Some(Scope::LinksWrite));
        assert_eq!(n(Method::GET, "/metrics"), Some(Scope::Admin));
        assert_eq!(n(Method::GET, "/debug/fail"), Some(Scope::Admin));
        assert_eq!(n(Method::GET, "/admin/queues"), Some(Scope::Admin));
        // A webhook sees every link's events: reading or managing them is an admin's.
        assert_eq!(n(Method::GET, "/webhooks"), Some(Scope::Admin));
        assert_eq!(n(Method::POST, "/webhooks"), Some(Scope::Admin));
        assert_eq!(n(Method::GET, "/webhooks/1/deliveries"), Some(Scope::Admin));
        assert_eq!(n(Method::GET, "/webhooksx"), None);
        assert_eq!(n(Method::POST, "/alerts/alertmanager"), None);
        assert_eq!(n(Method::GET, "/urls"), None);
        assert_eq!(n(Method::GET, "/r/abc"), None);
        assert_eq!(n(Method::GET, "/urls/3/analytics"), None);
        assert_eq!(
            needed(&Method::GET, "/urls/3/analytics/realtime", true),
            Some(Scope::AnalyticsRead)
        );
        assert_eq!(needed(&Method::GET, "/urls/3", true), None);
    }
}
