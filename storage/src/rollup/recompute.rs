//! The recomputation of marked hours from the events, and of their days from the hourly rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Duration, NaiveDateTime};
use entity::event;
use entity::rollup::{daily, hourly};
use futures_util::TryStreamExt;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QuerySelect,
};

use super::compute::IDS_PER_STATEMENT;
use super::{REDIRECT, count_bots, count_star};
use crate::hll::Hll;

/// One aggregated row before it is written.
#[derive(Debug, Default, Clone)]
struct Agg {
    events: i64,
    /// Events of bots among `events`.
    bots: i64,
    latest: Option<NaiveDateTime>,
    visitors: Option<Hll>,
    /// The visitors that are not bots (redirect rows).
    humans: Option<Hll>,
}

impl Agg {
    fn add(&mut self, events: i64, latest: NaiveDateTime, visitors: Option<Hll>) {
        self.events += events;
        self.latest = self.latest.max(Some(latest));
        if let Some(v) = visitors {
            self.visitors.get_or_insert_with(Hll::new).merge(&v);
        }
    }

    /// Adds a row's bot events and human visitors (its visitors when it has no sketch of
    /// humans: then it had no bots).
    fn add_bots(&mut self, bots: i64, humans: Option<Hll>) {
        self.bots += bots;
        if let Some(h) = humans {
            self.humans.get_or_insert_with(Hll::new).merge(&h);
        }
    }

    /// `human_visitors`: written only for redirect rows with bots (NULL: same as `visitors`).
    fn human_column(&self, event_type: &str) -> Option<Vec<u8>> {
        (event_type == REDIRECT && self.bots > 0).then(|| {
            self.humans
                .as_ref()
                .map_or_else(|| Hll::new().to_bytes(), Hll::to_bytes)
        })
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
        let humans = row.human_visitors.as_deref().and_then(Hll::from_bytes);
        agg.add_bots(row.bot_events, humans.or_else(|| sketch.clone()));
        agg.add(row.events, row.latest_at, sketch);
        pruned.insert(row.url_id, agg);
    }
    Ok(pruned)
}

/// The visitors of an hour's redirects per link, all and humans only; late events of pruned
/// rows are counted into them (and listed, to be deleted once folded in).
struct Sketches {
    all: HashMap<i64, Hll>,
    humans: HashMap<i64, Hll>,
    folded: Vec<i64>,
}

async fn redirect_sketches(
    txn: &DatabaseTransaction,
    in_hour: sea_orm::Condition,
    pruned: &mut HashMap<i64, Agg>,
) -> Result<Sketches, DbErr> {
    let mut sketches: HashMap<i64, Hll> = HashMap::new();
    let mut human_sketches: HashMap<i64, Hll> = HashMap::new();
    let mut folded: Vec<i64> = Vec::new();
    let mut redirects = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .column(event::Column::UrlId)
        .column(event::Column::Timestamp)
        .column(event::Column::VisitorHash)
        .column(event::Column::IsBot)
        .filter(in_hour)
        .filter(event::Column::EventType.eq(REDIRECT))
        .into_tuple::<(i64, i64, NaiveDateTime, Option<String>, bool)>()
        .stream(txn)
        .await?;
    while let Some((id, url, at, visitor, is_bot)) = redirects.try_next().await? {
        if let Some(agg) = pruned.get_mut(&url) {
            // Counted from these very rows, so exactly these are deleted (by the caller).
            agg.add(1, at, None);
            agg.add_bots(i64::from(is_bot), None);
            folded.push(id);
        }
        if let Some(v) = visitor {
            sketches.entry(url).or_default().insert(&v);
            if !is_bot {
                human_sketches.entry(url).or_default().insert(&v);
            }
        }
    }
    drop(redirects);
    Ok(Sketches {
        all: sketches,
        humans: human_sketches,
        folded,
    })
}

pub(super) async fn recompute_hour(
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
    let counts: Vec<(i64, String, i64, i64, NaiveDateTime)> = event::Entity::find()
        .select_only()
        .column(event::Column::UrlId)
        .column(event::Column::EventType)
        .column_as(count_star(), "n")
        .column_as(count_bots(), "bots")
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
    for (url, event_type, n, bots, latest) in counts {
        if event_type == REDIRECT && pruned.contains_key(&url) {
            continue;
        }
        let agg = aggs.entry((url, event_type)).or_default();
        agg.add(n, latest, None);
        agg.add_bots(bots, None);
    }
    let Sketches {
        mut all,
        mut humans,
        folded,
    } = redirect_sketches(txn, in_hour(), &mut pruned).await?;
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
                && let Some(sketch) = all.remove(&url)
            {
                agg.visitors.get_or_insert_with(Hll::new).merge(&sketch);
            }
            if event_type == REDIRECT {
                agg.add_bots(0, humans.remove(&url));
            }
            let (unique, sketch) = agg.sketch_columns(&event_type);
            let human_visitors = agg.human_column(&event_type);
            Some(hourly::ActiveModel {
                url_id: Set(url),
                hour: Set(hour),
                raw_pruned: Set(event_type == REDIRECT && pruned.contains_key(&url)),
                event_type: Set(event_type),
                events: Set(agg.events),
                latest_at: Set(latest),
                unique_visitors: Set(unique),
                visitors: Set(sketch),
                bot_events: Set(agg.bots),
                human_visitors: Set(human_visitors),
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

pub(super) async fn recompute_day(
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
        let humans = row.human_visitors.as_deref().and_then(Hll::from_bytes);
        let agg = aggs.entry((row.url_id, row.event_type)).or_default();
        agg.add_bots(row.bot_events, humans.or_else(|| sketch.clone()));
        agg.add(row.events, row.latest_at, sketch);
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
            let human_visitors = agg.human_column(&event_type);
            Some(daily::ActiveModel {
                url_id: Set(url),
                day: Set(day),
                event_type: Set(event_type),
                events: Set(agg.events),
                latest_at: Set(latest),
                unique_visitors: Set(unique),
                visitors: Set(sketch),
                bot_events: Set(agg.bots),
                human_visitors: Set(human_visitors),
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
