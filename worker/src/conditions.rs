//! Curtain's own alert conditions, delivered to Discord by the same `deliver_alert` job as
//! Alertmanager's alerts: dead click jobs (batches that failed 25 times: found in the dead
//! set, or re-driven from it) and a click backlog older than `CLICK_BACKLOG_ALERT_SECONDS`.
//!
//! Every worker checks them on its housekeeping tick; the state of each condition lives in
//! Redis and changes in one script, so of several workers exactly one sees a transition and
//! enqueues it: `firing` once when the condition starts, `resolved` once it has not held for
//! `CONDITION_RESOLVE_SECONDS` (by any worker: the one that re-drove dead jobs is not the
//! only one looking).

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use jobs::{AlertDelivery, AlertGroup, AlertStatus, JobQueue, QueueDepth};

use crate::WorkerState;

/// KEYS[1]: the condition's state (`firing:<since>:<last seen>` or `ok`). ARGV[1]: 1 if it
/// holds now, ARGV[2]: now (unix seconds), ARGV[3]: seconds without it before it resolves.
/// Returns `firing:<since>` / `resolved:<since>` on a transition, nil otherwise.
const TRANSITION: &str = r"
local old = redis.call('GET', KEYS[1]) or 'ok'
local since, last = string.match(old, '^firing:(%d+):(%d+)$')
if ARGV[1] == '1' then
  if since then
    redis.call('SET', KEYS[1], 'firing:' .. since .. ':' .. ARGV[2])
    return false
  end
  redis.call('SET', KEYS[1], 'firing:' .. ARGV[2] .. ':' .. ARGV[2])
  return 'firing:' .. ARGV[2]
end
if not since then return false end
if tonumber(ARGV[2]) - tonumber(last) < tonumber(ARGV[3]) then return false end
redis.call('SET', KEYS[1], 'ok')
return 'resolved:' .. since
";

/// What this tick saw of the click queue.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClickHealth {
    /// Its depth, if it could be read.
    pub depth: Option<QueueDepth>,
    /// Dead jobs re-driven this tick (they failed 25 times).
    pub redriven: u64,
}

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

    /// Checks every condition against what this tick saw of the click queue.
    pub async fn check(&mut self, state: &WorkerState, health: &ClickHealth) {
        let (Some(queue), Some(clicks)) = (self.queue.clone(), health.depth) else {
            return;
        };
        let dead = clicks.dead + health.redriven;
        let threshold = state.config.backlog_alert_seconds;
        let click_queue = &state.config.common.click_queue;
        let checks = [
            (
                "CurtainDeadClickJobs",
                dead > 0,
                "Click jobs failed 25 times".to_owned(),
                format!(
                    "{dead} click batches of `{click_queue}` failed 25 times in a row (they are scheduled again): ingestion is failing, see the worker logs."
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
            .arg(state.config.condition_resolve_seconds)
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
