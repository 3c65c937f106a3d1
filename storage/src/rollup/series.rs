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

/// Which events a series counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bots {
    /// Every event (the default).
    Include,
    /// Only events not flagged `is_bot`, and only their visitors.
    Exclude,
}

/// The link's events per bucket, for buckets starting in `[from, to)` (`from` aligned to the
/// granularity), every bucket present (zeros included), oldest first.
pub async fn series(
    db: &DatabaseConnection,
    url: i64,
    granularity: Granularity,
    range: (NaiveDateTime, NaiveDateTime),
    now: NaiveDateTime,
    bots: Bots,
) -> Result<Vec<Point>, DbErr> {
    let (from, to) = range;
    let from = granularity.floor(from);
    let plan = match Plan::new(db, url, now).await? {
        Some(plan) => plan,
        // Too many marked hours: every hour in range is read raw.
        None => Plan::everything_raw(from),
    };
    let mut hours = rolled_up_hours(db, url, granularity, &plan, (from, to), bots).await?;
    raw_hours(db, url, &plan, (from, to), bots, &mut hours).await?;
    if granularity == Granularity::Day {
        hours = days(db, url, &plan, (from, to), bots, hours).await?;
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

type HourRow = (
    NaiveDateTime,
    String,
    i64,
    i64,
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

type DayRow = (NaiveDateTime, String, i64, i64, i64, Option<Vec<u8>>);

/// A rollup row as `bots` counts it: (events, unique visitors, sketch). Without bots, the
/// row's bot events are taken off and its visitors are those of its human sketch (which
/// only rows with bots have: otherwise every visitor is human).
fn counted(
    bots: Bots,
    (events, unique, bot_events): (i64, i64, i64),
    visitors: Option<&[u8]>,
    human_visitors: Option<&[u8]>,
) -> (u64, u64, Option<Hll>) {
    match (bots, human_visitors) {
        (Bots::Exclude, Some(humans)) => {
            let sketch = Hll::from_bytes(humans);
            let unique = sketch.as_ref().map_or(0, Hll::estimate);
            ((events - bot_events) as u64, unique, sketch)
        }
        (Bots::Exclude, None) => (
            (events - bot_events) as u64,
            unique as u64,
            visitors.and_then(Hll::from_bytes),
        ),
        (Bots::Include, _) => (
            events as u64,
            unique as u64,
            visitors.and_then(Hll::from_bytes),
        ),
    }
}

/// Rolled-up hours of `[from, to)` that the plan does not read raw. For days, only the hours
/// of days not wholly rolled up (the rest use daily rows), with their sketches.
async fn rolled_up_hours(
    db: &DatabaseConnection,
    url: i64,
    granularity: Granularity,
    plan: &Plan,
    (from, to): (NaiveDateTime, NaiveDateTime),
    bots: Bots,
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
        .column(hourly::Column::BotEvents)
        .column(hourly::Column::HumanVisitors)
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
            .into_tuple::<(NaiveDateTime, String, i64, i64, i64, Option<Vec<u8>>)>()
            .all(db)
            .await?
            .into_iter()
            .map(|(h, t, e, u, b, hv)| (h, t, e, u, b, hv, None))
            .collect()
    };
    let mut hours: BTreeMap<NaiveDateTime, Bucket> = BTreeMap::new();
    for (hour, event_type, events, unique, bot_events, humans, sketch) in rows {
        let (events, unique, sketch) = counted(
            bots,
            (events, unique, bot_events),
            sketch.as_deref(),
            humans.as_deref(),
        );
        let bucket = hours.entry(hour).or_default();
        bucket.events += events;
        if event_type == REDIRECT {
            bucket.clicks += events;
            bucket.unique = unique;
            // Hours only carry sketches when days are merged from them.
            bucket.visitors = sketch.filter(|_| with_sketches);
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
    (from, to): (NaiveDateTime, NaiveDateTime),
    bots: Bots,
    hours: &mut BTreeMap<NaiveDateTime, Bucket>,
) -> Result<(), DbErr> {
    let mut raw = event::Entity::find()
        .select_only()
        .column(event::Column::Timestamp)
        .column(event::Column::EventType)
        .column(event::Column::VisitorHash)
        .column(event::Column::IsBot)
        .filter(plan.raw_condition(url))
        .filter(event::Column::Timestamp.gte(from))
        .filter(event::Column::Timestamp.lt(to))
        .into_tuple::<(NaiveDateTime, String, Option<String>, bool)>()
        .stream(db)
        .await?;
    let mut raw_hours: BTreeSet<NaiveDateTime> = BTreeSet::new();
    while let Some((at, event_type, visitor, is_bot)) = raw.try_next().await? {
        let hour = hour_floor(at);
        raw_hours.insert(hour);
        if is_bot && bots == Bots::Exclude {
            continue;
        }
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
        let (events, _, sketch) = counted(
            bots,
            (row.events, row.unique_visitors, row.bot_events),
            row.visitors.as_deref(),
            row.human_visitors.as_deref(),
        );
        let bucket = hours.entry(row.hour).or_default();
        bucket.events += events;
        bucket.clicks += events;
        if let Some(sketch) = sketch {
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
    (from, to): (NaiveDateTime, NaiveDateTime),
    bots: Bots,
    hours: BTreeMap<NaiveDateTime, Bucket>,
) -> Result<BTreeMap<NaiveDateTime, Bucket>, DbErr> {
    let mut days: BTreeMap<NaiveDateTime, Bucket> = BTreeMap::new();
    for (hour, bucket) in hours {
        days.entry(day_floor(hour)).or_default().merge(bucket);
    }
    for bucket in days.values_mut() {
        bucket.unique = bucket.visitors.as_ref().map_or(0, Hll::estimate);
    }
    let rows: Vec<DayRow> = daily::Entity::find()
        .select_only()
        .column(daily::Column::Day)
        .column(daily::Column::EventType)
        .column(daily::Column::Events)
        .column(daily::Column::UniqueVisitors)
        .column(daily::Column::BotEvents)
        .column(daily::Column::HumanVisitors)
        .filter(daily::Column::UrlId.eq(url))
        .filter(daily::Column::Day.gte(from))
        .filter(daily::Column::Day.lt(to.min(plan.daily_before)))
        .into_tuple()
        .all(db)
        .await?;
    for (day, event_type, events, unique, bot_events, humans) in rows {
        let (events, unique, _) =
            counted(bots, (events, unique, bot_events), None, humans.as_deref());
        let bucket = days.entry(day).or_default();
        bucket.events += events;
        if event_type == REDIRECT {
            bucket.clicks += events;
            bucket.unique = unique;
        }
    }
    Ok(days)
}
