//! Link health checks: the targets of links with `health_check` on are probed on a schedule
//! ([`probe`]); a target that fails `LINK_HEALTH_FAILURES` checks in a row is *broken* (an
//! alert to Discord; redirects switch to the link's `fallback_url` when it has one and
//! `fallback_on_broken`), and one success makes it *healthy* again (a resolved alert;
//! redirects go back to the target). One code path for the worker's `check_links` job and the
//! embedded api's loop.
//!
//! The state lives on the link's row. Counting failures and the status change are single
//! conditional `UPDATE`s, so concurrent checks of one link agree on one transition. The
//! effects of a status (cache switch on every instance, alert) are done by [`Checker::settle`]
//! while `health_notified` differs from `health_status`, and marked done after them: a check
//! that dies half-way is completed by the next (a retry), and a status is alerted once (the
//! alert's fingerprint and start also key the delivery's repeat window, so a second
//! enqueue of the same transition is not delivered twice). The transitions of one batch go
//! out as one alert group (a mass outage is one delivery per 50 links, not a message each).

pub mod destination;
pub mod metrics;
pub mod probe;

use std::future::Future;
use std::time::Duration;

use chrono::NaiveDateTime;
use entity::url;
use futures_util::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, ExprTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::cache::{Cache, Invalidation};
use crate::config::CommonArgs;
use jobs::{Alert, AlertDelivery, AlertGroup, AlertStatus, BrokenLink, JobQueue};
pub use metrics::HealthMetrics;
pub use probe::Prober;

/// `health_status` values.
pub const UNKNOWN: &str = "unknown";
pub const HEALTHY: &str = "healthy";
pub const BROKEN: &str = "broken";

/// Probes running at once within one batch.
const CONCURRENT_PROBES: usize = 8;
/// Links per scheduled `check_links` job.
pub const BATCH: usize = 50;

/// Where a check's alerts go: the alert queue (worker) or the api's alert intake.
pub trait AlertSender: Send + Sync {
    fn send_alert(&self, group: AlertGroup) -> impl Future<Output = Result<(), String>> + Send;
}

impl AlertSender for JobQueue {
    async fn send_alert(&self, group: AlertGroup) -> Result<(), String> {
        self.push_job(&AlertDelivery::new(group))
            .await
            .map_err(|e| e.to_string())
    }
}

/// What a check did to one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Gone, inactive or checks off: not probed.
    Skipped,
    Healthy,
    Failed,
}

/// The health checker of one process.
#[derive(Clone)]
pub struct Checker {
    prober: Prober,
    failures: u32,
    instance: String,
    pub metrics: HealthMetrics,
}

impl Checker {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(common: &CommonArgs, metrics: HealthMetrics) -> Result<Self, reqwest::Error> {
        Ok(Self {
            prober: Prober::new(
                Duration::from_secs(common.link_health_timeout_seconds),
                common.link_health_allow_private,
            )?,
            failures: Ord::max(common.link_health_failures, 1),
            instance: common.instance_name(),
            metrics,
        })
    }

    /// Checks every link of `ids` (at most [`CONCURRENT_PROBES`] at once), then settles
    /// them ([`Self::settle`]). Returns the first error (a database or alert failure: the job
    /// is retried; what was settled is not alerted again).
    pub async fn check_links<A: AlertSender>(
        &self,
        db: &DatabaseConnection,
        cache: &Cache,
        alerts: &A,
        ids: &[i64],
    ) -> Result<Vec<(i64, Outcome)>, String> {
        let results: Vec<(i64, Result<Outcome, DbErr>)> =
            futures_util::stream::iter(ids.iter().copied())
                .map(|id| async move { (id, self.check_one(db, id).await) })
                .buffer_unordered(CONCURRENT_PROBES)
                .collect()
                .await;
        // Every link of the batch, also one an earlier run of this job probed but did not
        // settle (it died in between).
        let settled = self.settle(db, cache, alerts, ids).await;
        let probed: Vec<i64> = results
            .iter()
            .filter(|(_, r)| matches!(r, Ok(Outcome::Healthy | Outcome::Failed)))
            .map(|(id, _)| *id)
            .collect();
        if !probed.is_empty() {
            // Their details show the check's time and error (a status change also bumped
            // their redirects, in `settle`).
            cache.invalidate(Invalidation::details(probed)).await;
        }
        settled?;
        let mut done = Vec::with_capacity(results.len());
        for (id, result) in results {
            done.push((id, result.map_err(|e| e.to_string())?));
        }
        Ok(done)
    }

    /// Probes link `id` and records what it found.
    async fn check_one(&self, db: &DatabaseConnection, id: i64) -> Result<Outcome, DbErr> {
        let Some(row) = url::Entity::find_by_id(id).one(db).await? else {
            return Ok(Outcome::Skipped);
        };
        if !row.health_check || !row.is_active {
            return Ok(Outcome::Skipped);
        }
        let result = self.prober.probe(&row.original_url).await;
        let now = domain::now();
        Ok(match &result {
            Ok(()) => {
                self.metrics.checks.with_label_values(&["healthy"]).inc();
                record_success(db, id, now).await?;
                Outcome::Healthy
            }
            Err(error) => {
                self.metrics.checks.with_label_values(&["failed"]).inc();
                tracing::info!(url.id = id, url.short_code = %row.short_code, %error, "link health check failed");
                record_failure(db, id, now, error, self.failures).await?;
                Outcome::Failed
            }
        })
    }

    /// Applies the effects of the status of each link of `ids` whose effects are not done
    /// yet: its caches are switched on every instance (invalidated, then warmed again), the
    /// alerts of all of them are enqueued as one group, and only then `health_notified` is
    /// set on each.
    pub async fn settle<A: AlertSender>(
        &self,
        db: &DatabaseConnection,
        cache: &Cache,
        alerts: &A,
        ids: &[i64],
    ) -> Result<(), String> {
        let db_err = |e: DbErr| e.to_string();
        let rows = url::Entity::find()
            .filter(url::Column::Id.is_in(ids.iter().copied()))
            .filter(url::Column::HealthStatus.ne(UNKNOWN))
            .all(db)
            .await
            .map_err(db_err)?;
        let due: Vec<(url::Model, AlertStatus)> = rows
            .into_iter()
            .filter_map(|row| {
                let status = match (row.health_status.as_str(), row.health_notified.as_deref()) {
                    (BROKEN, notified) if notified != Some(BROKEN) => AlertStatus::Firing,
                    (HEALTHY, Some(BROKEN)) => AlertStatus::Resolved,
                    _ => return None,
                };
                Some((row, status))
            })
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        for (row, _) in &due {
            cache
                .invalidate(Invalidation::link(row.id, &row.short_code))
                .await;
        }
        let due_ids: Vec<i64> = due.iter().map(|(row, _)| row.id).collect();
        if let Err(e) = crate::warm::warm_links(db, cache, &due_ids).await {
            tracing::warn!(url.ids = ?due_ids, error = %e, "warming links after their health changed failed");
        }
        let group = due
            .iter()
            .map(|(row, status)| Alert::broken_link(&self.link(row, *status), *status))
            .collect();
        alerts
            .send_alert(AlertGroup::link_health(group, &self.instance))
            .await?;
        for (row, _) in &due {
            let marked = url::Entity::update_many()
                .col_expr(
                    url::Column::HealthNotified,
                    Expr::value(row.health_status.clone()),
                )
                .filter(url::Column::Id.eq(row.id))
                .filter(url::Column::HealthStatus.eq(row.health_status.clone()))
                .filter(
                    url::Column::HealthNotified
                        .is_null()
                        .or(url::Column::HealthNotified.ne(row.health_status.clone())),
                )
                .exec(db)
                .await
                .map_err(db_err)?;
            if marked.rows_affected > 0 {
                self.metrics
                    .transitions
                    .with_label_values(&[row.health_status.as_str()])
                    .inc();
                tracing::warn!(url.id = row.id, url.short_code = %row.short_code, status = %row.health_status, "link health changed; alert enqueued");
            }
        }
        Ok(())
    }

    /// What the alert of `row` says.
    fn link<'a>(&'a self, row: &'a url::Model, status: AlertStatus) -> BrokenLink<'a> {
        BrokenLink {
            url_id: row.id,
            short_code: &row.short_code,
            target: &row.original_url,
            error: row.health_last_error.as_deref(),
            fallback: (row.fallback_on_broken && status == AlertStatus::Firing)
                .then_some(row.fallback_url.as_deref())
                .flatten(),
            since: row
                .health_broken_since
                .unwrap_or_else(domain::now)
                .and_utc(),
            instance: &self.instance,
        }
    }
}

/// A success: healthy, no failures in a row.
async fn record_success(db: &DatabaseConnection, id: i64, now: NaiveDateTime) -> Result<(), DbErr> {
    url::Entity::update_many()
        .col_expr(url::Column::HealthStatus, Expr::value(HEALTHY))
        .col_expr(url::Column::HealthFailures, Expr::value(0))
        .col_expr(url::Column::HealthCheckedAt, Expr::value(now))
        .col_expr(
            url::Column::HealthLastError,
            Expr::value(Option::<String>::None),
        )
        .filter(url::Column::Id.eq(id))
        .filter(url::Column::HealthCheck.eq(true))
        .exec(db)
        .await?;
    Ok(())
}

/// A failure counted; the link turns broken (once) when the count reaches `threshold`.
async fn record_failure(
    db: &DatabaseConnection,
    id: i64,
    now: NaiveDateTime,
    error: &str,
    threshold: u32,
) -> Result<(), DbErr> {
    url::Entity::update_many()
        .col_expr(
            url::Column::HealthFailures,
            Expr::col(url::Column::HealthFailures).add(1),
        )
        .col_expr(url::Column::HealthCheckedAt, Expr::value(now))
        .col_expr(url::Column::HealthLastError, Expr::value(error))
        .filter(url::Column::Id.eq(id))
        .filter(url::Column::HealthCheck.eq(true))
        .exec(db)
        .await?;
    url::Entity::update_many()
        .col_expr(url::Column::HealthStatus, Expr::value(BROKEN))
        .col_expr(url::Column::HealthBrokenSince, Expr::value(now))
        .filter(url::Column::Id.eq(id))
        .filter(url::Column::HealthCheck.eq(true))
        .filter(url::Column::HealthStatus.ne(BROKEN))
        .filter(url::Column::HealthFailures.gte(i64::from(threshold)))
        .exec(db)
        .await?;
    Ok(())
}

/// The ids of every active link with checks on, in id order.
pub async fn checked_links(db: &DatabaseConnection) -> Result<Vec<i64>, DbErr> {
    url::Entity::find()
        .select_only()
        .column(url::Column::Id)
        .filter(url::Column::HealthCheck.eq(true))
        .filter(url::Column::IsActive.eq(true))
        .order_by_asc(url::Column::Id)
        .into_tuple()
        .all(db)
        .await
}

/// The embedded default's schedule: every `every`, every link with checks on is checked in
/// process (the first pass one period after start-up). Ends when `alerts` is dropped.
pub async fn run_forever<A: AlertSender + 'static>(
    checker: Checker,
    db: DatabaseConnection,
    cache: std::sync::Arc<Cache>,
    alerts: std::sync::Weak<A>,
    every: Duration,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(alerts) = alerts.upgrade() else {
            return;
        };
        let ids = match checked_links(&db).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "listing links to health-check failed");
                continue;
            }
        };
        for batch in ids.chunks(BATCH) {
            if let Err(e) = checker
                .check_links(&db, &cache, alerts.as_ref(), batch)
                .await
            {
                tracing::warn!(error = %e, "link health checks failed; next pass retries");
            }
        }
    }
}
