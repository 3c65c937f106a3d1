//! The middlewares: rate limits with their headers, the request timeout, and the answer to
//! requests beyond capacity.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};

use super::{Class, Decision, RateLimits};
use crate::error::json_error;

fn secs_up(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

fn set_headers(resp: &mut Response, limit: u64, d: &Decision) {
    let headers = resp.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(d.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(secs_up(d.reset_ms)));
    if !d.allowed {
        headers.insert("retry-after", HeaderValue::from(secs_up(d.retry_ms).max(1)));
    }
}

/// The middleware: spends the request's budget, answers 429 when it is spent, and adds the
/// `RateLimit-*` headers to limited responses.
pub async fn rate_limit<E: Endpoint>(
    limits: Arc<RateLimits>,
    ep: E,
    req: Request,
) -> poem::Result<Response> {
    let budget = Class::of(&req).and_then(|c| limits.budgets.iter().find(|b| b.class == c));
    let Some(budget) = budget else {
        return ep.call(req).await.map(IntoResponse::into_response);
    };
    let client = crate::routes::redirects::client_ip_of(&req, limits.trusted_proxy)
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let Some(decision) = limits.check(budget, client).await else {
        return ep.call(req).await.map(IntoResponse::into_response);
    };
    if !decision.allowed {
        limits
            .metrics
            .limited
            .with_label_values(&[budget.class.name()])
            .inc();
        let mut resp = json_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many requests: at most {} {} requests per minute; retry in {} s",
                budget.limit,
                budget.class.name(),
                secs_up(decision.retry_ms).max(1)
            ),
        );
        set_headers(&mut resp, budget.limit, &decision);
        return Ok(resp);
    }
    let mut resp = ep.call(req).await.map(IntoResponse::into_response)?;
    set_headers(&mut resp, budget.limit, &decision);
    Ok(resp)
}

/// Requests in progress beyond `MAX_CONCURRENT_REQUESTS` are answered 503 at once.
#[must_use]
pub fn over_capacity() -> Response {
    let mut resp = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Server busy: too many requests in progress; retry shortly",
    );
    resp.headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
    resp
}

/// A request still running after `REQUEST_TIMEOUT_SECONDS` is answered 503.
pub async fn with_timeout<E: Endpoint>(
    timeout: Duration,
    ep: E,
    req: Request,
) -> poem::Result<Response> {
    let Ok(result) = tokio::time::timeout(timeout, ep.call(req)).await else {
        tracing::warn!(
            request_id = %crate::error::current_request_id(),
            timeout_s = timeout.as_secs_f64(),
            "request timed out"
        );
        return Ok(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("Request timed out after {} s", timeout.as_secs_f64()),
        ));
    };
    result.map(IntoResponse::into_response)
}
