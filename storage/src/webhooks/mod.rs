//! Webhooks in the database: subscriptions (`webhooks`) and the durable outbox of their
//! deliveries (`webhook_deliveries`).
//!
//! Rules: a link event's delivery rows are written in the link's own transaction
//! ([`record_link_event`]), a click batch's in its ingestion, keyed on the batch
//! ([`record_click_batches`]): so an event is never lost between a commit and an enqueue, and
//! a batch ingested twice makes one delivery. The relay takes due rows with an atomic claim
//! ([`claim_due`]: the row's next attempt is pushed one lease ahead, so two relays never take
//! the same row together, and a job lost after its claim comes due again once the lease ends).
//! State changes are conditional on the row still being pending with the attempts the caller
//! read, so a retried or duplicated job changes nothing twice.

mod deliveries;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, TransactionTrait};
use serde_json::Value;

pub use deliveries::{
    Delivery, DeliveryState, Failure, Outcome, claim_due, deliveries, load_pending, mark_delivered,
    mark_failed, prune_delivered, release, replay,
};

const WEBHOOKS: &str = "webhooks";
const DELIVERIES: &str = "webhook_deliveries";

/// The events a webhook may subscribe to.
pub const EVENTS: [&str; 4] = [LINK_CREATED, LINK_UPDATED, LINK_DELETED, LINK_CLICKED];
pub const LINK_CREATED: &str = "link.created";
pub const LINK_UPDATED: &str = "link.updated";
pub const LINK_DELETED: &str = "link.deleted";
pub const LINK_CLICKED: &str = "link.clicked";

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub created_at: NaiveDateTime,
}

impl Webhook {
    fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        let events: String = row.try_get("", "events")?;
        Ok(Self {
            id: row.try_get("", "id")?,
            url: row.try_get("", "url")?,
            events: events.split(',').map(str::to_owned).collect(),
            secret: row.try_get("", "secret")?,
            created_at: row.try_get("", "created_at")?,
        })
    }
}

const COLUMNS: [&str; 5] = ["id", "url", "events", "secret", "created_at"];

/// A new secret: 32 random bytes, hex.
#[must_use]
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Stores a subscription (`events` already validated, each once).
pub async fn create(
    db: &DatabaseConnection,
    url: &str,
    events: &[String],
    secret: &str,
    at: NaiveDateTime,
) -> Result<Webhook, DbErr> {
    let insert = Query::insert()
        .into_table(WEBHOOKS)
        .columns(["url", "events", "secret", "created_at"])
        .values_panic([
            url.into(),
            events.join(",").into(),
            secret.into(),
            at.into(),
        ])
        .returning(Query::returning().columns(COLUMNS))
        .to_owned();
    let row = db
        .query_one(&insert)
        .await?
        .ok_or_else(|| DbErr::Custom("insert returned no row".into()))?;
    Webhook::from_row(&row)
}

/// Every subscription, by id.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<Webhook>, DbErr> {
    let select = Query::select()
        .columns(COLUMNS)
        .from(WEBHOOKS)
        .order_by("id", sea_orm::Order::Asc)
        .to_owned();
    db.query_all(&select)
        .await?
        .iter()
        .map(Webhook::from_row)
        .collect()
}

/// One subscription.
pub async fn get(db: &impl ConnectionTrait, id: i64) -> Result<Option<Webhook>, DbErr> {
    let select = Query::select()
        .columns(COLUMNS)
        .from(WEBHOOKS)
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    db.query_one(&select)
        .await?
        .as_ref()
        .map(Webhook::from_row)
        .transpose()
}

/// Deletes a subscription and its deliveries (pending ones are not sent); whether it existed.
pub async fn delete(db: &DatabaseConnection, id: i64) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let rows = Query::delete()
        .from_table(DELIVERIES)
        .and_where(Expr::col("webhook_id").eq(id))
        .to_owned();
    txn.execute(&rows).await?;
    let hook = Query::delete()
        .from_table(WEBHOOKS)
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    let deleted = txn.execute(&hook).await?.rows_affected();
    txn.commit().await?;
    Ok(deleted > 0)
}

/// Ids of the subscriptions to `event`.
async fn subscribers(db: &impl ConnectionTrait, event: &str) -> Result<Vec<i64>, DbErr> {
    let select = Query::select()
        .columns(["id", "events"])
        .from(WEBHOOKS)
        .order_by("id", sea_orm::Order::Asc)
        .to_owned();
    let mut ids = Vec::new();
    for row in db.query_all(&select).await? {
        let events: String = row.try_get("", "events")?;
        if events.split(',').any(|e| e == event) {
            ids.push(row.try_get("", "id")?);
        }
    }
    Ok(ids)
}

/// One pending row per (subscriber, payload), rows whose (webhook, dedup key) exist skipped.
async fn insert_pending(
    db: &impl ConnectionTrait,
    event: &str,
    rows: &[(i64, String, String)],
    at: NaiveDateTime,
) -> Result<u64, DbErr> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut insert = Query::insert()
        .into_table(DELIVERIES)
        .columns([
            "webhook_id",
            "event",
            "payload",
            "state",
            "attempts",
            "claims",
            "next_attempt_at",
            "dedup_key",
            "created_at",
        ])
        .on_conflict(
            OnConflict::columns(["webhook_id", "dedup_key"])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    for (webhook, key, payload) in rows {
        insert.values_panic([
            (*webhook).into(),
            event.into(),
            payload.clone().into(),
            DeliveryState::Pending.as_str().into(),
            0i32.into(),
            0i32.into(),
            at.into(),
            key.clone().into(),
            at.into(),
        ]);
    }
    Ok(db.execute(&insert).await?.rows_affected())
}

/// Writes a delivery of `event` (`data` as its payload) for every subscriber of it. Call it
/// inside the transaction of the change it reports.
pub async fn record_link_event<C: ConnectionTrait>(
    txn: &C,
    event: &str,
    data: &Value,
    at: NaiveDateTime,
) -> Result<u64, DbErr> {
    let hooks = subscribers(txn, event).await?;
    if hooks.is_empty() {
        return Ok(0);
    }
    let payload = data.to_string();
    let key = uuid::Uuid::new_v4().simple().to_string();
    let rows: Vec<(i64, String, String)> = hooks
        .into_iter()
        .map(|h| (h, key.clone(), payload.clone()))
        .collect();
    insert_pending(txn, event, &rows, at).await
}

/// The subscribers of `link.clicked`, read at most every `ttl` (ingestion asks for every
/// group of click batches: with no subscriber it costs a lock, not a query).
pub struct ClickHooks {
    ttl: Duration,
    cached: Mutex<Option<(Instant, Arc<[i64]>)>>,
}

impl ClickHooks {
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            cached: Mutex::new(None),
        }
    }

    /// Forgets the cached list (this process changed the subscriptions).
    pub fn invalidate(&self) {
        if let Ok(mut cached) = self.cached.lock() {
            *cached = None;
        }
    }

    async fn subscribers(&self, db: &impl ConnectionTrait) -> Result<Arc<[i64]>, DbErr> {
        if let Ok(cached) = self.cached.lock()
            && let Some((at, ids)) = cached.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(ids.clone());
        }
        let ids: Arc<[i64]> = subscribers(db, LINK_CLICKED).await?.into();
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((Instant::now(), ids.clone()));
        }
        Ok(ids)
    }
}

impl Default for ClickHooks {
    /// A subscription to `link.clicked` applies to batches ingested from 2 s after it is made.
    fn default() -> Self {
        Self::new(Duration::from_secs(2))
    }
}

/// One `link.clicked` delivery per subscriber and batch (its clicks: id, link, code, time,
/// bot flag; never the visitor hash), keyed on the batch: a batch recorded again adds nothing.
/// Without a subscriber it reads nothing (see [`ClickHooks`]).
pub async fn record_click_batches(
    db: &impl ConnectionTrait,
    hooks: &ClickHooks,
    batches: &[(&str, &[jobs::Click])],
    at: NaiveDateTime,
) -> Result<u64, DbErr> {
    if batches.iter().all(|(_, clicks)| clicks.is_empty()) {
        return Ok(0);
    }
    let subscribers = hooks.subscribers(db).await?;
    if subscribers.is_empty() {
        return Ok(0);
    }
    let mut rows = Vec::new();
    for (batch, clicks) in batches.iter().filter(|(_, c)| !c.is_empty()) {
        let clicks: Vec<Value> = clicks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.click_id,
                    "url_id": c.url_id,
                    "short_code": c.short_code,
                    "at": c.at.format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "is_bot": crate::ingest::is_bot(c),
                })
            })
            .collect();
        let payload = serde_json::json!({ "batch_id": batch, "clicks": clicks }).to_string();
        for hook in subscribers.iter() {
            rows.push((*hook, format!("batch:{batch}"), payload.clone()));
        }
    }
    insert_pending(db, LINK_CLICKED, &rows, at).await
}
