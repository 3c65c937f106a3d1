//! Where a read takes each part of a link's history from: daily rows, hourly rows, or the raw
//! events of the open and the marked hours.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDateTime};
use entity::event;
use entity::rollup::{hourly, pending};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
};

use super::{day_floor, hour_floor};

/// More marked hours than this for one link and reads fall back to the raw events.
const MAX_PENDING_HOURS_READ: u64 = 200;

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
pub(super) struct Plan {
    /// Days before this are read from the daily rollups.
    pub(super) daily_before: NaiveDateTime,
    /// Hours from `daily_before` up to this, not marked, are read from the hourly rollups.
    pub(super) open: NaiveDateTime,
    /// Marked hours (read raw), together with everything from `open` on.
    pub(super) marked: BTreeSet<NaiveDateTime>,
}

impl Plan {
    pub(super) async fn new<C: ConnectionTrait>(
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
    pub(super) fn everything_raw(from: NaiveDateTime) -> Self {
        Self {
            daily_before: from,
            open: from,
            marked: BTreeSet::new(),
        }
    }

    /// The hourly rows whose raw redirect events retention deleted, among the hours in
    /// `[from, to)` this plan reads raw: what is raw there is only what came after the row,
    /// so the row is added to it.
    pub(super) async fn pruned_rows(
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
    pub(super) fn raw_condition(&self, url: i64) -> sea_orm::Condition {
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
