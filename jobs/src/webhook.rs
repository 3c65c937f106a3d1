//! Webhook-delivery payloads: one row of `webhook_deliveries` to post to its subscriber.

use serde::{Deserialize, Serialize};

/// The delivery to make. The row holds the event, payload and state, so the job is only its
/// id; a row already delivered (or dead) is not posted again, so any number of runs is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub delivery_id: i64,
}

/// The webhook-delivery job's identity.
pub struct DeliverWebhook;

impl DeliverWebhook {
    pub const NAME: &'static str = "deliver_webhook";
    pub const QUEUE: &'static str = "curtain:webhooks";
}
