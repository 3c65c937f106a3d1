//! Webhook-delivery payloads: one row of `webhook_deliveries` to post to its subscriber.

use serde::{Deserialize, Serialize};

/// The delivery to make. The row holds the event, payload and state, so the job is only its
/// id and the relay's claim it was made for: a row already delivered (or dead), or claimed
/// again since (this job is a stale duplicate), is not posted, so any number of runs is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub delivery_id: i64,
    /// The row's claim count when the relay enqueued this job (absent: any claim).
    #[serde(default)]
    pub claim: Option<i32>,
}

/// The webhook-delivery job's identity.
pub struct DeliverWebhook;

impl DeliverWebhook {
    pub const NAME: &'static str = "deliver_webhook";
    pub const QUEUE: &'static str = "curtain:webhooks";
}
