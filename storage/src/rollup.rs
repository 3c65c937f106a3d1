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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Duration, NaiveDateTime, NaiveTime, Timelike};
use entity::event;
use entity::rollup::{daily, hourly, pending};
use futures_util::TryStreamExt;
use sea_orm::sea_query::{Alias, Expr, Func, SimpleExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use crate::hll::Hll;

/// (link, hour) pairs recomputed per transaction.
const PAIRS_PER_TRANSACTION: u64 = 500;
/// Ids per `IN (...)` list (SQLite allows 32,766 bind parameters).
const IDS_PER_STATEMENT: usize = 5_000;
/// More marked hours than this for one link and reads fall back to the raw events.
const MAX_PENDING_HOURS_READ: u64 = 200;
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

/// One aggregated row before it is written.
#[derive(Debug, Default, Clone)]
struct Agg {
    events: i64,
    latest: Option<NaiveDateTime>,
    visitors: Option<Hll>,
}

impl Agg {
    fn add(&mut self, events: i64, latest: NaiveDateTime, visitors: Option<Hll>) {
        self.events += events;
        self.latest = self.latest.max(Some(latest));
        if let Some(v) = visitors {
            self.visitors.get_or_insert_with(Hll::new).merge(&v);
        }
    }

    fn sketch_columns(&self, event_type: &str) -> (i64, Option<Vec<u8>>) {
        match (&self.visitors, event_type) {
            (Some(v), _) => (v.estimate() as i64, Some(v.to_bytes())),
            (None, REDIRECT) => (0, Some(Hll::new().to_bytes())),
            (None, _) => (0, None),
        }
    }
}

async fn pruned_redirects(
    txn: &DatabaseTransaction,
    hour: NaiveDateTime,
    urls: &BTreeSet<i64>,
) -> Result<HashMap<i64, Agg>, DbErr> {
    let mut pruned = HashMap::new();
    for row in hourly::Entity::find()
        .filter(hourly::Column::Hour.eq(hour))
        .filter(hourly::Column::UrlId.is_in(urls.iter().copied()))
        .filter(hourly::Column::EventType.eq(REDIRECT))
        .filter(hourly::Column::RawPruned.eq(true))
        .all(txn)
        .await?
    {
        let mut agg = Agg::default();
        let sketch = row.visitors.as_deref().and_then(Hll::from_bytes);
        agg.add(row.events, row.latest_at, sketch);
        pruned.insert(row.url_id, agg);
    }
    Ok(pruned)
}

async fn recompute_hour(
    txn: &DatabaseTransaction,
    hour: NaiveDateTime,
    urls: &BTreeSet<i64>,
) -> Result<(), DbErr> {
    let end = hour + Duration::hours(1);
    let in_hour = || {
        sea_orm::Condition::all()
            .add(event::Column::UrlId.is_in(urls.iter().copied()))
            .add(event::Column::Timestamp.gte(hour))
            .add(event::Column::Timestamp.lt(end))
    };
    // Redirect rows whose raw events retention deleted: what is left raw are late events
    // not yet in them, added below and then deleted.
    let mut pruned = pruned_redirects(txn, hour, urls).await?;
    let counts: Vec<(i64, String, i64, NaiveDateTime)> = event::Entity::find()
        .select_only()
        .column(event::Column::UrlId)
        .column(event::Column::EventType)
        .column_as(count_star(), "n")
        .column_as(
            Expr::expr(Func::max(Expr::col(event::Column::Timestamp))),
            "latest",
        )
        .filter(in_hour())
        .group_by(event::Column::UrlId)
        .group_by(event::Column::EventType)
        .into_tuple()
        .all(txn)
        .await?;
    let mut aggs: BTreeMap<(i64, String), Agg> = BTreeMap::new();
    for (url, event_type, n, latest) in counts {
        if event_type == REDIRECT && pruned.contains_key(&url) {
            continue;
        }
        aggs.entry((url, event_type))
            .or_default()
            .add(n, latest, None);
    }
    let mut sketches: HashMap<i64, Hll> = HashMap::new();
    let mut folded: Vec<i64> = Vec::new();
    let mut redirects = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .column(event::Column::UrlId)
        .column(event::Column::Timestamp)
        .column(event::Column::VisitorHash)
        .filter(in_hour())
        .filter(event::Column::EventType.eq(REDIRECT))
        .into_tuple::<(i64, i64, NaiveDateTime, Option<String>)>()
        .stream(txn)
        .await?;
    while let Some((id, url, at, visitor)) = redirects.try_next().await? {
        if let Some(agg) = pruned.get_mut(&url) {
            // Counted from these very rows, so exactly these are deleted below.
            agg.add(1, at, None);
            folded.push(id);
        }
        if let Some(v) = visitor {
            sketches.entry(url).or_default().insert(&v);
        }
    }
    drop(redirects);
    for (url, agg) in &pruned {
        aggs.insert((*url, REDIRECT.to_owned()), agg.clone());
    }
    hourly::Entity::delete_many()
        .filter(hourly::Column::Hour.eq(hour))
        .filter(hourly::Column::UrlId.is_in(urls.iter().copied()))
        .exec(txn)
        .await?;
    let rows: Vec<hourly::ActiveModel> = aggs
        .into_iter()
        .filter_map(|((url, event_type), mut agg)| {
            let latest = agg.latest?;
            if event_type == REDIRECT
                && let Some(sketch) = sketches.remove(&url)
            {
                agg.visitors.get_or_insert_with(Hll::new).merge(&sketch);
            }
            let (unique, sketch) = agg.sketch_columns(&event_type);
            Some(hourly::ActiveModel {
                url_id: Set(url),
                hour: Set(hour),
                raw_pruned: Set(event_type == REDIRECT && pruned.contains_key(&url)),
                event_type: Set(event_type),
                events: Set(agg.events),
                latest_at: Set(latest),
                unique_visitors: Set(unique),
                visitors: Set(sketch),
            })
        })
        .collect();
    for chunk in rows.chunks(1_000) {
        hourly::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    for chunk in folded.chunks(IDS_PER_STATEMENT) {
        event::Entity::delete_many()
            .filter(event::Column::Id.is_in(chunk.iter().copied()))
            .exec(txn)
            .await?;
    }
    Ok(())
}

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

async fn recompute_day(
    txn: &DatabaseTransaction,
    day: NaiveDateTime,
    urls: &BTreeSet<i64>,
) -> Result<(), DbErr> {
    let mut aggs: BTreeMap<(i64, String), Agg> = BTreeMap::new();
    let mut rows = hourly::Entity::find()
        .filter(hourly::Column::UrlId.is_in(urls.iter().copied()))
        .filter(hourly::Column::Hour.gte(day))
        .filter(hourly::Column::Hour.lt(day + Duration::days(1)))
        .stream(txn)
        .await?;
    while let Some(row) = rows.try_next().await? {
        let sketch = row.visitors.as_deref().and_then(Hll::from_bytes);
        aggs.entry((row.url_id, row.event_type)).or_default().add(
            row.events,
            row.latest_at,
            sketch,
        );
    }
    drop(rows);
    daily::Entity::delete_many()
        .filter(daily::Column::Day.eq(day))
        .filter(daily::Column::UrlId.is_in(urls.iter().copied()))
        .exec(txn)
        .await?;
    let rows: Vec<daily::ActiveModel> = aggs
        .into_iter()
        .filter_map(|((url, event_type), agg)| {
            let latest = agg.latest?;
            let (unique, sketch) = agg.sketch_columns(&event_type);
            Some(daily::ActiveModel {
                url_id: Set(url),
                day: Set(day),
                event_type: Set(event_type),
                events: Set(agg.events),
                latest_at: Set(latest),
                unique_visitors: Set(unique),
                visitors: Set(sketch),
            })
        })
        .collect();
    for chunk in rows.chunks(1_000) {
        daily::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

fn count_star() -> SimpleExpr {
    Expr::expr(Func::count(Expr::col(event::Column::Id)))
}

fn sum_bigint<C: sea_orm::sea_query::IntoColumnRef>(col: C) -> SimpleExpr {
    Func::cast_as(Func::sum(Expr::col(col)), Alias::new("BIGINT")).into()
}

/// Events of one type: how many, and the newest one's time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TypeTotal {
    pub events: u64,
    pub latest: Option<NaiveDateTime>,
}

/// The link's hours before `open` that are still marked (their rollups may be stale), or
/// `None` if there are too many to list (then read the raw events).
async fn marked_hours<C: ConnectionTrait>(
    db: &C,
    url: i64,
    open: NaiveDateTime,
) -> Result<Option<BTreeSet<NaiveDateTime>>, DbErr> {
    let hours: Vec<NaiveDateTime> = pending::Entity::find()
        .select_only()
        .column(pending::Column::Hour)
        .filter(pending::Column::UrlId.eq(url))
        .filter(pending::Column::Hour.lt(open))
        .distinct()
        .limit(MAX_PENDING_HOURS_READ + 1)
        .into_tuple()
        .all(db)
        .await?;
    if hours.len() as u64 > MAX_PENDING_HOURS_READ {
        return Ok(None);
    }
    Ok(Some(hours.into_iter().collect()))
}

/// Where each part of a link's history is read from.
struct Plan {
    /// Days before this are read from the daily rollups.
    daily_before: NaiveDateTime,
    /// Hours from `daily_before` up to this, not marked, are read from the hourly rollups.
    open: NaiveDateTime,
    /// Marked hours (read raw), together with everything from `open` on.
    marked: BTreeSet<NaiveDateTime>,
}

impl Plan {
    async fn new<C: ConnectionTrait>(
        db: &C,
        url: i64,
        now: NaiveDateTime,
    ) -> Result<Option<Self>, DbErr> {
        let open = hour_floor(now);
        let Some(marked) = marked_hours(db, url, open).await? else {
            return Ok(None);
        };
        let today = day_floor(now);
        let daily_before = marked.first().map_or(today, |h| day_floor(*h).min(today));
        Ok(Some(Self {
            daily_before,
            open,
            marked,
        }))
    }

    /// Every hour from `from` on read raw.
    fn everything_raw(from: NaiveDateTime) -> Self {
        Self {
            daily_before: from,
            open: from,
            marked: BTreeSet::new(),
        }
    }

    /// The hourly rows whose raw redirect events retention deleted, among the hours in
    /// `[from, to)` this plan reads raw: what is raw there is only what came after the row,
    /// so the row is added to it.
    async fn pruned_rows(
        &self,
        db: &DatabaseConnection,
        url: i64,
        range: Option<(NaiveDateTime, NaiveDateTime)>,
    ) -> Result<Vec<hourly::Model>, DbErr> {
        let read_raw = sea_orm::Condition::any()
            .add(hourly::Column::Hour.gte(self.open))
            .add(hourly::Column::Hour.is_in(self.marked.iter().copied()));
        let mut query = hourly::Entity::find()
            .filter(hourly::Column::UrlId.eq(url))
            .filter(hourly::Column::RawPruned.eq(true))
            .filter(read_raw);
        if let Some((from, to)) = range {
            query = query
                .filter(hourly::Column::Hour.gte(from))
                .filter(hourly::Column::Hour.lt(to));
        }
        query.all(db).await
    }

    /// The condition selecting the raw events this plan reads.
    fn raw_condition(&self, url: i64) -> sea_orm::Condition {
        let mut time = sea_orm::Condition::any().add(event::Column::Timestamp.gte(self.open));
        for hour in &self.marked {
            time = time.add(
                sea_orm::Condition::all()
                    .add(event::Column::Timestamp.gte(*hour))
                    .add(event::Column::Timestamp.lt(*hour + Duration::hours(1))),
            );
        }
        sea_orm::Condition::all()
            .add(event::Column::UrlId.eq(url))
            .add(time)
    }
}

/// Events of one link by type: what `GET /urls/<id>/analytics` shows.
pub async fn totals(
    db: &DatabaseConnection,
    url: i64,
    now: NaiveDateTime,
) -> Result<BTreeMap<String, TypeTotal>, DbErr> {
    let mut out: BTreeMap<String, TypeTotal> = BTreeMap::new();
    let mut add = |rows: Vec<(String, i64, Option<NaiveDateTime>)>| {
        for (event_type, n, latest) in rows {
            let total = out.entry(event_type).or_default();
            total.events += n as u64;
            total.latest = total.latest.max(latest);
        }
    };
    let raw = |condition: sea_orm::Condition| {
        event::Entity::find()
            .select_only()
            .column(event::Column::EventType)
            .column_as(count_star(), "n")
            .column_as(
                Expr::expr(Func::max(Expr::col(event::Column::Timestamp))),
                "latest",
            )
            .filter(condition)
            .group_by(event::Column::EventType)
            .into_tuple()
    };
    let Some(plan) = Plan::new(db, url, now).await? else {
        let all = Plan::everything_raw(chrono::DateTime::UNIX_EPOCH.naive_utc());
        add(
            raw(sea_orm::Condition::all().add(event::Column::UrlId.eq(url)))
                .all(db)
                .await?,
        );
        add(all
            .pruned_rows(db, url, None)
            .await?
            .into_iter()
            .map(|r| (r.event_type, r.events, Some(r.latest_at)))
            .collect());
        return Ok(out);
    };
    add(daily::Entity::find()
        .select_only()
        .column(daily::Column::EventType)
        .column_as(sum_bigint(daily::Column::Events), "n")
        .column_as(
            Expr::expr(Func::max(Expr::col(daily::Column::LatestAt))),
            "latest",
        )
        .filter(daily::Column::UrlId.eq(url))
        .filter(daily::Column::Day.lt(plan.daily_before))
        .group_by(daily::Column::EventType)
        .into_tuple()
        .all(db)
        .await?);
    add(hourly::Entity::find()
        .select_only()
        .column(hourly::Column::EventType)
        .column_as(sum_bigint(hourly::Column::Events), "n")
        .column_as(
            Expr::expr(Func::max(Expr::col(hourly::Column::LatestAt))),
            "latest",
        )
        .filter(hourly::Column::UrlId.eq(url))
        .filter(hourly::Column::Hour.gte(plan.daily_before))
        .filter(hourly::Column::Hour.lt(plan.open))
        .filter(hourly::Column::Hour.is_not_in(plan.marked.iter().copied()))
        .group_by(hourly::Column::EventType)
        .into_tuple()
        .all(db)
        .await?);
    add(raw(plan.raw_condition(url)).all(db).await?);
    add(plan
        .pruned_rows(db, url, None)
        .await?
        .into_iter()
        .map(|r| (r.event_type, r.events, Some(r.latest_at)))
        .collect());
    Ok(out)
}

/// Bucket size of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    #[must_use]
    pub fn floor(self, t: NaiveDateTime) -> NaiveDateTime {
        match self {
            Self::Hour => hour_floor(t),
            Self::Day => day_floor(t),
        }
    }

    #[must_use]
    pub fn step(self) -> Duration {
        match self {
            Self::Hour => Duration::hours(1),
            Self::Day => Duration::days(1),
        }
    }
}

/// One bucket of a time series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub start: NaiveDateTime,
    /// Events of every type.
    pub events: u64,
    /// Redirect events (clicks).
    pub clicks: u64,
    /// Distinct visitors of the redirects (HyperLogLog estimate).
    pub unique_visitors: u64,
}

#[derive(Default)]
struct Bucket {
    events: u64,
    clicks: u64,
    unique: u64,
    visitors: Option<Hll>,
}

impl Bucket {
    fn merge(&mut self, other: Bucket) {
        self.events += other.events;
        self.clicks += other.clicks;
        if let Some(v) = other.visitors {
            self.visitors.get_or_insert_with(Hll::new).merge(&v);
        }
    }
}

/// The link's events per bucket, for buckets starting in `[from, to)` (`from` aligned to the
/// granularity), every bucket present (zeros included), oldest first.
pub async fn series(
    db: &DatabaseConnection,
    url: i64,
    granularity: Granularity,
    from: NaiveDateTime,
    to: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Vec<Point>, DbErr> {
    let from = granularity.floor(from);
    let plan = match Plan::new(db, url, now).await? {
        Some(plan) => plan,
        // Too many marked hours: every hour in range is read raw.
        None => Plan::everything_raw(from),
    };
    let mut hours = rolled_up_hours(db, url, granularity, &plan, from, to).await?;
    raw_hours(db, url, &plan, from, to, &mut hours).await?;
    if granularity == Granularity::Day {
        hours = days(db, url, &plan, from, to, hours).await?;
    }
    let mut points = Vec::new();
    let mut start = from;
    while start < to {
        let bucket = hours.remove(&start).unwrap_or_default();
        points.push(Point {
            start,
            events: bucket.events,
            clicks: bucket.clicks,
            unique_visitors: bucket.unique,
        });
        start += granularity.step();
    }
    Ok(points)
}

type HourRow = (NaiveDateTime, String, i64, i64, Option<Vec<u8>>);

/// Rolled-up hours of `[from, to)` that the plan does not read raw. For days, only the hours
/// of days not wholly rolled up (the rest use daily rows), with their sketches.
async fn rolled_up_hours(
    db: &DatabaseConnection,
    url: i64,
    granularity: Granularity,
    plan: &Plan,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<BTreeMap<NaiveDateTime, Bucket>, DbErr> {
    let with_sketches = granularity == Granularity::Day;
    let hourly_from = match granularity {
        Granularity::Hour => from,
        Granularity::Day => from.max(plan.daily_before),
    };
    let query = hourly::Entity::find()
        .select_only()
        .column(hourly::Column::Hour)
        .column(hourly::Column::EventType)
        .column(hourly::Column::Events)
        .column(hourly::Column::UniqueVisitors)
        .filter(hourly::Column::UrlId.eq(url))
        .filter(hourly::Column::Hour.gte(hourly_from))
        .filter(hourly::Column::Hour.lt(to.min(plan.open)))
        .filter(hourly::Column::Hour.is_not_in(plan.marked.iter().copied()));
    let rows: Vec<HourRow> = if with_sketches {
        query
            .column(hourly::Column::Visitors)
            .into_tuple()
            .all(db)
            .await?
    } else {
        query
            .into_tuple::<(NaiveDateTime, String, i64, i64)>()
            .all(db)
            .await?
            .into_iter()
            .map(|(h, t, e, u)| (h, t, e, u, None))
            .collect()
    };
    let mut hours: BTreeMap<NaiveDateTime, Bucket> = BTreeMap::new();
    for (hour, event_type, events, unique, sketch) in rows {
        let bucket = hours.entry(hour).or_default();
        bucket.events += events as u64;
        if event_type == REDIRECT {
            bucket.clicks += events as u64;
            bucket.unique = unique as u64;
            bucket.visitors = sketch.as_deref().and_then(Hll::from_bytes);
        }
    }
    Ok(hours)
}

/// Adds the hours read raw (the open one onwards and the marked ones, plus the rows of
/// pruned hours among them) to `hours`.
async fn raw_hours(
    db: &DatabaseConnection,
    url: i64,
    plan: &Plan,
    from: NaiveDateTime,
    to: NaiveDateTime,
    hours: &mut BTreeMap<NaiveDateTime, Bucket>,
) -> Result<(), DbErr> {
    let mut raw = event::Entity::find()
        .select_only()
        .column(event::Column::Timestamp)
        .column(event::Column::EventType)
        .column(event::Column::VisitorHash)
        .filter(plan.raw_condition(url))
        .filter(event::Column::Timestamp.gte(from))
        .filter(event::Column::Timestamp.lt(to))
        .into_tuple::<(NaiveDateTime, String, Option<String>)>()
        .stream(db)
        .await?;
    let mut raw_hours: BTreeSet<NaiveDateTime> = BTreeSet::new();
    while let Some((at, event_type, visitor)) = raw.try_next().await? {
        let hour = hour_floor(at);
        raw_hours.insert(hour);
        let bucket = hours.entry(hour).or_default();
        bucket.events += 1;
        if event_type == REDIRECT {
            bucket.clicks += 1;
            if let Some(v) = visitor {
                bucket.visitors.get_or_insert_with(Hll::new).insert(&v);
            }
        }
    }
    drop(raw);
    for row in plan.pruned_rows(db, url, Some((from, to))).await? {
        raw_hours.insert(row.hour);
        let bucket = hours.entry(row.hour).or_default();
        bucket.events += row.events as u64;
        bucket.clicks += row.events as u64;
        if let Some(sketch) = row.visitors.as_deref().and_then(Hll::from_bytes) {
            bucket.visitors.get_or_insert_with(Hll::new).merge(&sketch);
        }
    }
    for hour in raw_hours {
        if let Some(bucket) = hours.get_mut(&hour) {
            bucket.unique = bucket.visitors.as_ref().map_or(0, Hll::estimate);
        }
    }
    Ok(())
}

/// Day buckets: the given hours merged per day (sketches merged), and the daily rows of the
/// days before the plan's `daily_before`.
async fn days(
    db: &DatabaseConnection,
    url: i64,
    plan: &Plan,
    from: NaiveDateTime,
    to: NaiveDateTime,
    hours: BTreeMap<NaiveDateTime, Bucket>,
) -> Result<BTreeMap<NaiveDateTime, Bucket>, DbErr> {
    let mut days: BTreeMap<NaiveDateTime, Bucket> = BTreeMap::new();
    for (hour, bucket) in hours {
        days.entry(day_floor(hour)).or_default().merge(bucket);
    }
    for bucket in days.values_mut() {
        bucket.unique = bucket.visitors.as_ref().map_or(0, Hll::estimate);
    }
    let rows: Vec<(NaiveDateTime, String, i64, i64)> = daily::Entity::find()
        .select_only()
        .column(daily::Column::Day)
        .column(daily::Column::EventType)
        .column(daily::Column::Events)
        .column(daily::Column::UniqueVisitors)
        .filter(daily::Column::UrlId.eq(url))
        .filter(daily::Column::Day.gte(from))
        .filter(daily::Column::Day.lt(to.min(plan.daily_before)))
        .into_tuple()
        .all(db)
        .await?;
    for (day, event_type, events, unique) in rows {
        let bucket = days.entry(day).or_default();
        bucket.events += events as u64;
        if event_type == REDIRECT {
            bucket.clicks += events as u64;
            bucket.unique = unique as u64;
        }
    }
    Ok(days)
}

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
