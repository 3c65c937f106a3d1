//! Link-health payloads: the links whose targets a `check_links` job probes, and the alert a
//! broken (or recovered) link raises through the `deliver_alert` job.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertGroup, AlertStatus};

/// The links to probe. Idempotent: a check writes what it found and applies a status change's
/// effects (alert, cache switch) once, marked on the link's row, so a retried or re-delivered
/// job repeats neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckLinks {
    pub url_ids: Vec<i64>,
    /// Why (logged): `scheduled`, `manual`.
    pub reason: String,
}

/// The link-health job's identity.
pub struct LinkHealth;

impl LinkHealth {
    pub const NAME: &'static str = "check_links";
    pub const QUEUE: &'static str = "curtain:health";
    /// The name of the alert a broken link raises.
    pub const ALERT: &'static str = "CurtainLinkBroken";
}

/// What the alert says about the link.
#[derive(Debug, Clone)]
pub struct BrokenLink<'a> {
    pub url_id: i64,
    pub short_code: &'a str,
    pub target: &'a str,
    /// The last probe's error (firing) or `None` (resolved).
    pub error: Option<&'a str>,
    /// Where redirects go while it is broken, if they switch.
    pub fallback: Option<&'a str>,
    /// Start of the broken spell: with the fingerprint it keys the repeat window, so a
    /// retried check's second alert for the same spell is not delivered twice.
    pub since: DateTime<Utc>,
    pub instance: &'a str,
}

impl Alert {
    /// `CurtainLinkBroken` of one link, firing or resolved. Its fingerprint names the link
    /// and its start is the broken spell's: together they key the repeat window, so the same
    /// transition enqueued twice (a check retried after a crash) is delivered once.
    #[must_use]
    pub fn broken_link(link: &BrokenLink<'_>, status: AlertStatus) -> Self {
        let labels = BTreeMap::from([
            ("alertname".to_owned(), LinkHealth::ALERT.to_owned()),
            ("severity".to_owned(), "warning".to_owned()),
            ("source".to_owned(), "curtain".to_owned()),
            ("instance".to_owned(), link.instance.to_owned()),
            ("short_code".to_owned(), link.short_code.to_owned()),
            ("url_id".to_owned(), link.url_id.to_string()),
        ]);
        let (summary, description) = match status {
            AlertStatus::Firing => (
                format!("Link {} is broken", link.short_code),
                format!(
                    "Target {} failed its health checks: {}. {}",
                    link.target,
                    link.error.unwrap_or("unknown error"),
                    link.fallback.map_or_else(
                        || "It has no fallback: redirects still go to the target.".to_owned(),
                        |f| format!("Redirects go to the fallback {f} until it recovers."),
                    )
                ),
            ),
            AlertStatus::Resolved => (
                format!("Link {} recovered", link.short_code),
                format!("Target {} answers again; redirects go to it.", link.target),
            ),
        };
        Self {
            status,
            labels,
            annotations: BTreeMap::from([
                ("summary".to_owned(), summary),
                ("description".to_owned(), description),
                ("target".to_owned(), link.target.to_owned()),
            ]),
            starts_at: link.since,
            ends_at: (status == AlertStatus::Resolved).then(Utc::now),
            generator_url: String::new(),
            fingerprint: format!("curtain-link-{}", link.url_id),
        }
    }
}

impl AlertGroup {
    /// The link alerts of one check (at most a job's batch of links): one group, so a mass
    /// outage makes one delivery per batch (its messages carry up to 10 alerts each), not one
    /// per link. Firing while any of them fires.
    #[must_use]
    pub fn link_health(alerts: Vec<Alert>, instance: &str) -> Self {
        let name = LinkHealth::ALERT;
        let status = if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        };
        Self {
            version: "4".to_owned(),
            group_key: format!("curtain:{name}"),
            status,
            receiver: "curtain".to_owned(),
            group_labels: BTreeMap::from([("alertname".to_owned(), name.to_owned())]),
            common_labels: BTreeMap::from([
                ("alertname".to_owned(), name.to_owned()),
                ("source".to_owned(), "curtain".to_owned()),
                ("instance".to_owned(), instance.to_owned()),
            ]),
            common_annotations: BTreeMap::new(),
            external_url: String::new(),
            alerts,
            truncated_alerts: 0,
        }
    }
}
