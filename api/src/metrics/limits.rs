//! The rate limits' counters.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use super::counter;

/// What the rate limits count.
#[derive(Clone)]
pub struct LimitMetrics {
    pub limited: IntCounterVec,
    pub unavailable: IntCounter,
}

impl LimitMetrics {
    pub(super) fn register(registry: &Registry) -> Self {
        let limited = IntCounterVec::new(
            Opts::new(
                "curtain_rate_limited_total",
                "Requests answered 429 by the rate limits, by budget (write, bulk).",
            ),
            &["class"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        registry
            .register(Box::new(limited.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        limited.with_label_values(&["write"]);
        limited.with_label_values(&["bulk"]);
        Self {
            limited,
            unavailable: counter(
                registry,
                "curtain_rate_limit_unavailable_total",
                "Limited requests let through because the rate limiter's Redis did not answer.",
            ),
        }
    }
}
