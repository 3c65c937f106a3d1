//! Writing: [`run_once`] takes the marked closed hours and rolls them up, group by group.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDateTime;
use entity::rollup::pending;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::recompute::{recompute_day, recompute_hour};
use super::{begin_exclusive, day_floor, hour_floor};

/// (link, hour) pairs recomputed per transaction.
const PAIRS_PER_TRANSACTION: u64 = 500;
/// Ids per `IN (...)` list (SQLite allows 32,766 bind parameters).
pub(super) const IDS_PER_STATEMENT: usize = 5_000;

/// What one [`run_once`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RollupReport {
    /// (link, hour) pairs recomputed.
    pub hours: u64,
    /// (link, day) pairs recomputed.
    pub days: u64,
    /// Marks consumed.
    pub marks: u64,
}

/// Rolls up every marked hour before `now`'s hour. Safe to run concurrently from several
/// processes (they take turns) and any number of times.
pub async fn run_once(db: &DatabaseConnection, now: NaiveDateTime) -> Result<RollupReport, DbErr> {
    let open = hour_floor(now);
    let mut report = RollupReport::default();
    loop {
        let pairs: Vec<(i64, NaiveDateTime)> = pending::Entity::find()
            .select_only()
            .column(pending::Column::UrlId)
            .column(pending::Column::Hour)
            .filter(pending::Column::Hour.lt(open))
            .filter(pending::Column::UrlId.is_not_null())
            .group_by(pending::Column::UrlId)
            .group_by(pending::Column::Hour)
            .order_by_asc(pending::Column::Hour)
            .limit(PAIRS_PER_TRANSACTION)
            .into_tuple()
            .all(db)
            .await?;
        if pairs.is_empty() {
            return Ok(report);
        }
        let step = roll_pairs(db, &pairs).await?;
        report.hours += step.hours;
        report.days += step.days;
        report.marks += step.marks;
    }
}

async fn roll_pairs(
    db: &DatabaseConnection,
    pairs: &[(i64, NaiveDateTime)],
) -> Result<RollupReport, DbErr> {
    let txn = begin_exclusive(db, None).await?;
    let mut by_hour: BTreeMap<NaiveDateTime, BTreeSet<i64>> = BTreeMap::new();
    for (url, hour) in pairs {
        by_hour.entry(*hour).or_default().insert(*url);
    }
    // The marks first, then the events: every event whose mark is read here is seen below.
    let mut ids = Vec::new();
    for (hour, urls) in &by_hour {
        ids.extend(
            pending::Entity::find()
                .select_only()
                .column(pending::Column::Id)
                .filter(pending::Column::Hour.eq(*hour))
                .filter(pending::Column::UrlId.is_in(urls.iter().copied()))
                .into_tuple::<i64>()
                .all(&txn)
                .await?,
        );
    }
    let mut days: BTreeMap<NaiveDateTime, BTreeSet<i64>> = BTreeMap::new();
    for (hour, urls) in &by_hour {
        recompute_hour(&txn, *hour, urls).await?;
        days.entry(day_floor(*hour))
            .or_default()
            .extend(urls.iter().copied());
    }
    let mut report = RollupReport {
        hours: pairs.len() as u64,
        marks: ids.len() as u64,
        ..RollupReport::default()
    };
    for (day, urls) in &days {
        recompute_day(&txn, *day, urls).await?;
        report.days += urls.len() as u64;
    }
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        pending::Entity::delete_many()
            .filter(pending::Column::Id.is_in(chunk.iter().copied()))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(report)
}
