//! The api's side of webhooks: link writes record their deliveries in their own transaction
//! (`storage::webhooks::record_link_event`, then [`WebhookHub::committed`]); in the embedded
//! default (no `REDIS_URL`) this process also runs the relay and makes the attempts, as
//! `curtain-worker` does with `REDIS_URL` (then the worker's relay picks the rows up).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sea_orm::DatabaseConnection;
use storage::webhooks::ClickHooks;
use tokio::sync::Notify;

use crate::config::Config;

pub struct WebhookHub {
    /// The subscribers of `link.clicked`, cached for in-process click ingestion.
    pub click_hooks: Arc<ClickHooks>,
    /// Wakes the in-process relay (embedded default only).
    wake: Option<Arc<Notify>>,
}

impl WebhookHub {
    /// Starts the in-process relay when there is no queue (`REDIS_URL` unset).
    pub fn start(
        config: &Config,
        db: &DatabaseConnection,
        metrics: webhooks::WebhookMetrics,
    ) -> anyhow::Result<Self> {
        let click_hooks = Arc::new(ClickHooks::default());
        if config.redis_url.is_some() {
            return Ok(Self {
                click_hooks,
                wake: None,
            });
        }
        let sender = webhooks::Sender::new(webhooks::Policy::from_config(&config.common), metrics)
            .context("webhook client")?;
        let wake = Arc::new(Notify::new());
        tokio::spawn(webhooks::relay_forever(
            db.clone(),
            webhooks::Dispatch::in_process(Arc::new(sender)),
            Duration::from_millis(config.common.webhook_relay_ms),
            webhooks::keep(&config.common),
            wake.clone(),
        ));
        Ok(Self {
            click_hooks,
            wake: Some(wake),
        })
    }

    /// A write committed deliveries: the in-process relay looks at once.
    pub fn committed(&self) {
        if let Some(wake) = &self.wake {
            wake.notify_one();
        }
    }

    /// Subscriptions were created or deleted here: click ingestion reads them again.
    pub fn subscriptions_changed(&self) {
        self.click_hooks.invalidate();
    }
}
