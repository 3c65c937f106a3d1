//! The deliveries' life: claimed by the relay, marked delivered or failed (then due again
//! after a back-off, or dead past the last attempt), listed, and replayed from dead.

use chrono::NaiveDateTime;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult};

use super::{DELIVERIES, Webhook, get};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    /// Answered 2xx.
    Delivered,
    /// Failed its last attempt; waits for a replay.
    Dead,
}

impl DeliveryState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }
}

/// One delivery row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event: String,
    /// The event's `data`, JSON text.
    pub payload: String,
    pub state: DeliveryState,
    pub attempts: i32,
    /// How often the relay claimed it.
    pub claims: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
}

const COLUMNS: [&str; 12] = [
    "id",
    "webhook_id",
    "event",
    "payload",
    "state",
    "attempts",
    "claims",
    "next_attempt_at",
    "last_status",
    "last_error",
    "created_at",
    "delivered_at",
];

impl Delivery {
    fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        let state: String = row.try_get("", "state")?;
        Ok(Self {
            id: row.try_get("", "id")?,
            webhook_id: row.try_get("", "webhook_id")?,
            event: row.try_get("", "event")?,
            payload: row.try_get("", "payload")?,
            state: DeliveryState::parse(&state)
                .ok_or_else(|| DbErr::Custom(format!("unknown delivery state {state}")))?,
            attempts: row.try_get("", "attempts")?,
            claims: row.try_get("", "claims")?,
            next_attempt_at: row.try_get("", "next_attempt_at")?,
            last_status: row.try_get("", "last_status")?,
            last_error: row.try_get("", "last_error")?,
            created_at: row.try_get("", "created_at")?,
            delivered_at: row.try_get("", "delivered_at")?,
        })
    }
}

/// The newest `limit` deliveries of a webhook, in `state` if given, newest first.
pub async fn deliveries(
    db: &DatabaseConnection,
    webhook_id: i64,
    state: Option<DeliveryState>,
    limit: u64,
) -> Result<Vec<Delivery>, DbErr> {
    let mut select = Query::select()
        .columns(COLUMNS)
        .from(DELIVERIES)
        .and_where(Expr::col("webhook_id").eq(webhook_id))
        .order_by("id", sea_orm::Order::Desc)
        .limit(limit)
        .to_owned();
    if let Some(state) = state {
        select.and_where(Expr::col("state").eq(state.as_str()));
    }
    db.query_all(&select)
        .await?
        .iter()
        .map(Delivery::from_row)
        .collect()
}

/// Claims up to `limit` pending deliveries due at `now`: each claimed row's next attempt moves
/// to `now + lease` and its claim count goes up by one, in one conditional update per row, so
/// a concurrent relay's claim of the same row changes nothing. Returns (id, claim) pairs.
pub async fn claim_due(
    db: &DatabaseConnection,
    now: NaiveDateTime,
    lease: chrono::Duration,
    limit: u64,
) -> Result<Vec<(i64, i32)>, DbErr> {
    let select = Query::select()
        .columns(["id", "claims"])
        .from(DELIVERIES)
        .and_where(Expr::col("state").eq(DeliveryState::Pending.as_str()))
        .and_where(Expr::col("next_attempt_at").lte(now))
        .order_by("next_attempt_at", sea_orm::Order::Asc)
        .limit(limit)
        .to_owned();
    let mut claimed = Vec::new();
    for row in db.query_all(&select).await? {
        let id: i64 = row.try_get("", "id")?;
        let claims: i32 = row.try_get("", "claims")?;
        let claim = Query::update()
            .table(DELIVERIES)
            .value("next_attempt_at", now + lease)
            .value("claims", claims + 1)
            .and_where(Expr::col("id").eq(id))
            .and_where(Expr::col("state").eq(DeliveryState::Pending.as_str()))
            .and_where(Expr::col("claims").eq(claims))
            .and_where(Expr::col("next_attempt_at").lte(now))
            .to_owned();
        if db.execute(&claim).await?.rows_affected() == 1 {
            claimed.push((id, claims + 1));
        }
    }
    Ok(claimed)
}

/// Gives a claimed row back at once (its job could not be enqueued).
pub async fn release(db: &DatabaseConnection, id: i64, now: NaiveDateTime) -> Result<(), DbErr> {
    let update = Query::update()
        .table(DELIVERIES)
        .value("next_attempt_at", now)
        .and_where(Expr::col("id").eq(id))
        .and_where(Expr::col("state").eq(DeliveryState::Pending.as_str()))
        .to_owned();
    db.execute(&update).await.map(|_| ())
}

/// A pending delivery with its webhook; `None` when it was delivered, is dead, was claimed
/// again since `claim` (when given), or its webhook was deleted (nothing to send).
pub async fn load_pending(
    db: &DatabaseConnection,
    id: i64,
    claim: Option<i32>,
) -> Result<Option<(Delivery, Webhook)>, DbErr> {
    let select = Query::select()
        .columns(COLUMNS)
        .from(DELIVERIES)
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    let Some(row) = db.query_one(&select).await? else {
        return Ok(None);
    };
    let delivery = Delivery::from_row(&row)?;
    if delivery.state != DeliveryState::Pending || claim.is_some_and(|c| c != delivery.claims) {
        return Ok(None);
    }
    Ok(get(db, delivery.webhook_id).await?.map(|w| (delivery, w)))
}

/// Marks `delivery` (as read, with its attempts) delivered; false if another run already
/// changed it.
pub async fn mark_delivered(
    db: &DatabaseConnection,
    delivery: &Delivery,
    status: u16,
    now: NaiveDateTime,
) -> Result<bool, DbErr> {
    let update = Query::update()
        .table(DELIVERIES)
        .value("state", DeliveryState::Delivered.as_str())
        .value("attempts", delivery.attempts + 1)
        .value("last_status", i32::from(status))
        .value("last_error", Option::<String>::None)
        .value("delivered_at", now)
        .and_where(Expr::col("id").eq(delivery.id))
        .and_where(Expr::col("state").eq(DeliveryState::Pending.as_str()))
        .and_where(Expr::col("attempts").eq(delivery.attempts))
        .to_owned();
    Ok(db.execute(&update).await?.rows_affected() == 1)
}

/// What a failed attempt got.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The HTTP status, if the subscriber answered.
    pub status: Option<u16>,
    pub error: String,
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered 2xx, recorded.
    Delivered,
    /// Due again at this time.
    Retry(NaiveDateTime),
    /// That was its last attempt.
    Dead,
    /// Another run changed the row first; nothing was written.
    Stale,
}

/// Records a failed attempt of `delivery` (as read): due again after `base * 2^(attempts-1)`
/// (at most an hour), or dead once it has had `max_attempts`.
pub async fn mark_failed(
    db: &DatabaseConnection,
    delivery: &Delivery,
    failure: &Failure,
    now: NaiveDateTime,
    base: chrono::Duration,
    max_attempts: u32,
) -> Result<Outcome, DbErr> {
    let attempts = delivery.attempts + 1;
    let outcome = if attempts as u32 >= max_attempts {
        Outcome::Dead
    } else {
        let factor = 1i32 << (attempts - 1).clamp(0, 20);
        let delay = (base * factor).min(chrono::Duration::hours(1));
        Outcome::Retry(now + delay)
    };
    let (state, next) = match outcome {
        Outcome::Retry(at) => (DeliveryState::Pending, at),
        _ => (DeliveryState::Dead, now),
    };
    let error: String = failure.error.chars().take(1000).collect();
    let update = Query::update()
        .table(DELIVERIES)
        .value("state", state.as_str())
        .value("attempts", attempts)
        .value("next_attempt_at", next)
        .value("last_status", failure.status.map(i32::from))
        .value("last_error", error)
        .and_where(Expr::col("id").eq(delivery.id))
        .and_where(Expr::col("state").eq(DeliveryState::Pending.as_str()))
        .and_where(Expr::col("attempts").eq(delivery.attempts))
        .to_owned();
    if db.execute(&update).await?.rows_affected() == 1 {
        Ok(outcome)
    } else {
        Ok(Outcome::Stale)
    }
}

/// Makes dead deliveries pending again (attempts 0, due now): all of them, one webhook's, or
/// one delivery. Returns how many.
pub async fn replay(
    db: &DatabaseConnection,
    webhook_id: Option<i64>,
    delivery_id: Option<i64>,
    now: NaiveDateTime,
) -> Result<u64, DbErr> {
    let mut update = Query::update()
        .table(DELIVERIES)
        .value("state", DeliveryState::Pending.as_str())
        .value("attempts", 0)
        .value("next_attempt_at", now)
        .and_where(Expr::col("state").eq(DeliveryState::Dead.as_str()))
        .to_owned();
    if let Some(id) = webhook_id {
        update.and_where(Expr::col("webhook_id").eq(id));
    }
    if let Some(id) = delivery_id {
        update.and_where(Expr::col("id").eq(id));
    }
    Ok(db.execute(&update).await?.rows_affected())
}

/// Deletes deliveries delivered before `before`; returns how many.
pub async fn prune_delivered(db: &DatabaseConnection, before: NaiveDateTime) -> Result<u64, DbErr> {
    let delete = Query::delete()
        .from_table(DELIVERIES)
        .and_where(Expr::col("state").eq(DeliveryState::Delivered.as_str()))
        .and_where(Expr::col("delivered_at").lt(before))
        .to_owned();
    Ok(db.execute(&delete).await?.rows_affected())
}
