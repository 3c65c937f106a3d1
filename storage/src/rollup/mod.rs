//! Analytics rollups: events aggregated per link, event type and UTC hour (and day), so reading
//! a link's analytics costs the same whatever its number of clicks.
//!
//! **Writing.** A trigger on `events` marks every (link, hour) that gains events in
//! `rollup_pending`, in the inserting transaction. [`run_once`] takes marked closed hours, and
//! in one transaction per group reads the marks' ids, recomputes those hours from the events
//! (counts, newest time, a HyperLogLog sketch of the redirects' visitors), recomputes their
//! days from the hourly rows (sketches merged), and deletes exactly the marks it read. A mark
//! written meanwhile has events the recomputation may not have seen: it stays, and the next
//! run folds them in. Re-running an hour gives the same rows; late events (a spooled batch, an
//! import) mark their old hour and are folded in the same way.
//!
//! **Reading.** [`totals`] and [`series`] combine: daily rows before the earliest day still
//! pending, hourly rows up to the open hour, and the raw events of the open hour and of any
//! hour still marked. Marked hours are never read from rollups, so a row being rewritten is
//! never counted next to the raw events it summarises.

mod compute;
mod plan;
mod prune;
mod recompute;
mod schedule;
mod series;
mod totals;

use chrono::{NaiveDateTime, NaiveTime, Timelike};
use entity::event;
use sea_orm::sea_query::{Expr, Func, SimpleExpr};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    TransactionTrait,
};

pub use compute::{RollupReport, run_once};
pub use prune::prune;
pub use schedule::{RollupMetrics, Schedule, run_forever, run_scheduled};
pub use series::{Bots, Granularity, Point, series};
pub use totals::{TypeTotal, totals};

/// The advisory lock that makes one rollup run at a time across workers.
const ADVISORY_LOCK: i64 = 7_261_617;

const REDIRECT: &str = "redirect";

#[must_use]
pub fn hour_floor(t: NaiveDateTime) -> NaiveDateTime {
    t.date().and_hms_opt(t.hour(), 0, 0).unwrap_or(t)
}

#[must_use]
pub fn day_floor(t: NaiveDateTime) -> NaiveDateTime {
    t.date().and_time(NaiveTime::MIN)
}

/// A transaction that holds the rollup's exclusive lock: PostgreSQL's advisory lock (with
/// `isolation`), or SQLite's write lock taken first (a transaction that read and then writes
/// fails if another writer committed in between).
async fn begin_exclusive(
    db: &DatabaseConnection,
    isolation: Option<sea_orm::IsolationLevel>,
) -> Result<DatabaseTransaction, DbErr> {
    if db.get_database_backend() == DatabaseBackend::Postgres {
        let txn = db.begin_with_config(isolation, None).await?;
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({ADVISORY_LOCK})"))
            .await?;
        Ok(txn)
    } else {
        let txn = db.begin().await?;
        txn.execute_unprepared("UPDATE rollup_pending SET hour = hour WHERE 1 = 0")
            .await?;
        Ok(txn)
    }
}

fn count_star() -> SimpleExpr {
    Expr::expr(Func::count(Expr::col(event::Column::Id)))
}

/// The number of bots' events among those counted (`events.is_bot`), as a BIGINT.
fn count_bots() -> SimpleExpr {
    Expr::cust("CAST(SUM(CASE WHEN is_bot THEN 1 ELSE 0 END) AS BIGINT)")
}
