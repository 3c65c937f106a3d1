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

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use redis::aio::ConnectionManager;

use crate::error::json_error;

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

/// The answer of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests left in the burst after this one.
    pub remaining: u64,
    /// Milliseconds until a denied request would be allowed (0 when allowed).
    pub retry_ms: u64,
    /// Milliseconds until the budget is whole again.
    pub reset_ms: u64,
}

/// GCRA over a stored theoretical arrival time `tat` (ms): returns the decision and the new
/// `tat` (unchanged when denied). `interval` = ms per request, `burst` = requests at once.
#[must_use]
pub fn gcra(tat: Option<u64>, now: u64, interval: u64, burst: u64) -> (Decision, u64) {
    let tat = tat.unwrap_or(now).max(now);
    let allow_at = (tat + interval).saturating_sub(burst * interval);
    if now < allow_at {
        let decision = Decision {
            allowed: false,
            remaining: 0,
            retry_ms: allow_at - now,
            reset_ms: tat - now,
        };
        return (decision, tat);
    }
    let new_tat = tat + interval;
    let decision = Decision {
        allowed: true,
        remaining: (now + burst * interval).saturating_sub(new_tat) / interval,
        retry_ms: 0,
        reset_ms: new_tat - now,
    };
    (decision, new_tat)
}

/// The same GCRA as [`gcra`], on Redis' clock. KEYS[1] the client's key; ARGV interval, burst.
const GCRA: &str = r"
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + 1000)
return {1, math.floor((now + burst * interval - new_tat) / interval), 0, new_tat - now}
";

/// One budget: `limit` requests per minute per client.
struct Budget {
    class: Class,
    limit: u64,
    interval_ms: u64,
}

enum Store {
    Memory {
        started: Instant,
        tats: quick_cache::sync::Cache<(Class, IpAddr), Arc<Mutex<u64>>>,
    },
    Redis {
        conn: ConnectionManager,
        prefix: String,
        script: redis::Script,
    },
}

pub struct RateLimits {
    budgets: Vec<Budget>,
    store: Store,
    trusted_proxy: Option<IpAddr>,
    metrics: crate::metrics::LimitMetrics,
}

/// How long the limiter may wait for Redis before letting the request through.
const REDIS_BUDGET: Duration = Duration::from_millis(200);

impl RateLimits {
    /// `None` when both limits are 0 (off).
    pub async fn build(
        config: &crate::Config,
        metrics: crate::metrics::LimitMetrics,
    ) -> anyhow::Result<Option<Self>> {
        let budgets: Vec<Budget> = [
            (Class::Write, config.rate_limit_writes_per_minute),
            (Class::Bulk, config.rate_limit_bulk_per_minute),
        ]
        .into_iter()
        .filter(|(_, limit)| *limit > 0)
        .map(|(class, limit)| Budget {
            class,
            limit,
            interval_ms: (60_000 / limit).max(1),
        })
        .collect();
        if budgets.is_empty() {
            return Ok(None);
        }
        let redis_url = config
            .rate_limit_redis_url
            .as_ref()
            .or(config.common.cache_redis_url.as_ref())
            .or(config.redis_url.as_ref());
        let store = match redis_url {
            Some(url) => {
                let client = redis::Client::open(url.as_str())?;
                let conn_config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_BUDGET))
                    .set_response_timeout(Some(REDIS_BUDGET))
                    .set_number_of_retries(0);
                Store::Redis {
                    conn: ConnectionManager::new_lazy_with_config(client, conn_config)?,
                    prefix: format!("{}:ratelimit:", config.common.cache_prefix),
                    script: redis::Script::new(GCRA),
                }
            }
            None => Store::Memory {
                started: Instant::now(),
                tats: quick_cache::sync::Cache::new(100_000),
            },
        };
        Ok(Some(Self {
            budgets,
            store,
            trusted_proxy: config.trusted_proxy,
            metrics,
        }))
    }

    async fn check(&self, budget: &Budget, client: IpAddr) -> Option<Decision> {
        match &self.store {
            Store::Memory { started, tats } => {
                let now = started.elapsed().as_millis() as u64;
                let cell = tats.get_or_insert_with(&(budget.class, client), || {
                    Ok::<_, std::convert::Infallible>(Arc::new(Mutex::new(0)))
                });
                let Ok(cell) = cell;
                let mut tat = cell
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let stored = (*tat > 0).then_some(*tat);
                let (decision, new_tat) = gcra(stored, now, budget.interval_ms, budget.limit);
                *tat = new_tat;
                Some(decision)
            }
            Store::Redis {
                conn,
                prefix,
                script,
            } => {
                let mut conn = conn.clone();
                let key = format!("{prefix}{}:{client}", budget.class.name());
                let mut invocation = script.key(key);
                invocation.arg(budget.interval_ms).arg(budget.limit);
                let call = invocation.invoke_async::<(u64, u64, u64, u64)>(&mut conn);
                match tokio::time::timeout(REDIS_BUDGET, call).await {
                    Ok(Ok((allowed, remaining, retry_ms, reset_ms))) => Some(Decision {
                        allowed: allowed == 1,
                        remaining,
                        retry_ms,
                        reset_ms,
                    }),
                    outcome => {
                        tracing::warn!(?outcome, "rate limiter unavailable; request let through");
                        self.metrics.unavailable.inc();
                        None
                    }
                }
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::gcra;

    #[test]
    fn a_burst_then_one_per_interval_and_the_right_waits() {
        // 3 per minute: 20 s apart, 3 at once.
        let (interval, burst) = (20_000, 3);
        let mut tat = None;
        let mut remaining = Vec::new();
        for _ in 0..3 {
            let (d, t) = gcra(tat, 1_000, interval, burst);
            assert!(d.allowed);
            remaining.push(d.remaining);
            tat = Some(t);
        }
        assert_eq!(remaining, [2, 1, 0]);
        let (d, t) = gcra(tat, 1_000, interval, burst);
        assert_eq!((d.allowed, d.retry_ms, d.reset_ms), (false, 20_000, 60_000));
        assert_eq!(Some(t), tat, "a denied request spends nothing");
        // 20 s later exactly one more is allowed.
        let (d, t) = gcra(tat, 21_000, interval, burst);
        assert_eq!((d.allowed, d.remaining), (true, 0));
        let (d, _) = gcra(Some(t), 21_000, interval, burst);
        assert!(!d.allowed);
        // After a full minute idle the whole burst is back.
        let (d, _) = gcra(Some(t), 200_000, interval, burst);
        assert_eq!((d.allowed, d.remaining), (true, 2));
    }
}
