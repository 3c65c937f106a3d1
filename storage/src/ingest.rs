//! Click ingestion: one batch becomes `redirect` events (one multi-row insert, click ids
//! already present skipped) plus the real-time counters, then the analytics cache of the links
//! it touched is invalidated (never the redirect cache). Clicks of links deleted meanwhile are
//! dropped and reported, not retried. Safe to run any number of times for the same batch.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use chrono::Timelike;
use entity::{event, url};
use jobs::{Click, ClickBatch};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, QueryFilter, QuerySelect, Statement, TransactionTrait,
};

use crate::cache::Cache;
use crate::counters::{CounterError, Counters, Delivery};
use crate::webhooks::{self, ClickHooks};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("counters: {0}")]
    Counters(#[from] CounterError),
}

/// What one ingestion did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestReport {
    /// Events inserted now (clicks already present are not counted again).
    pub inserted: u64,
    /// Clicks dropped because their link no longer exists.
    pub dropped_deleted: u64,
}

/// Known bots' user agents: the `isbot` crate's list (the patterns of the `isbot` npm package,
/// kept up to date there), compiled once into one regex.
static BOTS: LazyLock<isbot::Bots> = LazyLock::new(isbot::Bots::default);

/// Whether a click is a bot's: a HEAD request, or a user agent on the bot list. A click
/// without a user agent is not flagged (as the `isbot` package decides).
#[must_use]
pub fn is_bot(c: &Click) -> bool {
    c.head || c.user_agent.as_deref().is_some_and(|ua| BOTS.is_bot(ua))
}

fn row(c: &Click, batch_id: &str) -> event::ActiveModel {
    event::ActiveModel {
        url_id: Set(Some(c.url_id)),
        user_id: Set(None),
        event_type: Set("redirect".to_owned()),
        // Events show whole seconds; the click keeps its precise time for lag measurements.
        timestamp: Set(c.at.with_nanosecond(0).unwrap_or(c.at)),
        details: Set(Some(serde_json::json!({ "short_code": c.short_code }))),
        click_id: Set(Some(c.click_id.clone())),
        visitor_hash: Set(Some(c.visitor_hash.clone())),
        user_agent: Set(c.user_agent.clone()),
        referrer: Set(c.referrer.clone()),
        batch_id: Set(Some(batch_id.to_owned())),
        is_bot: Set(is_bot(c)),
        ..Default::default()
    }
}

/// The same insert on PostgreSQL as one statement with one parameter: the clicks as a JSON
/// array, expanded by `json_to_recordset`. Binding 10 parameters per row (50,000 for a chunk)
/// cost more than the insert itself; one text parameter parses in a fraction of that.
async fn insert_postgres(
    db: &impl ConnectionTrait,
    chunk: &[(&str, &Click)],
) -> Result<u64, DbErr> {
    /// One click as `json_to_recordset` reads it (serialised straight to text, borrowed).
    #[derive(serde::Serialize)]
    struct Rec<'a> {
        u: i64,
        t: String,
        c: &'a str,
        k: &'a str,
        v: &'a str,
        a: Option<&'a str>,
        r: Option<&'a str>,
        b: &'a str,
        z: bool,
    }
    let rows: Vec<Rec<'_>> = chunk
        .iter()
        .map(|(batch, c)| Rec {
            u: c.url_id,
            t: c.at.format("%Y-%m-%dT%H:%M:%S").to_string(),
            c: &c.short_code,
            k: &c.click_id,
            v: &c.visitor_hash,
            a: c.user_agent.as_deref(),
            r: c.referrer.as_deref(),
            b: batch,
            z: is_bot(c),
        })
        .collect();
    let json = serde_json::to_string(&rows).map_err(|e| DbErr::Custom(e.to_string()))?;
    let stmt = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO events \
         (url_id, user_id, event_type, timestamp, details, click_id, visitor_hash, user_agent, referrer, batch_id, is_bot) \
         SELECT u, NULL, 'redirect', t, jsonb_build_object('short_code', c), k, v, a, r, b, z \
         FROM json_to_recordset($1::json) \
         AS x(u bigint, t timestamp, c text, k text, v text, a text, r text, b text, z boolean) \
         ON CONFLICT (click_id) DO NOTHING",
        [json.into()],
    );
    Ok(db.execute_raw(stmt).await?.rows_affected())
}

/// Rows per INSERT statement (SQLite binds 10 parameters a row; PostgreSQL one JSON text).
const ROWS_PER_STATEMENT: usize = 5_000;

/// One multi-row insert of (batch id, click) rows, clicks already stored skipped.
async fn insert_chunk(db: &impl ConnectionTrait, chunk: &[(&str, &Click)]) -> Result<u64, DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        insert_postgres(db, chunk).await
    } else {
        event::Entity::insert_many(chunk.iter().map(|(batch, c)| row(c, batch)))
            .on_conflict(
                OnConflict::column(event::Column::ClickId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await
    }
}

/// Ingests one batch: [`ingest_many`] of one.
pub async fn ingest(
    db: &DatabaseConnection,
    counters: &Counters,
    cache: &Cache,
    hooks: Option<&ClickHooks>,
    batch: &ClickBatch,
) -> Result<IngestReport, IngestError> {
    ingest_many(db, counters, cache, hooks, std::slice::from_ref(batch)).await
}

/// Ingests several batches as one: one live-link query, their events in one statement (one
/// transaction past 5,000 rows: a batch is never half stored, so a counter rebuild reading the
/// events sees all of a batch or none of it), one counter update per shard carrying each
/// batch's own idempotency marker, one cache invalidation. Each batch still counts once however often it is applied, alone or
/// together with others. With `hooks`, each batch's live clicks also become one `link.clicked`
/// webhook delivery per subscriber, keyed on the batch (written before the counters, so a
/// failure after it retries the batch and the delivery is not written twice).
pub async fn ingest_many(
    db: &DatabaseConnection,
    counters: &Counters,
    cache: &Cache,
    hooks: Option<&ClickHooks>,
    batches: &[ClickBatch],
) -> Result<IngestReport, IngestError> {
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.clicks.iter().map(|c| c.url_id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let live: HashSet<i64> = url::Entity::find()
        .select_only()
        .column(url::Column::Id)
        .filter(url::Column::Id.is_in(ids.iter().copied()))
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    // Clicks of live links, borrowed unless a batch has one of a deleted link.
    let kept: Vec<(&str, Cow<'_, [Click]>)> = batches
        .iter()
        .map(|b| {
            let clicks = if b.clicks.iter().all(|c| live.contains(&c.url_id)) {
                Cow::Borrowed(b.clicks.as_slice())
            } else {
                Cow::Owned(
                    b.clicks
                        .iter()
                        .filter(|c| live.contains(&c.url_id))
                        .cloned()
                        .collect(),
                )
            };
            (b.batch_id.as_str(), clicks)
        })
        .collect();
    let total: usize = batches.iter().map(|b| b.clicks.len()).sum();
    let live_clicks: usize = kept.iter().map(|(_, c)| c.len()).sum();
    let dropped_deleted = (total - live_clicks) as u64;
    let rows: Vec<(&str, &Click)> = kept
        .iter()
        .flat_map(|(batch, clicks)| clicks.iter().map(move |c| (*batch, c)))
        .collect();
    let mut inserted = 0;
    if rows.len() <= ROWS_PER_STATEMENT {
        // One statement is atomic on its own: no BEGIN and COMMIT round trips.
        if !rows.is_empty() {
            inserted = insert_chunk(db, &rows).await?;
        }
    } else {
        let txn = db.begin().await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            inserted += insert_chunk(&txn, chunk).await?;
        }
        txn.commit().await?;
    }
    if let Some(hooks) = hooks
        && live_clicks > 0
    {
        let parts: Vec<(&str, &[Click])> = kept.iter().map(|(b, c)| (*b, c.as_ref())).collect();
        webhooks::record_click_batches(db, hooks, &parts, chrono::Utc::now().naive_utc()).await?;
    }
    if live_clicks > 0 {
        // Events come first, so if none of these clicks was stored before, no earlier run can
        // have reached the counters; otherwise the counters must check where it did.
        let delivery = if inserted == live_clicks as u64 {
            Delivery::First
        } else {
            Delivery::Again
        };
        let parts: Vec<(&str, &[Click])> = kept
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(b, c)| (*b, c.as_ref()))
            .collect();
        counters.apply_many(&parts, delivery).await?;
        let touched: Vec<i64> = ids.into_iter().filter(|id| live.contains(id)).collect();
        cache.invalidate_analytics(&touched).await;
    }
    Ok(IngestReport {
        inserted,
        dropped_deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(user_agent: Option<&str>, head: bool) -> Click {
        Click {
            click_id: "c".into(),
            url_id: 1,
            short_code: "abc123".into(),
            at: chrono::DateTime::UNIX_EPOCH.naive_utc(),
            visitor_hash: "v".into(),
            user_agent: user_agent.map(str::to_owned),
            referrer: None,
            head,
        }
    }

    #[test]
    fn bots_and_head_requests_are_flagged_browsers_are_not() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert!(is_bot(&click(
            Some("Googlebot/2.1 (+http://www.google.com/bot.html)"),
            false
        )));
        assert!(is_bot(&click(Some("curl/8.5.0"), false)));
        assert!(is_bot(&click(Some(chrome), true)));
        assert!(!is_bot(&click(Some(chrome), false)));
        assert!(!is_bot(&click(None, false)));
    }
}
