//! Alert intake: where an accepted Alertmanager group goes. With `REDIS_URL` the
//! `deliver_alert` job is enqueued on the alert queue for `curtain-worker`; without it (the
//! embedded default) it runs in process with the same job body ([`alerts::EmbeddedQueue`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jobs::{AlertDelivery, AlertGroup, JobQueue, QueueError};

use crate::config::Config;

pub enum AlertSink {
    Queue(Arc<JobQueue>),
    Embedded(alerts::EmbeddedQueue),
    /// Embedded default without `DISCORD_WEBHOOK_URL`: nowhere to deliver.
    Nowhere,
}

pub struct AlertIntake {
    /// `ALERTMANAGER_WEBHOOK_TOKEN`; unset: intake disabled (503).
    pub token: Option<String>,
    pub sink: AlertSink,
    pub metrics: alerts::AlertMetrics,
}

impl AlertIntake {
    pub async fn build(config: &Config, metrics: alerts::AlertMetrics) -> anyhow::Result<Self> {
        let common = &config.common;
        let sink = match &config.redis_url {
            Some(url) => AlertSink::Queue(Arc::new(
                JobQueue::connect(url, Some(&common.alert_queue))
                    .await
                    .context("REDIS_URL (alert queue)")?,
            )),
            None if common.discord_webhooks().is_empty() => AlertSink::Nowhere,
            None => {
                let deliverer = alerts::Deliverer::new(
                    common.discord_webhooks(),
                    alerts::dedup::Dedup::memory(),
                    Duration::from_secs(common.alert_repeat_window_seconds),
                    metrics.clone(),
                )
                .context("Discord client")?;
                AlertSink::Embedded(alerts::EmbeddedQueue::start(
                    Arc::new(deliverer),
                    Duration::from_secs(1),
                ))
            }
        };
        Ok(Self {
            token: config
                .alertmanager_webhook_token
                .clone()
                .filter(|t| !t.is_empty()),
            sink,
            metrics,
        })
    }

    /// Whether `presented` is the configured token (compared in constant time).
    #[must_use]
    pub fn authorised(&self, presented: &str) -> bool {
        self.token.as_deref().is_some_and(|token| {
            let (a, b) = (token.as_bytes(), presented.as_bytes());
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        })
    }

    /// Enqueues one delivery job for `group`; returns its id. `Ok(None)`: nowhere to deliver.
    pub async fn enqueue(&self, group: AlertGroup) -> Result<Option<String>, QueueError> {
        let job = AlertDelivery::new(group);
        let id = job.delivery_id.clone();
        match &self.sink {
            AlertSink::Queue(queue) => queue.push_job(&job).await?,
            AlertSink::Embedded(queue) => queue.push(job),
            AlertSink::Nowhere => return Ok(None),
        }
        self.metrics.received.inc();
        Ok(Some(id))
    }
}
