//! Click capture: every redirect becomes one click with an id given at the edge, recorded
//! later as one `redirect` event. The api never writes clicks on the request path: it hands
//! them to a [`ClickRecorder`], whose writer task inserts them in multi-row batches with
//! `ON CONFLICT (click_id) DO NOTHING`, so a retried batch never counts a click twice.
//!
//! Clicks of links deleted before their batch is written are dropped and counted. A failing
//! database keeps the batch and retries it with back-off; clicks keep queueing in memory up to
//! [`QUEUE_CAPACITY`], beyond which they are counted as lost (never silently).

use std::collections::HashSet;
use std::time::Duration;

use chrono::NaiveDateTime;
use entity::{event, url};
use prometheus::IntCounter;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
};
use tokio::sync::{mpsc, oneshot};

use crate::cache::Cache;

const QUEUE_CAPACITY: usize = 100_000;
const BATCH_MAX: usize = 1_000;
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// One redirect served.
#[derive(Debug, Clone)]
pub struct Click {
    pub click_id: String,
    pub url_id: i64,
    pub short_code: String,
    pub at: NaiveDateTime,
    pub visitor_hash: String,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
}

enum Msg {
    Click(Click),
    Flush(oneshot::Sender<()>),
}

/// Counters of the click path.
#[derive(Clone)]
pub struct ClickMetrics {
    pub recorded: IntCounter,
    pub dropped_deleted: IntCounter,
    pub lost_overflow: IntCounter,
}

#[derive(Clone)]
pub struct ClickRecorder {
    tx: mpsc::Sender<Msg>,
    metrics: ClickMetrics,
}

impl ClickRecorder {
    /// Starts the writer task.
    pub fn start(
        db: DatabaseConnection,
        cache: std::sync::Arc<Cache>,
        metrics: ClickMetrics,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(writer(rx, db, cache, metrics.clone()));
        Self { tx, metrics }
    }

    /// Queues a click without waiting.
    pub fn record(&self, click: Click) {
        if self.tx.try_send(Msg::Click(click)).is_err() {
            self.metrics.lost_overflow.inc();
            tracing::error!("click queue full: click lost");
        }
    }

    /// Waits until every click queued before this call is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn writer(
    mut rx: mpsc::Receiver<Msg>,
    db: DatabaseConnection,
    cache: std::sync::Arc<Cache>,
    metrics: ClickMetrics,
) {
    let mut batch: Vec<Click> = Vec::with_capacity(BATCH_MAX);
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        let mut msg = Some(first);
        loop {
            match msg.take() {
                Some(Msg::Click(c)) => batch.push(c),
                Some(Msg::Flush(w)) => {
                    waiters.push(w);
                    break;
                }
                None => {}
            }
            if batch.len() >= BATCH_MAX {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => msg = Some(m),
                Ok(None) | Err(_) => break,
            }
        }
        let mut backoff = Duration::from_millis(100);
        while !batch.is_empty() {
            match write_batch(&db, &batch).await {
                Ok((written, dropped)) => {
                    metrics.recorded.inc_by(written);
                    metrics.dropped_deleted.inc_by(dropped);
                    let mut ids: Vec<i64> = batch.iter().map(|c| c.url_id).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    cache.invalidate_analytics(&ids).await;
                    batch.clear();
                }
                Err(e) => {
                    tracing::warn!(error = %e, clicks = batch.len(), "click batch failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// Inserts the clicks of links that still exist; returns (inserted, dropped as deleted).
async fn write_batch(
    db: &DatabaseConnection,
    batch: &[Click],
) -> Result<(u64, u64), sea_orm::DbErr> {
    let mut ids: Vec<i64> = batch.iter().map(|c| c.url_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let live: HashSet<i64> = url::Entity::find()
        .select_only()
        .column(url::Column::Id)
        .filter(url::Column::Id.is_in(ids))
        .into_tuple()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let rows: Vec<event::ActiveModel> = batch
        .iter()
        .filter(|c| live.contains(&c.url_id))
        .map(|c| event::ActiveModel {
            url_id: Set(Some(c.url_id)),
            user_id: Set(None),
            event_type: Set("redirect".to_owned()),
            timestamp: Set(c.at),
            details: Set(Some(serde_json::json!({ "short_code": c.short_code }))),
            click_id: Set(Some(c.click_id.clone())),
            visitor_hash: Set(Some(c.visitor_hash.clone())),
            user_agent: Set(c.user_agent.clone()),
            referrer: Set(c.referrer.clone()),
            ..Default::default()
        })
        .collect();
    let dropped = (batch.len() - rows.len()) as u64;
    if rows.is_empty() {
        return Ok((0, dropped));
    }
    let result = event::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(event::Column::ClickId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok((result, dropped))
}
