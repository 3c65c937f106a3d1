//! Reading: a link's event totals by type.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use entity::event;
use entity::rollup::{daily, hourly};
use sea_orm::sea_query::{Alias, Expr, Func, SimpleExpr};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect};

use super::plan::Plan;
use super::{count_bots, count_star};

fn sum_bigint<C: sea_orm::sea_query::IntoColumnRef>(col: C) -> SimpleExpr {
    Func::cast_as(Func::sum(Expr::col(col)), Alias::new("BIGINT")).into()
}

/// Events of one type: how many, how many of them bots', and the newest one's time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TypeTotal {
    pub events: u64,
    /// Events flagged `is_bot` among `events`.
    pub bots: u64,
    pub latest: Option<NaiveDateTime>,
}

/// Events of one link by type: what `GET /urls/<id>/analytics` shows.
pub async fn totals(
    db: &DatabaseConnection,
    url: i64,
    now: NaiveDateTime,
) -> Result<BTreeMap<String, TypeTotal>, DbErr> {
    let mut out: BTreeMap<String, TypeTotal> = BTreeMap::new();
    let mut add = |rows: Vec<(String, i64, i64, Option<NaiveDateTime>)>| {
        for (event_type, n, bots, latest) in rows {
            let total = out.entry(event_type).or_default();
            total.events += n as u64;
            total.bots += bots as u64;
            total.latest = total.latest.max(latest);
        }
    };
    let raw = |condition: sea_orm::Condition| {
        event::Entity::find()
            .select_only()
            .column(event::Column::EventType)
            .column_as(count_star(), "n")
            .column_as(count_bots(), "bots")
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
            .map(|r| (r.event_type, r.events, r.bot_events, Some(r.latest_at)))
            .collect());
        return Ok(out);
    };
    add(daily::Entity::find()
        .select_only()
        .column(daily::Column::EventType)
        .column_as(sum_bigint(daily::Column::Events), "n")
        .column_as(sum_bigint(daily::Column::BotEvents), "bots")
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
        .column_as(sum_bigint(hourly::Column::BotEvents), "bots")
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
        .map(|r| (r.event_type, r.events, r.bot_events, Some(r.latest_at)))
        .collect());
    Ok(out)
}
