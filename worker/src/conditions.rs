//! Curtain's own alert conditions, delivered to Discord by the same `deliver_alert` job as
//! Alertmanager's alerts: dead click jobs (clicks that will never be ingested without an
//! operator) and a click backlog older than `CLICK_BACKLOG_ALERT_SECONDS`.
//!
//! Every worker checks them on its housekeeping tick; the state of each condition lives in
//! Redis and changes in one script, so of several workers exactly one sees a transition and
//! enqueues it: `firing` once when the condition starts, `resolved` once when it ends.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use jobs::{AlertDelivery, AlertGroup, AlertStatus, JobQueue, QueueDepth};

use crate::WorkerState;

/// KEYS[1]: the condition's state. ARGV[1]: 1 if it holds now, ARGV[2]: now (unix seconds).
/// Returns `firing:<since>` / `resolved:<since>` on a transition, nil otherwise.
const TRANSITION: &str = r"
local old = redis.call('GET', KEYS[1])
local was_firing = old and string.sub(old, 1, 7) == 'firing:'
if ARGV[1] == '1' then
  if was_firing then return false end
  redis.call('SET', KEYS[1], 'firing:' .. ARGV[2])
  return 'firing:' .. ARGV[2]
end
if not was_firing then return false end
redis.call('SET', KEYS[1], 'ok')
return 'resolved:' .. string.sub(old, 8)
";

pub struct Conditions {
    queue: Option<Arc<JobQueue>>,
    script: redis::Script,
}

impl Conditions {
    /// Active when this worker delivers alerts (`DISCORD_WEBHOOK_URL` set).
    #[must_use]
    pub fn new(state: &WorkerState, queues: &[Arc<JobQueue>]) -> Self {
        let queue = queues
            .iter()
            .find(|q| q.name() == state.config.common.alert_queue)
            .filter(|_| state.alerts.is_some())
            .cloned();
        Self {
            queue,
            script: redis::Script::new(TRANSITION),
        }
    }

    /// Checks every condition against the click queue's depth.
    pub async fn check(&mut self, state: &WorkerState, clicks: &QueueDepth) {
        let Some(queue) = self.queue.clone() else {
            return;
        };
        let threshold = state.config.backlog_alert_seconds;
        let click_queue = &state.config.common.click_queue;
        let checks = [
            (
                "CurtainDeadClickJobs",
                clicks.dead > 0,
                "Click jobs are dead".to_owned(),
                format!(
                    "{} click batches in `{click_queue}:dead` failed 25 times and will not be retried: their clicks are not counted until an operator replays them.",
                    clicks.dead
                ),
            ),
            (
                "CurtainClickBacklog",
                clicks.oldest_age_seconds > threshold,
                "Click ingestion is falling behind".to_owned(),
                format!(
                    "The oldest waiting click batch in `{click_queue}` is {} s old (threshold {threshold} s); {} batches pending.",
                    clicks.oldest_age_seconds,
                    clicks.pending()
                ),
            ),
        ];
        for (name, holds, summary, description) in checks {
            if let Err(e) = self
                .transition(state, &queue, name, holds, &summary, &description)
                .await
            {
                tracing::warn!(condition = name, error = %e, "checking an alert condition failed");
            }
        }
    }

    async fn transition(
        &self,
        state: &WorkerState,
        queue: &JobQueue,
        name: &str,
        holds: bool,
        summary: &str,
        description: &str,
    ) -> Result<(), jobs::QueueError> {
        let key = format!(
            "{}:alerts:condition:{name}",
            state.config.common.cache_prefix
        );
        let mut conn = queue.connection();
        let change: Option<String> = self
            .script
            .key(key)
            .arg(u8::from(holds))
            .arg(Utc::now().timestamp())
            .invoke_async(&mut conn)
            .await?;
        let Some((status, since)) = change.as_deref().and_then(|c| c.split_once(':')) else {
            return Ok(());
        };
        let status = if status == "firing" {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        };
        let since = since
            .parse::<i64>()
            .ok()
            .and_then(|s| Utc.timestamp_opt(s, 0).single())
            .unwrap_or_else(Utc::now);
        let group = AlertGroup::own_condition(
            name,
            status,
            summary,
            description,
            since,
            &state.config.common.instance_name(),
        );
        queue.push_job(&AlertDelivery::new(group)).await?;
        tracing::warn!(
            condition = name,
            status = status.as_str(),
            "Curtain alert condition changed; delivery enqueued"
        );
        Ok(())
    }
}
