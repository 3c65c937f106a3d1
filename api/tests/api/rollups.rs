//! Analytics rollups (issue 7): hourly and daily rows recomputed from the events of marked
//! hours, analytics and the time series read from them plus the open hour, late events folded
//! in, re-runs idempotent, and the time-series endpoint's validation.

use chrono::{Duration, NaiveDateTime};
use entity::event;
use entity::rollup::{daily, hourly, pending};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use serde_json::{Value, json};
use storage::rollup::{hour_floor, run_once, totals};

use crate::backend_test;
use crate::helpers::parts;

fn now() -> NaiveDateTime {
    api::models::now()
}

/// `n` events of `event_type` for link `url` at `at`, visitors `v{visitor_from}..` for redirects.
async fn insert_events(
    db: &DatabaseConnection,
    url: i64,
    event_type: &str,
    at: NaiveDateTime,
    n: usize,
    visitor_from: usize,
) {
    let rows: Vec<event::ActiveModel> = (0..n)
        .map(|i| event::ActiveModel {
            url_id: Set(Some(url)),
            event_type: Set(event_type.to_owned()),
            timestamp: Set(at),
            click_id: Set((event_type == "redirect").then(|| uuid::Uuid::now_v7().to_string())),
            visitor_hash: Set((event_type == "redirect").then(|| {
                format!(
                    "{:032x}{:032x}",
                    md5_u128(&format!("v{}", visitor_from + i)),
                    md5_u128(&format!("w{}", visitor_from + i))
                )
            })),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(500) {
        event::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await
            .unwrap();
    }
}

/// A uniform 128-bit value per name (visitor hashes are HMAC outputs in production).
fn md5_u128(name: &str) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(name.as_bytes()).into())
}

async fn all_rows(db: &DatabaseConnection) -> (Vec<hourly::Model>, Vec<daily::Model>) {
    (
        hourly::Entity::find()
            .order_by_asc(hourly::Column::UrlId)
            .order_by_asc(hourly::Column::Hour)
            .order_by_asc(hourly::Column::EventType)
            .all(db)
            .await
            .unwrap(),
        daily::Entity::find()
            .order_by_asc(daily::Column::UrlId)
            .order_by_asc(daily::Column::Day)
            .order_by_asc(daily::Column::EventType)
            .all(db)
            .await
            .unwrap(),
    )
}

async fn raw_count(db: &DatabaseConnection, url: i64) -> u64 {
    event::Entity::find()
        .filter(event::Column::UrlId.eq(url))
        .count(db)
        .await
        .unwrap()
}

/// History over three days and the open hour: the link's id and the start of the open hour.
async fn link_with_history(app: &crate::helpers::TestApp) -> (i64, NaiveDateTime) {
    let url = app.create_url("https://example.com/history").await;
    let id = url["id"].as_i64().unwrap();
    let db = &app.state.db;
    let open = hour_floor(now());
    // 50 hours ago: 30 redirects by 10 visitors (3 each); 26 hours ago: 20 redirects by 20
    // visitors, 10 of them seen 50 hours ago; 2 hours ago: 5 clicks; the open hour: 7 redirects.
    for round in 0..3 {
        insert_events(
            db,
            id,
            "redirect",
            open - Duration::hours(50) + Duration::minutes(round),
            10,
            0,
        )
        .await;
    }
    insert_events(db, id, "redirect", open - Duration::hours(26), 20, 0).await;
    insert_events(db, id, "click", open - Duration::hours(2), 5, 0).await;
    insert_events(db, id, "redirect", now().max(open), 7, 100).await;
    (id, open)
}

backend_test! {
    async fn a_rollup_keeps_analytics_equal_and_analytics_then_read_the_rollups(app) {
        let (id, open) = link_with_history(&app).await;
        let db = &app.state.db;
        let before = totals(db, id, open + Duration::minutes(59)).await.unwrap();
        assert_eq!(before["redirect"].events, 57);
        assert_eq!(before["click"].events, 5);
        assert_eq!(before["created"].events, 1);

        let report = run_once(db, open + Duration::minutes(59)).await.unwrap();
        // Three closed hours of history (the link's creation is in the open hour).
        assert_eq!(report.hours, 3, "{report:?}");
        assert_eq!(
            pending::Entity::find().filter(pending::Column::Hour.lt(open)).count(db).await.unwrap(),
            0,
            "every closed hour's marks consumed"
        );
        assert_eq!(totals(db, id, open + Duration::minutes(59)).await.unwrap(), before);

        let (hours, days) = all_rows(db).await;
        let h50 = hours.iter().find(|r| r.hour == open - Duration::hours(50)).unwrap();
        assert_eq!((h50.event_type.as_str(), h50.events, h50.unique_visitors), ("redirect", 30, 10));
        let day = storage::rollup::day_floor(open - Duration::hours(26));
        let d26: Vec<_> = days.iter().filter(|r| r.day == day && r.event_type == "redirect").collect();
        assert!(!d26.is_empty());

        // Proof that the closed hours are read from the rollups: their raw events deleted (as
        // retention would), the analytics do not move.
        event::Entity::delete_many()
            .filter(event::Column::UrlId.eq(id))
            .filter(event::Column::Timestamp.lt(open))
            .exec(db)
            .await
            .unwrap();
        assert_eq!(raw_count(db, id).await, 8);
        assert_eq!(totals(db, id, open + Duration::minutes(59)).await.unwrap(), before);
        let (status, _, body) = parts(app.get(&format!("/urls/{id}/analytics")).await).await;
        assert_eq!(status, 200);
        assert_eq!(body["total_events"], 63);
        assert_eq!(body["redirect_count"], 57);
        assert_eq!(body["click_count"], 5);
        assert_eq!(body["event_counts"], json!({"created": 1, "click": 5, "redirect": 57}));
    }
}

backend_test! {
    async fn re_running_a_rollup_gives_the_same_rows_and_late_events_are_folded_in(app) {
        let (id, open) = link_with_history(&app).await;
        let db = &app.state.db;
        run_once(db, open + Duration::minutes(59)).await.unwrap();
        let first = all_rows(db).await;
        // Nothing marked: a second run does nothing and changes nothing.
        assert_eq!(run_once(db, open + Duration::minutes(59)).await.unwrap().hours, 0);
        assert_eq!(all_rows(db).await, first);
        // The same hour marked again by hand (as a retried batch would): same rows.
        pending::Entity::insert(pending::ActiveModel {
            url_id: Set(Some(id)),
            hour: Set(open - Duration::hours(50)),
            ..Default::default()
        })
        .exec(db)
        .await
        .unwrap();
        assert_eq!(run_once(db, open + Duration::minutes(59)).await.unwrap().hours, 1);
        assert_eq!(all_rows(db).await, first);

        // A late batch into a rolled-up hour (a spooled replay) counts at once, before any
        // rollup, and after one.
        insert_events(db, id, "redirect", open - Duration::hours(50) + Duration::minutes(30), 4, 1_000).await;
        assert_eq!(totals(db, id, open + Duration::minutes(59)).await.unwrap()["redirect"].events, 61);
        run_once(db, open + Duration::minutes(59)).await.unwrap();
        assert_eq!(totals(db, id, open + Duration::minutes(59)).await.unwrap()["redirect"].events, 61);
        let (hours, _) = all_rows(db).await;
        let h50 = hours.iter().find(|r| r.hour == open - Duration::hours(50)).unwrap();
        assert_eq!((h50.events, h50.unique_visitors), (34, 14));
    }
}

backend_test! {
    async fn events_written_while_rollups_run_are_never_lost(app) {
        let url = app.create_url("https://example.com/race").await;
        let id = url["id"].as_i64().unwrap();
        let db = app.state.db.clone();
        let hour = hour_floor(now()) - Duration::hours(3);
        // Writers keep adding late events to one closed hour while rollups run in a loop; a
        // rollup that deleted marks it had not read (or recomputed before reading them) would
        // leave the hour's row short of the events.
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    for i in 0..25 {
                        insert_events(&db, id, "redirect", hour, 3, w * 1_000 + i * 3).await;
                    }
                })
            })
            .collect();
        let roller = {
            let db = db.clone();
            tokio::spawn(async move {
                for _ in 0..30 {
                    run_once(&db, now()).await.unwrap();
                }
            })
        };
        for w in writers {
            w.await.unwrap();
        }
        roller.await.unwrap();
        run_once(&db, now()).await.unwrap();
        let row = hourly::Entity::find_by_id((id, hour, "redirect".to_owned()))
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.events, 300);
        assert_eq!(totals(&db, id, now()).await.unwrap()["redirect"].events, 300);
    }
}

async fn series(app: &crate::helpers::TestApp, id: i64, query: &str) -> Value {
    let (status, cache, body) = parts(
        app.get(&format!("/urls/{id}/analytics/timeseries?{query}"))
            .await,
    )
    .await;
    assert_eq!((status, cache), (200, None), "{query}: {body}");
    body
}

fn iso(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

backend_test! {
    async fn the_time_series_is_the_same_before_and_after_the_rollup(app) {
        let (id, open) = link_with_history(&app).await;
        let from = open - Duration::hours(50);
        let to = open + Duration::hours(1);
        let hourly_query = format!("granularity=hour&from={}&to={}", iso(from), iso(to));
        let before = series(&app, id, &hourly_query).await;
        let points = before["points"].as_array().unwrap();
        assert_eq!(points.len(), 51);
        assert_eq!(before["granularity"], "hour");
        assert_eq!(before["from"], from.format("%Y-%m-%dT%H:%M:%S").to_string());
        assert_eq!(points[0], json!({"start": before["from"], "events": 30, "clicks": 30, "unique_visitors": 10}));
        assert_eq!(points[24], json!({"start": points[24]["start"], "events": 20, "clicks": 20, "unique_visitors": 20}));
        assert_eq!(points[48]["events"], 5);
        assert_eq!(points[48]["clicks"], 0);
        // The open hour: 7 redirects by 7 visitors, and the link's creation.
        assert_eq!((points[50]["events"].as_u64(), points[50]["clicks"].as_u64(), points[50]["unique_visitors"].as_u64()), (Some(8), Some(7), Some(7)));
        assert_eq!(points.iter().map(|p| p["events"].as_u64().unwrap()).sum::<u64>(), 63);

        let from_day = storage::rollup::day_floor(from);
        let daily_query = format!("granularity=day&from={}&to={}", from_day.format("%Y-%m-%d"), iso(to));
        let days_before = series(&app, id, &daily_query).await;
        let day_points = days_before["points"].as_array().unwrap();
        assert_eq!(day_points.iter().map(|p| p["clicks"].as_u64().unwrap()).sum::<u64>(), 57);

        run_once(&app.state.db, open + Duration::minutes(59)).await.unwrap();
        assert_eq!(series(&app, id, &hourly_query).await, before);
        assert_eq!(series(&app, id, &daily_query).await, days_before);
        // Visitors seen on two days count once in each day, and the merged sketches agree with
        // the raw answer above: 10 visitors 50 h ago and 20 (10 of them the same) 26 h ago.
        assert_eq!(day_points[0]["unique_visitors"], 10);
    }
}

backend_test! {
    async fn the_time_series_refuses_bad_ranges_with_one_clear_400(app) {
        let url = app.create_url("https://example.com/ts").await;
        let id = url["id"].as_i64().unwrap();
        let cases = [
            ("granularity=minute", "Query parameter 'granularity' must be 'hour' or 'day'"),
            ("from=yesterday", "Query parameter 'from' must be an ISO 8601 date-time (e.g. 2026-12-01T10:00:00Z)"),
            ("to=2026-13-01", "Query parameter 'to' must be an ISO 8601 date-time (e.g. 2026-12-01T10:00:00Z)"),
            ("from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "Query parameter 'from' must be earlier than 'to'"),
            ("from=2026-12-01T10:00:00Z&to=2026-12-01T10:00:00Z", "Query parameter 'from' must be earlier than 'to'"),
            ("granularity=hour&from=2026-01-01&to=2026-03-01", "The range from 'from' to 'to' spans 1416 buckets; at most 1000 are served per request"),
            ("granularity=day&from=2020-01-01&to=2026-01-01", "The range from 'from' to 'to' spans 2192 buckets; at most 1000 are served per request"),
            ("from=0000-01-01T00:00:00Z", "Query parameter 'from' must be an ISO 8601 date-time (e.g. 2026-12-01T10:00:00Z)"),
        ];
        for (query, error) in cases {
            let (status, cache, body) = parts(app.get(&format!("/urls/{id}/analytics/timeseries?{query}")).await).await;
            assert_eq!((status, cache, body), (400, None, json!({"error": error})), "{query}");
        }
        let (status, _, body) = parts(app.get("/urls/424242/analytics/timeseries").await).await;
        assert_eq!((status, body), (404, json!({"error": "URL not found"})));

        // Defaults: the last 24 hours and the current one; 30 days and today.
        let body = series(&app, id, "").await;
        assert_eq!(body["points"].as_array().unwrap().len(), 25);
        assert_eq!(body["points"][24]["events"], 1, "the link's creation, in the open hour");
        let body = series(&app, id, "granularity=day").await;
        assert_eq!(body["points"].as_array().unwrap().len(), 31);
        // Offsets and dates: 10:30+02:00 is 08:30 UTC, rounded down to 08:00.
        let body = series(&app, id, "from=2026-12-01T10:30:00%2B02:00&to=2026-12-01T12:00:00").await;
        assert_eq!(body["from"], "2026-12-01T08:00:00");
        assert_eq!(body["points"].as_array().unwrap().len(), 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_rolls_up_on_its_own_and_exports_the_time() {
    use crate::helpers::{Backend, TestApp};
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.common.rollup_every_seconds = 1).await;
    let url = app.create_url("https://example.com/embedded").await;
    let id = url["id"].as_i64().unwrap();
    let hour = hour_floor(now()) - Duration::hours(5);
    insert_events(&app.state.db, id, "redirect", hour, 12, 0).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let row = hourly::Entity::find_by_id((id, hour, "redirect".to_owned()))
            .one(&app.state.db)
            .await
            .unwrap();
        if row.as_ref().is_some_and(|r| r.events == 12) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rollup within 20 s: {row:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let value: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("curtain_rollup_last_success_timestamp_seconds "))
        .expect("the gauge is exported")
        .trim()
        .parse()
        .unwrap();
    let age = chrono::Utc::now().timestamp() - value;
    assert!((0..30).contains(&age), "last success {age} s ago");
}

backend_test! {
    async fn retention_deletes_rolled_up_redirects_and_analytics_and_series_stay_equal(app) {
        use storage::rollup::{Schedule, run_scheduled};
        let (id, open) = link_with_history(&app).await;
        let db = &app.state.db;
        let t = open + Duration::minutes(59);
        let hourly_query = format!(
            "granularity=hour&from={}&to={}",
            iso(open - Duration::hours(50)),
            iso(open + Duration::hours(1))
        );
        let daily_query = format!("granularity=day&from={}&to={}", iso(storage::rollup::day_floor(open) - Duration::days(3)), iso(open + Duration::hours(1)));
        let before = totals(db, id, t).await.unwrap();
        let series_before = series(&app, id, &hourly_query).await;
        let days_before = series(&app, id, &daily_query).await;

        // Retention of one day: the redirects of hours before yesterday go, once rolled up.
        let cutoff = storage::rollup::day_floor(t) - Duration::days(1);
        let old_redirects = event::Entity::find()
            .filter(event::Column::UrlId.eq(id))
            .filter(event::Column::EventType.eq("redirect"))
            .filter(event::Column::Timestamp.lt(cutoff))
            .count(db)
            .await
            .unwrap();
        assert!(old_redirects >= 30, "the 50-hours-ago redirects are before the cutoff");
        let schedule = Schedule { every: std::time::Duration::ZERO, retention_days: Some(1) };
        let (_, pruned) = run_scheduled(db, schedule, t).await.unwrap();
        assert_eq!(pruned, old_redirects);
        assert_eq!(raw_count(db, id).await, 63 - old_redirects);
        assert_eq!(totals(db, id, t).await.unwrap(), before);
        assert_eq!(series(&app, id, &hourly_query).await, series_before);
        assert_eq!(series(&app, id, &daily_query).await, days_before);
        // Nothing left to delete; the click events (not redirects) are kept.
        assert_eq!(run_scheduled(db, schedule, t).await.unwrap().1, 0);

        // A late batch into a pruned hour counts at once (its hour marked: the pruned row plus
        // the new raw events), and is folded into the row by the next run, then deleted.
        let h50 = open - Duration::hours(50);
        insert_events(db, id, "redirect", h50 + Duration::minutes(40), 4, 5_000).await;
        let expect = before["redirect"].events + 4;
        assert_eq!(totals(db, id, t).await.unwrap()["redirect"].events, expect);
        let point = |v: &Value| v["points"][0].clone();
        assert_eq!(point(&series(&app, id, &hourly_query).await)["clicks"], 34);
        assert_eq!(point(&series(&app, id, &hourly_query).await)["unique_visitors"], 14);
        run_scheduled(db, schedule, t).await.unwrap();
        assert_eq!(totals(db, id, t).await.unwrap()["redirect"].events, expect);
        let row = hourly::Entity::find_by_id((id, h50, "redirect".to_owned())).one(db).await.unwrap().unwrap();
        assert_eq!((row.events, row.unique_visitors, row.raw_pruned), (34, 14, true));
        assert_eq!(raw_count(db, id).await, 63 - old_redirects, "the folded late events were deleted too");
        assert_eq!(point(&series(&app, id, &hourly_query).await)["clicks"], 34);
    }
}
