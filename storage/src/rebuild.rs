//! Real-time counters rebuilt from the events table, the source of truth: every redirect is
//! one `redirect` event carrying its visitor hash, so the totals, hourly buckets and unique
//! visitors of every code can be recomputed from it. The embedded default keeps its counters in
//! process; it rebuilds them this way at start-up, so a restart shows the same real-time
//! figures as before it.

use futures_util::TryStreamExt;
use sea_orm::{DatabaseConnection, DbErr, Statement, StreamTrait};

use crate::counters::{Counters, MemoryCounters};

/// What a rebuild read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RebuildReport {
    pub clicks: u64,
    pub codes: u64,
}

/// Every redirect event's code, time, visitor hash and batch id: what the counters are rebuilt
/// from (the in-process ones here, the shards' in [`crate::counters::Counters::rebuild`]).
pub(crate) const REDIRECT_EVENTS: &str = "SELECT u.short_code, e.timestamp, e.visitor_hash, \
     e.batch_id FROM events e JOIN urls u ON u.id = e.url_id WHERE e.event_type = 'redirect'";

/// In-process counters holding every redirect event of `db`, read as a stream (memory grows
/// with codes, hours and visitors, not with events).
pub async fn memory_counters_from_events(
    db: &DatabaseConnection,
) -> Result<(Counters, RebuildReport), DbErr> {
    let counters = MemoryCounters::default();
    let stmt = Statement::from_string(db.get_database_backend(), REDIRECT_EVENTS);
    let mut rows = db.stream_raw(stmt).await?;
    let mut report = RebuildReport::default();
    while let Some(row) = rows.try_next().await? {
        let code: String = row.try_get_by_index(0)?;
        let at: chrono::NaiveDateTime = row.try_get_by_index(1)?;
        let visitor: Option<String> = row.try_get_by_index(2)?;
        if counters.add(&code, at, visitor.as_deref().unwrap_or_default()) {
            report.codes += 1;
        }
        report.clicks += 1;
    }
    Ok((Counters::Memory(counters), report))
}
