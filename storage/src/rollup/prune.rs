//! Retention of the raw redirect events once rolled up.

use chrono::NaiveDateTime;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr};

use super::begin_exclusive;

/// Retention: deletes the raw `redirect` events before `cutoff` whose hour is rolled up (no
/// mark), flagging their hourly rows so that a late event of such an hour is added to the row
/// instead of recomputing it from what is left. Both statements see one snapshot, so an event
/// and its mark committed meanwhile are either both seen (kept: its hour is marked) or neither
/// (kept). Returns the events deleted.
pub async fn prune(db: &DatabaseConnection, cutoff: NaiveDateTime) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let txn = begin_exclusive(db, Some(sea_orm::IsolationLevel::RepeatableRead)).await?;
    let (hour_of_event, param) = if backend == DatabaseBackend::Postgres {
        ("date_trunc('hour', e.timestamp)", "$1")
    } else {
        ("strftime('%Y-%m-%d %H:00:00', e.timestamp)", "?")
    };
    let flag = format!(
        "UPDATE event_rollups_hourly SET raw_pruned = TRUE \
         WHERE event_type = 'redirect' AND NOT raw_pruned AND hour < {param} \
         AND NOT EXISTS (SELECT 1 FROM rollup_pending p \
                         WHERE p.url_id = event_rollups_hourly.url_id AND p.hour = event_rollups_hourly.hour)"
    );
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        backend,
        flag,
        [cutoff.into()],
    ))
    .await?;
    let delete = format!(
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e \
         WHERE e.event_type = 'redirect' AND e.url_id IS NOT NULL AND e.timestamp < {param} \
         AND NOT EXISTS (SELECT 1 FROM rollup_pending p \
                         WHERE p.url_id = e.url_id AND p.hour = {hour_of_event}))"
    );
    let deleted = txn
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            delete,
            [cutoff.into()],
        ))
        .await?
        .rows_affected();
    txn.commit().await?;
    Ok(deleted)
}
