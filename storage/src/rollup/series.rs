//! Reading: a link's events as a time series, per hour or per day.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDateTime};
use entity::event;
use entity::rollup::{daily, hourly};
use futures_util::TryStreamExt;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect};

use super::plan::Plan;
use super::{REDIRECT, day_floor, hour_floor};
use crate::hll::Hll;

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
