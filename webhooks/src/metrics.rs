//! `curtain_webhook_deliveries_total{event,result}`: attempts by outcome (`delivered`,
//! `failed`: an attempt that did not get a 2xx, `dead`: a delivery that failed its last
//! attempt, counted in `failed` too). Every series exists from start at 0.

use prometheus::{IntCounterVec, Opts, Registry};
use storage::webhooks::EVENTS;

#[derive(Clone)]
pub struct WebhookMetrics {
    deliveries: IntCounterVec,
}

pub const RESULTS: [&str; 3] = ["delivered", "failed", "dead"];

impl WebhookMetrics {
    /// Registers the family on `registry`; the name is a constant, so a failure is a
    /// programming error caught by every test.
    #[must_use]
    pub fn register(registry: &Registry) -> Self {
        let deliveries = IntCounterVec::new(
            Opts::new(
                "curtain_webhook_deliveries_total",
                "Webhook delivery attempts by event and result (delivered, failed, dead).",
            ),
            &["event", "result"],
        )
        .unwrap_or_else(|e| panic!("curtain_webhook_deliveries_total: {e}"));
        registry
            .register(Box::new(deliveries.clone()))
            .unwrap_or_else(|e| panic!("curtain_webhook_deliveries_total: {e}"));
        for event in EVENTS {
            for result in RESULTS {
                let _ = deliveries.with_label_values(&[event, result]);
            }
        }
        Self { deliveries }
    }

    pub(crate) fn count(&self, event: &str, result: &str) {
        self.deliveries.with_label_values(&[event, result]).inc();
    }

    /// The count of one series (tests).
    #[must_use]
    pub fn get(&self, event: &str, result: &str) -> u64 {
        self.deliveries.with_label_values(&[event, result]).get()
    }
}
