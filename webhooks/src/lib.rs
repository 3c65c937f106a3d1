//! Webhook delivery, shared by `curtain-worker` (jobs on `WEBHOOK_QUEUE`) and `curtain-api`
//! in the embedded default (in process): signing ([`signature`]), one attempt of one delivery
//! ([`Sender::deliver`]) and the relay that hands due deliveries over ([`relay`]).
//!
//! The rows of `webhook_deliveries` ([`storage::webhooks`]) are the source of truth; a job is
//! only a delivery id, so a lost job costs a lease (the relay claims the row again) and a
//! duplicated one posts at most once more (receivers dedup on `X-Curtain-Delivery`).

mod metrics;
pub mod receiver;
pub mod relay;

use std::time::Duration;

use chrono::NaiveDateTime;
use hmac::{KeyInit, Mac};
use sea_orm::{DatabaseConnection, DbErr};
use storage::webhooks::{self, Delivery, Failure, Outcome};

pub use metrics::WebhookMetrics;
pub use relay::{Dispatch, relay_forever, relay_once};

/// How long a subscriber has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, the `X-Curtain-Signature`.
#[must_use]
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC takes a key of any length")
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", hex::encode(digest))
}

fn timestamp(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The JSON body of a delivery: `{"id", "event", "created_at", "data"}` (the same bytes on
/// every attempt).
#[must_use]
pub fn body(delivery: &Delivery) -> String {
    let data: serde_json::Value =
        serde_json::from_str(&delivery.payload).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "id": delivery.id,
        "event": delivery.event,
        "created_at": timestamp(delivery.created_at),
        "data": data,
    })
    .to_string()
}

/// How long delivered rows are kept (`WEBHOOK_KEEP_DAYS`).
#[must_use]
pub fn keep(common: &storage::config::CommonArgs) -> Duration {
    Duration::from_secs(u64::from(common.webhook_keep_days) * 86_400)
}

/// Retry policy of failed deliveries.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// First retry delay; doubled for each further attempt.
    pub base: Duration,
    pub max_attempts: u32,
}

impl Policy {
    #[must_use]
    pub fn from_config(common: &storage::config::CommonArgs) -> Self {
        Self {
            base: Duration::from_secs(common.webhook_retry_base_seconds),
            max_attempts: common.webhook_max_attempts,
        }
    }
}

/// Posts deliveries and records what came of them.
pub struct Sender {
    client: reqwest::Client,
    policy: Policy,
    metrics: WebhookMetrics,
}

impl Sender {
    /// Needs the TLS crypto provider installed (`telemetry::install_crypto_provider`).
    pub fn new(policy: Policy, metrics: WebhookMetrics) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Curtain-Webhooks/1")
            .build()?;
        Ok(Self {
            client,
            policy,
            metrics,
        })
    }

    /// One attempt of delivery `id` for the relay's `claim`: nothing if it is no longer
    /// pending (delivered, dead, its webhook deleted) or was claimed again since; else one
    /// POST and its result recorded. A database error is returned (the job is retried; the
    /// row is unchanged, so the attempt is made again).
    pub async fn deliver(
        &self,
        db: &DatabaseConnection,
        id: i64,
        claim: Option<i32>,
    ) -> Result<Option<Outcome>, DbErr> {
        let Some((delivery, webhook)) = webhooks::load_pending(db, id, claim).await? else {
            return Ok(None);
        };
        let body = body(&delivery);
        let now = chrono::Utc::now();
        let ts = now.timestamp();
        let sent = self
            .client
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header("x-curtain-event", &delivery.event)
            .header("x-curtain-delivery", delivery.id.to_string())
            .header("x-curtain-timestamp", ts.to_string())
            .header("x-curtain-signature", signature(&webhook.secret, ts, &body))
            .body(body)
            .send()
            .await;
        let failure = match sent {
            Ok(resp) if resp.status().is_success() => {
                let status = resp.status().as_u16();
                let done = chrono::Utc::now().naive_utc();
                if webhooks::mark_delivered(db, &delivery, status, done).await? {
                    self.metrics.count(&delivery.event, "delivered");
                    tracing::debug!(webhook.id = webhook.id, delivery.id = delivery.id, event = %delivery.event, "webhook delivered");
                }
                return Ok(Some(Outcome::Delivered));
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                let snippet: String = text.chars().take(200).collect();
                Failure {
                    status: Some(status),
                    error: format!("HTTP {status}: {snippet}"),
                }
            }
            Err(e) => Failure {
                status: None,
                error: error_chain(&e),
            },
        };
        let base = chrono::Duration::from_std(self.policy.base).unwrap_or_default();
        let outcome = webhooks::mark_failed(
            db,
            &delivery,
            &failure,
            chrono::Utc::now().naive_utc(),
            base,
            self.policy.max_attempts,
        )
        .await?;
        match outcome {
            Outcome::Retry(at) => {
                self.metrics.count(&delivery.event, "failed");
                tracing::info!(webhook.id = webhook.id, delivery.id = delivery.id, attempts = delivery.attempts + 1, next_attempt_at = %at, error = %failure.error, "webhook delivery failed; will retry");
            }
            Outcome::Dead => {
                self.metrics.count(&delivery.event, "failed");
                self.metrics.count(&delivery.event, "dead");
                tracing::warn!(webhook.id = webhook.id, delivery.id = delivery.id, attempts = delivery.attempts + 1, error = %failure.error, "webhook delivery dead after its last attempt");
            }
            Outcome::Stale | Outcome::Delivered => {}
        }
        Ok(Some(outcome))
    }
}

/// An error with its sources (reqwest's own message hides the cause: refused, timed out).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: Python's hmac.new(b"secret", b"1700000000.{}", sha256).
        assert_eq!(
            signature("secret", 1_700_000_000, "{}"),
            "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
        assert_ne!(
            signature("secret", 1_700_000_000, "{}"),
            signature("other", 1_700_000_000, "{}")
        );
    }
}
