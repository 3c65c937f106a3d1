//! The body of the `deliver_alert` job, shared by `curtain-worker` (apalis-redis) and the
//! api's embedded queue: one alert group to every configured webhook.
//!
//! Per webhook: alerts still inside their repeat window are skipped, the rest rendered
//! ([`crate::discord::render`]) and sent message by message; each confirmed message marks its
//! alerts ([`crate::dedup`]), so a retry sends only what is missing. A 429 is waited out
//! (Discord's `retry_after`, at most [`RATE_LIMIT_RETRIES`] times and [`RATE_LIMIT_WAIT_MAX`]
//! each) inside the job; 5xx and network errors end the attempt as retryable (the queue
//! retries with back-off); any other 4xx marks the webhook as refused for this delivery
//! (never tried again by its retries) and, once the other webhooks are served, ends the job
//! as permanent (dead).

use std::time::Duration;

use jobs::{Alert, AlertDelivery};

use crate::client::{DiscordClient, SendError};
use crate::dedup::{Dedup, tag};
use crate::discord;
use crate::metrics::AlertMetrics;

/// 429s waited out within one attempt before it is handed back to the queue.
pub const RATE_LIMIT_RETRIES: usize = 5;
/// A `retry_after` longer than this is not slept on in the job: the attempt is retried later.
pub const RATE_LIMIT_WAIT_MAX: Duration = Duration::from_mins(1);
/// How long a refused webhook is remembered for its delivery.
const REFUSED_TTL: Duration = Duration::from_hours(24);

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying (5xx, network, rate limit too long, marker store down).
    #[error("alert delivery failed, will retry: {0}")]
    Retryable(String),
    /// Retrying cannot help (a webhook refused the message, or none is configured).
    #[error("alert delivery failed for good: {0}")]
    Permanent(String),
}

impl From<redis::RedisError> for DeliveryError {
    fn from(e: redis::RedisError) -> Self {
        Self::Retryable(format!("delivery markers: {e}"))
    }
}

/// What one delivery attempt did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: u64,
    pub messages: u64,
    pub suppressed: u64,
}

pub struct Deliverer {
    client: DiscordClient,
    webhooks: Vec<String>,
    dedup: Dedup,
    repeat_window: Duration,
    pub metrics: AlertMetrics,
}

fn sent_key(webhook: &str, alert: &Alert) -> String {
    let identity = if alert.fingerprint.is_empty() {
        tag(&serde_json::to_string(&alert.labels).unwrap_or_default())
    } else {
        alert.fingerprint.clone()
    };
    format!(
        "sent:{webhook}:{identity}:{}:{}",
        alert.status.as_str(),
        alert.starts_at.timestamp()
    )
}

impl Deliverer {
    pub fn new(
        webhooks: Vec<String>,
        dedup: Dedup,
        repeat_window: Duration,
        metrics: AlertMetrics,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: DiscordClient::new()?,
            webhooks,
            dedup,
            repeat_window,
            metrics,
        })
    }

    /// Delivers `job` to every webhook. Counted in [`AlertMetrics`] except `dead`, which the
    /// queue's side decides (a retryable failure is dead only when attempts run out).
    pub async fn deliver(&self, job: &AlertDelivery) -> Result<DeliveryReport, DeliveryError> {
        if self.webhooks.is_empty() {
            return Err(DeliveryError::Permanent(
                "no DISCORD_WEBHOOK_URL is configured".into(),
            ));
        }
        let mut report = DeliveryReport::default();
        let (mut retryable, mut permanent) = (None, None);
        for webhook in &self.webhooks {
            let webhook_tag = tag(webhook);
            let refused_key = format!("refused:{webhook_tag}:{}", job.delivery_id);
            if let Some(reason) = self.dedup.get(&refused_key).await? {
                permanent = Some(reason);
                continue;
            }
            match self
                .deliver_to(job, webhook, &webhook_tag, &mut report)
                .await
            {
                Ok(()) => {}
                Err(DeliveryError::Permanent(reason)) => {
                    tracing::error!(job.name = jobs::DeliverAlert::NAME, delivery.id = %job.delivery_id, webhook = %webhook_tag, error = %reason, "Discord webhook refused the alert; not retried");
                    self.dedup.mark(&refused_key, &reason, REFUSED_TTL).await?;
                    permanent = Some(reason);
                }
                Err(DeliveryError::Retryable(reason)) => retryable = Some(reason),
            }
        }
        if let Some(reason) = retryable {
            self.metrics.failed.inc();
            return Err(DeliveryError::Retryable(reason));
        }
        if let Some(reason) = permanent {
            return Err(DeliveryError::Permanent(reason));
        }
        Ok(report)
    }

    async fn deliver_to(
        &self,
        job: &AlertDelivery,
        webhook: &str,
        webhook_tag: &str,
        report: &mut DeliveryReport,
    ) -> Result<(), DeliveryError> {
        let mut pending: Vec<(&Alert, String)> = Vec::new();
        for alert in &job.group.alerts {
            let key = sent_key(webhook_tag, alert);
            match self.dedup.get(&key).await? {
                None => pending.push((alert, key)),
                Some(by) if by == job.delivery_id => {} // sent by an earlier attempt
                Some(_) => {
                    self.metrics.suppressed.inc();
                    report.suppressed += 1;
                }
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        let alerts: Vec<&Alert> = pending.iter().map(|(a, _)| *a).collect();
        for part in discord::render(&job.group, &alerts) {
            self.send(webhook, &part.message).await?;
            for &index in &part.alerts {
                self.dedup
                    .mark(&pending[index].1, &job.delivery_id, self.repeat_window)
                    .await?;
            }
            let n = part.alerts.len() as u64;
            self.metrics.messages.inc();
            self.metrics.delivered.inc_by(n);
            report.messages += 1;
            report.delivered += n;
        }
        Ok(())
    }

    /// One message, 429s waited out within bounds.
    async fn send(&self, webhook: &str, message: &discord::Message) -> Result<(), DeliveryError> {
        let mut waits = 0;
        loop {
            match self.client.send(webhook, message).await {
                Ok(()) => return Ok(()),
                Err(SendError::RateLimited {
                    retry_after,
                    global,
                }) => {
                    self.metrics.rate_limited.inc();
                    waits += 1;
                    if waits > RATE_LIMIT_RETRIES || retry_after > RATE_LIMIT_WAIT_MAX {
                        return Err(DeliveryError::Retryable(format!(
                            "rate limited {waits} times (last retry_after {retry_after:?})"
                        )));
                    }
                    tracing::info!(
                        job.name = jobs::DeliverAlert::NAME,
                        retry_after_ms = retry_after.as_millis() as u64,
                        global,
                        "Discord rate limit; waiting"
                    );
                    tokio::time::sleep(retry_after).await;
                }
                Err(e @ SendError::Retryable(_)) => {
                    return Err(DeliveryError::Retryable(e.to_string()));
                }
                Err(e @ SendError::Permanent { .. }) => {
                    return Err(DeliveryError::Permanent(e.to_string()));
                }
            }
        }
    }
}
