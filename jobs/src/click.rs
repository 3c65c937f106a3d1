//! Click payloads: one redirect served, and the batch the api enqueues.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

/// One redirect served. `click_id` is given at the edge and makes ingestion exactly-once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Click {
    pub click_id: String,
    pub url_id: i64,
    pub short_code: String,
    pub at: NaiveDateTime,
    /// Salted hash of the client address (raw addresses are never stored).
    pub visitor_hash: String,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
}

/// The click-ingestion job: clicks batched by one api process. `batch_id` is stable across
/// retries and re-deliveries, and keys the idempotency marker of the real-time counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickBatch {
    pub batch_id: String,
    pub clicks: Vec<Click>,
}

impl ClickBatch {
    #[must_use]
    pub fn new(clicks: Vec<Click>) -> Self {
        Self {
            batch_id: uuid::Uuid::new_v4().to_string(),
            clicks,
        }
    }
}

/// The click-ingestion job's identity.
pub struct RecordClicks;

impl RecordClicks {
    pub const NAME: &'static str = "record_clicks";
    pub const QUEUE: &'static str = "curtain:clicks";
}
