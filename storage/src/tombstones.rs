//! Deleting a link deletes its real-time counters, as a job queued in the database: the
//! link's delete transaction writes its code to `counter_tombstones`, and [`run_forever`] (in
//! the worker, or in the api in the embedded default) deletes the code's counters on every
//! shard and then the row. A shard that cannot be reached leaves the row for the next pass, so
//! a delete never leaves counters behind for good and never waits for a shard.
//!
//! A queue in the database rather than one more apalis family: the row commits with the
//! delete itself (an enqueue after the commit could be lost to a crash in between), and the
//! job is a few key deletions that need no queue of their own.

use std::time::Duration;

use chrono::NaiveDateTime;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

use crate::counters::Counters;

const TABLE: &str = "counter_tombstones";
/// Tombstones handled per pass.
const PER_PASS: u64 = 500;

/// Queues the deletion of `code`'s counters (call inside the link's delete transaction).
pub async fn bury<C: ConnectionTrait>(db: &C, code: &str, at: NaiveDateTime) -> Result<(), DbErr> {
    let insert = Query::insert()
        .into_table(TABLE)
        .columns(["short_code", "deleted_at"])
        .values_panic([code.into(), at.into()])
        .to_owned();
    db.execute(&insert).await.map(|_| ())
}

/// One pass: deletes the counters of up to 500 buried codes; returns how many were done.
pub async fn process(
    db: &DatabaseConnection,
    counters: &Counters,
    now: NaiveDateTime,
) -> Result<u64, DbErr> {
    let select = Query::select()
        .columns(["id", "short_code"])
        .from(TABLE)
        .order_by("id", sea_orm::Order::Asc)
        .limit(PER_PASS)
        .to_owned();
    let mut done = Vec::new();
    for row in db.query_all(&select).await? {
        let id: i64 = row.try_get("", "id")?;
        let code: String = row.try_get("", "short_code")?;
        match counters.forget(&code, now).await {
            Ok(()) => done.push(id),
            Err(e) => {
                tracing::warn!(code = %code, error = %e, "deleting a deleted link's counters failed; retried next pass");
            }
        }
    }
    if !done.is_empty() {
        let delete = Query::delete()
            .from_table(TABLE)
            .and_where(Expr::col("id").is_in(done.iter().copied()))
            .to_owned();
        db.execute(&delete).await?;
    }
    Ok(done.len() as u64)
}

/// Runs [`process`] every `every` for the life of the process.
pub async fn run_forever(
    db: DatabaseConnection,
    counters: std::sync::Arc<Counters>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match process(&db, &counters, chrono::Utc::now().naive_utc()).await {
            Ok(n) if n > 0 => tracing::debug!(codes = n, "deleted links' counters removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "counter tombstones pass failed"),
        }
    }
}
