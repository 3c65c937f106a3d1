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
    /// The redirect answered a HEAD request (link checkers, unfurlers): its event is flagged
    /// as a bot's. Absent in jobs queued by older api processes: false.
    #[serde(default)]
    pub head: bool,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_click_queued_by_an_older_api_decodes_as_not_head() {
        let old = r#"{"click_id":"c1","url_id":1,"short_code":"abc123","at":"2026-12-07T10:00:00",
            "visitor_hash":"v","user_agent":null,"referrer":null}"#;
        let click: Click = serde_json::from_str(old).unwrap();
        assert!(!click.head);
        let head = Click {
            head: true,
            ..click
        };
        let again: Click = serde_json::from_str(&serde_json::to_string(&head).unwrap()).unwrap();
        assert!(again.head);
    }
}
