//! Counters of alert intake and delivery, registered on the process' registry (api and
//! worker both deliver: the worker from Redis, the api in the embedded default).

use prometheus::{IntCounter, Registry};

#[derive(Clone)]
pub struct AlertMetrics {
    /// Alert groups accepted by `POST /alerts/alertmanager`.
    pub received: IntCounter,
    /// Alerts delivered to a webhook (confirmed by Discord), per webhook.
    pub delivered: IntCounter,
    /// Discord messages confirmed.
    pub messages: IntCounter,
    /// Alerts not sent again because their repeat window was still open.
    pub suppressed: IntCounter,
    /// 429 answers from Discord (each honoured by waiting its `retry_after`).
    pub rate_limited: IntCounter,
    /// Delivery attempts that failed and will be retried.
    pub failed: IntCounter,
    /// Deliveries that ended for good without reaching every webhook (dead jobs).
    pub dead: IntCounter,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

impl AlertMetrics {
    /// Registers the counters; names are constants, so a failure is a programming error.
    #[must_use]
    pub fn register(registry: &Registry) -> Self {
        Self {
            received: counter(
                registry,
                "curtain_alert_groups_received_total",
                "Alert groups accepted from Alertmanager.",
            ),
            delivered: counter(
                registry,
                "curtain_alerts_delivered_total",
                "Alerts delivered to a Discord webhook (confirmed), per webhook.",
            ),
            messages: counter(
                registry,
                "curtain_alert_messages_sent_total",
                "Discord messages confirmed by Discord.",
            ),
            suppressed: counter(
                registry,
                "curtain_alerts_suppressed_total",
                "Alerts not delivered again within their repeat window.",
            ),
            rate_limited: counter(
                registry,
                "curtain_alert_rate_limited_total",
                "429 answers from Discord (each waited out).",
            ),
            failed: counter(
                registry,
                "curtain_alerts_failed_total",
                "Alert-delivery attempts that failed and will be retried.",
            ),
            dead: counter(
                registry,
                "curtain_alerts_dead_total",
                "Alert deliveries that ended dead (permanent refusal or attempts exhausted).",
            ),
        }
    }
}
