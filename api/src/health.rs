//! Link health checks in the api: where `POST /urls/<id>/health/check` sends a check, and the
//! embedded default's schedule. With `REDIS_URL` a `check_links` job goes to
//! `HEALTH_QUEUE` for `curtain-worker` (which also runs the schedule); without it the api
//! checks in process with the same code ([`storage::health`]) and alerts through its own
//! alert intake.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jobs::{AlertGroup, CheckLinks, JobQueue};
use storage::health::{AlertSender, Checker, HealthMetrics};

use crate::config::Config;
use crate::state::AppState;

pub enum LinkChecks {
    /// `check_links` jobs for `curtain-worker`.
    Queue(Arc<JobQueue>),
    /// The embedded default: checks run in this process.
    InProcess(Checker),
}

impl LinkChecks {
    pub async fn build(config: &Config, metrics: &crate::metrics::Metrics) -> anyhow::Result<Self> {
        if let Some(url) = &config.redis_url {
            return Ok(Self::Queue(Arc::new(
                JobQueue::connect(url, Some(&config.common.health_queue))
                    .await
                    .context("REDIS_URL (health queue)")?,
            )));
        }
        let health = HealthMetrics::new();
        metrics.register_health(&health);
        Ok(Self::InProcess(
            Checker::new(&config.common, health).context("link health HTTP client")?,
        ))
    }

    /// In the embedded default, checks every link with checks on every
    /// `LINK_HEALTH_EVERY_SECONDS` (0: never), for as long as `state` lives.
    pub fn spawn_schedule(state: &Arc<AppState>, every_seconds: u64) {
        if let Self::InProcess(checker) = &state.link_checks
            && every_seconds > 0
        {
            tokio::spawn(storage::health::run_forever(
                checker.clone(),
                state.db.clone(),
                state.cache.clone(),
                Arc::downgrade(state),
                Duration::from_secs(every_seconds),
            ));
        }
    }

    /// Checks link `id` soon: a job, or a task of this process. `Err`: the queue refused.
    pub async fn check_now(state: &Arc<AppState>, id: i64) -> Result<(), jobs::QueueError> {
        match &state.link_checks {
            Self::Queue(queue) => {
                queue
                    .push_job(&CheckLinks {
                        url_ids: vec![id],
                        reason: "manual".to_owned(),
                    })
                    .await
            }
            Self::InProcess(checker) => {
                let checker = checker.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = checker
                        .check_links(&state.db, &state.cache, state.as_ref(), &[id])
                        .await
                    {
                        tracing::warn!(url.id = id, error = %e, "link health check failed");
                    }
                });
                Ok(())
            }
        }
    }
}

impl AlertSender for AppState {
    async fn send_alert(&self, group: AlertGroup) -> Result<(), String> {
        self.alerts
            .enqueue(group)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
