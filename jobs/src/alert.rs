//! Alert payloads: Alertmanager's webhook (version 4) as received, and the delivery job the
//! api enqueues for each alert group it receives.
//!
//! Alertmanager sends one webhook per alert group, so one webhook is one [`DeliverAlert`]
//! job. Curtain's own conditions (dead click jobs, a click backlog) are built in the same
//! shape ([`AlertGroup::own_condition`]) and go through the same job.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `firing` or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// One alert of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: AlertStatus,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    /// `0001-01-01T00:00:00Z` while firing (Alertmanager's zero time).
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's identity of the alert (its label set); keys the repeat window.
    #[serde(default)]
    pub fingerprint: String,
}

impl Alert {
    /// The alert's name (`alertname` label), or `alert` when it has none.
    #[must_use]
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("alert", String::as_str)
    }
}

/// Alertmanager's webhook payload, version 4: one alert group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertGroup {
    pub version: String,
    pub group_key: String,
    pub status: AlertStatus,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<Alert>,
    #[serde(default)]
    pub truncated_alerts: u64,
}

impl AlertGroup {
    /// One of Curtain's own conditions as a single-alert group. The fingerprint is derived
    /// from the name, so the repeat window applies to it like to Alertmanager's alerts.
    #[must_use]
    pub fn own_condition(
        name: &str,
        status: AlertStatus,
        summary: &str,
        description: &str,
        starts_at: DateTime<Utc>,
        instance: &str,
    ) -> Self {
        let labels = BTreeMap::from([
            ("alertname".to_owned(), name.to_owned()),
            ("severity".to_owned(), "critical".to_owned()),
            ("source".to_owned(), "curtain".to_owned()),
            ("instance".to_owned(), instance.to_owned()),
        ]);
        let alert = Alert {
            status,
            labels: labels.clone(),
            annotations: BTreeMap::from([
                ("summary".to_owned(), summary.to_owned()),
                ("description".to_owned(), description.to_owned()),
            ]),
            starts_at,
            ends_at: (status == AlertStatus::Resolved).then(Utc::now),
            generator_url: String::new(),
            fingerprint: format!("curtain-{name}"),
        };
        Self {
            version: "4".to_owned(),
            group_key: format!("curtain:{name}"),
            status,
            receiver: "curtain".to_owned(),
            group_labels: BTreeMap::from([("alertname".to_owned(), name.to_owned())]),
            common_labels: labels,
            common_annotations: BTreeMap::new(),
            external_url: String::new(),
            alerts: vec![alert],
            truncated_alerts: 0,
        }
    }
}

/// The alert-delivery job: one alert group to every configured Discord webhook.
/// `delivery_id` is stable across retries and re-deliveries of the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDelivery {
    pub delivery_id: String,
    pub group: AlertGroup,
}

impl AlertDelivery {
    #[must_use]
    pub fn new(group: AlertGroup) -> Self {
        Self {
            delivery_id: uuid::Uuid::new_v4().to_string(),
            group,
        }
    }
}

/// The alert-delivery job's identity.
pub struct DeliverAlert;

impl DeliverAlert {
    pub const NAME: &'static str = "deliver_alert";
    pub const QUEUE: &'static str = "curtain:alerts";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alertmanager_v4_payload_parses_with_zero_end_time() {
        let raw = r#"{"version":"4","groupKey":"{}:{alertname=\"X\"}","status":"firing",
            "receiver":"discord","groupLabels":{"alertname":"X"},"commonLabels":{},
            "commonAnnotations":{},"externalURL":"http://am:9093","truncatedAlerts":0,
            "alerts":[{"status":"firing","labels":{"alertname":"X"},"annotations":{},
            "startsAt":"2026-12-03T10:00:00.123Z","endsAt":"0001-01-01T00:00:00Z",
            "generatorURL":"http://prom/graph","fingerprint":"abc"}]}"#;
        let group: AlertGroup = serde_json::from_str(raw).unwrap();
        assert_eq!(group.alerts[0].name(), "X");
        assert_eq!(group.alerts[0].generator_url, "http://prom/graph");
        assert_eq!(group.status, AlertStatus::Firing);
    }
}
