//! The rollup loop: its schedule, its retention, its metrics.

use chrono::{Duration, NaiveDateTime};
use sea_orm::{DatabaseConnection, DbErr};

use super::{RollupReport, day_floor, prune, run_once};

/// What the rollup loop exports.
#[derive(Clone)]
pub struct RollupMetrics {
    /// Unix time of the last run that finished without error.
    pub last_success: prometheus::IntGauge,
    runs: prometheus::IntCounterVec,
    /// (link, hour) pairs recomputed.
    pub hours: prometheus::IntCounter,
    /// Raw redirect events deleted by retention.
    pub pruned: prometheus::IntCounter,
}

impl Default for RollupMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RollupMetrics {
    /// Definitions are constants: a failure here is a programming error every test catches.
    #[must_use]
    pub fn new() -> Self {
        let runs = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "curtain_rollup_runs_total",
                "Analytics rollup runs by result (ok, error).",
            ),
            &["result"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        runs.with_label_values(&["ok"]);
        runs.with_label_values(&["error"]);
        Self {
            last_success: prometheus::IntGauge::new(
                "curtain_rollup_last_success_timestamp_seconds",
                "Unix time at which the last analytics rollup run succeeded (0: none yet).",
            )
            .unwrap_or_else(|e| panic!("{e}")),
            runs,
            hours: prometheus::IntCounter::new(
                "curtain_rollup_hours_total",
                "(link, hour) pairs recomputed by analytics rollups.",
            )
            .unwrap_or_else(|e| panic!("{e}")),
            pruned: prometheus::IntCounter::new(
                "curtain_rollup_pruned_events_total",
                "Raw redirect events deleted after their rollup (EVENT_RETENTION_DAYS).",
            )
            .unwrap_or_else(|e| panic!("{e}")),
        }
    }

    pub fn register(&self, registry: &prometheus::Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.last_success.clone()))?;
        registry.register(Box::new(self.runs.clone()))?;
        registry.register(Box::new(self.hours.clone()))?;
        registry.register(Box::new(self.pruned.clone()))
    }

    fn record(&self, result: &Result<(RollupReport, u64), DbErr>) {
        match result {
            Ok((report, pruned)) => {
                self.runs.with_label_values(&["ok"]).inc();
                self.hours.inc_by(report.hours);
                self.pruned.inc_by(*pruned);
                self.last_success.set(chrono::Utc::now().timestamp());
            }
            Err(_) => self.runs.with_label_values(&["error"]).inc(),
        }
    }
}

/// When rollups run and what they keep.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Between runs; zero: never.
    pub every: std::time::Duration,
    /// Raw redirect events older than this many days are deleted once rolled up.
    pub retention_days: Option<u32>,
}

impl Schedule {
    #[must_use]
    pub fn from_config(common: &crate::config::CommonArgs) -> Self {
        Self {
            every: std::time::Duration::from_secs(common.rollup_every_seconds),
            retention_days: common.event_retention_days,
        }
    }
}

/// One scheduled pass: roll up, then apply retention.
pub async fn run_scheduled(
    db: &DatabaseConnection,
    schedule: Schedule,
    now: NaiveDateTime,
) -> Result<(RollupReport, u64), DbErr> {
    let report = run_once(db, now).await?;
    let pruned = match schedule.retention_days {
        Some(days) => prune(db, day_floor(now) - Duration::days(i64::from(days))).await?,
        None => 0,
    };
    Ok((report, pruned))
}

/// Runs [`run_scheduled`] at start-up and then every `schedule.every`, for the life of the
/// process (never, if it is zero).
pub async fn run_forever(db: DatabaseConnection, schedule: Schedule, metrics: RollupMetrics) {
    if schedule.every.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(schedule.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = run_scheduled(&db, schedule, chrono::Utc::now().naive_utc()).await;
        metrics.record(&result);
        match result {
            Ok((report, pruned)) if report.hours > 0 || pruned > 0 => {
                tracing::info!(
                    hours = report.hours,
                    days = report.days,
                    marks = report.marks,
                    pruned,
                    "analytics rolled up"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "analytics rollup failed; retried next run"),
        }
    }
}
