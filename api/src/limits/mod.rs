//! Abuse limits: per-client rate limits on writes and on bulk imports (429 with `RateLimit-*`
//! and `Retry-After`), a request timeout and a limit on requests in progress (503).
//!
//! Rate limits are GCRA (the token bucket as a "theoretical arrival time"): `limit` requests
//! at once, then one every `60 / limit` seconds. With a Redis (`RATE_LIMIT_REDIS_URL`, else
//! `CACHE_REDIS_URL`, else `REDIS_URL`) the state lives there, so every api instance shares
//! one budget per client; embedded, in process. The client is the socket peer, or the last `X-Forwarded-For` hop
//! when the peer is `TRUSTED_PROXY`. A Redis that fails or does not answer within 200 ms
//! lets the request through (logged, counted): an outage of the limiter never fails a write.
//!
//! Kept here rather than taken from `governor`: the same GCRA must run as a Redis script for
//! the shared budget, and the in-process twin below is its line-for-line mirror, so both
//! backends answer the same headers; its state is a bounded `quick_cache` (governor's keyed
//! store grows with every client address until swept).

mod gcra;
mod middleware;
mod store;

use poem::Request;
use poem::http::Method;

pub use gcra::{Decision, gcra};
pub use middleware::{over_capacity, rate_limit, with_timeout};
pub use store::RateLimits;

/// Which budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// `POST /users/bulk`.
    Bulk,
    /// Every other `POST`, `PUT`, `PATCH` and `DELETE`.
    Write,
}

impl Class {
    fn of(req: &Request) -> Option<Self> {
        match *req.method() {
            Method::POST if req.uri().path() == "/users/bulk" => Some(Self::Bulk),
            // Alertmanager's webhook is authenticated and must not lose alerts to a limit.
            Method::POST if req.uri().path() == "/alerts/alertmanager" => None,
            // A password link's form: its attempts have their own budget per client and link.
            Method::POST if crate::keys::is_unlock(req.uri().path()) => None,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE => Some(Self::Write),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Bulk => "bulk",
            Self::Write => "write",
        }
    }
}
