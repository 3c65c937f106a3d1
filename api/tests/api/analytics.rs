//! `GET /urls/<id>/analytics` (section 6): exactly eight keys, counts by type, the newest
//! event's time, 404s, and `X-Cache` that never hides a new click.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::parts;

const KEYS: [&str; 8] = [
    "url_id",
    "short_code",
    "original_url",
    "total_events",
    "click_count",
    "redirect_count",
    "event_counts",
    "latest_event_at",
];

fn key_set(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

backend_test! {
    async fn analytics_of_a_new_link_has_exactly_the_eight_keys(app) {
        let url = app.create_url("https://example.com/a").await;
        let resp = app.get(&format!("/urls/{}/analytics", url["id"])).await;
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let (status, cache, body) = parts(resp).await;
        assert_eq!((status, cache.as_deref()), (200, Some("MISS")));
        assert_eq!(key_set(&body), KEYS.iter().map(|k| (*k).to_owned()).collect());
        assert_eq!(
            body,
            json!({
                "url_id": url["id"],
                "short_code": url["short_code"],
                "original_url": "https://example.com/a",
                "total_events": 1,
                "click_count": 0,
                "redirect_count": 0,
                "event_counts": {"created": 1},
                "latest_event_at": url["created_at"],
            })
        );
    }
}

backend_test! {
    async fn analytics_counts_every_event_type_and_the_latest_timestamp(app) {
        let url = app.create_url("https://example.com/a").await;
        let other = app.create_url("https://example.com/other").await;
        let code = url["short_code"].as_str().unwrap();
        for event_type in ["click", "click", "view"] {
            let resp = app.post("/events", &json!({"event_type": event_type, "url_id": url["id"]})).await;
            assert_eq!(resp.status(), 201);
        }
        app.post("/events", &json!({"event_type": "click", "url_id": other["id"]})).await;
        assert_eq!(app.put(&format!("/urls/{}", url["id"]), &json!({"title": "T"})).await.status(), 200);
        for path in [format!("/r/{code}"), format!("/urls/short/{code}")] {
            assert_eq!(app.get(&path).await.status(), 302);
        }
        app.run_pending_jobs().await;

        let (_, _, body) = parts(app.get(&format!("/urls/{}/analytics", url["id"])).await).await;
        assert_eq!(body["total_events"], 7);
        assert_eq!(body["click_count"], 2);
        assert_eq!(body["redirect_count"], 2);
        assert_eq!(body["event_counts"], json!({"created": 1, "click": 2, "view": 1, "updated": 1, "redirect": 2}));
        let (_, _, events) = parts(app.get(&format!("/events?url_id={}", url["id"])).await).await;
        let newest = events.as_array().unwrap().iter().filter_map(|e| e["timestamp"].as_str()).max().unwrap();
        assert_eq!(body["latest_event_at"], newest);
        let (_, _, theirs) = parts(app.get(&format!("/urls/{}/analytics", other["id"])).await).await;
        assert_eq!(theirs["event_counts"], json!({"created": 1, "click": 1}), "counts are per link");
    }
}

backend_test! {
    async fn analytics_of_a_link_without_events_has_null_latest_event_at(app) {
        // Imported links can have no events at all.
        let rows = api::import::parse_urls(b"id,short_code,original_url\n77,quiet7,https://example.com/q\n").unwrap();
        api::import::insert_skipping_existing(&app.state.db, rows, |_| {}).await.unwrap();
        let (status, _, body) = parts(app.get("/urls/77/analytics").await).await;
        assert_eq!(status, 200);
        assert_eq!(body["total_events"], 0);
        assert_eq!(body["event_counts"], json!({}));
        assert_eq!(body["latest_event_at"], Value::Null);
        assert_eq!(key_set(&body).len(), 8);
    }
}

backend_test! {
    async fn analytics_of_an_unknown_link_is_404_without_x_cache(app) {
        for path in ["/urls/424242/analytics", "/urls/99999999999999999999/analytics"] {
            let (status, cache, body) = parts(app.get(path).await).await;
            assert_eq!((status, cache, body), (404, None, json!({"error": "URL not found"})), "{path}");
        }
        for path in ["/urls/abc/analytics", "/urls/-1/analytics"] {
            let (status, _, body) = parts(app.get(path).await).await;
            assert_eq!((status, body), (404, json!({"error": "Not found"})), "{path}");
        }
    }
}

backend_test! {
    async fn analytics_second_read_is_a_hit_and_a_redirect_shows_after_ingestion(app) {
        let url = app.create_url("https://example.com/a").await;
        let path = format!("/urls/{}/analytics", url["id"]);
        let (_, cache, first) = parts(app.get(&path).await).await;
        assert_eq!(cache.as_deref(), Some("MISS"));
        let (_, cache, second) = parts(app.get(&path).await).await;
        assert_eq!((cache.as_deref(), &second), (Some("HIT"), &first));

        assert_eq!(app.get(&format!("/r/{}", url["short_code"].as_str().unwrap())).await.status(), 302);
        app.run_pending_jobs().await;
        let (_, cache, after) = parts(app.get(&path).await).await;
        assert_eq!(cache.as_deref(), Some("MISS"), "ingestion dropped the cached analytics");
        assert_eq!((after["redirect_count"].as_i64(), after["total_events"].as_i64()), (Some(1), Some(2)));
        assert_eq!(after["event_counts"], json!({"created": 1, "redirect": 1}));

        // A posted event and an update are visible at once too.
        app.post("/events", &json!({"event_type": "click", "url_id": url["id"]})).await;
        let (_, cache, body) = parts(app.get(&path).await).await;
        assert_eq!((cache.as_deref(), body["click_count"].as_i64()), (Some("MISS"), Some(1)));
        app.put(&format!("/urls/{}", url["id"]), &json!({"is_active": false})).await;
        let (_, cache, body) = parts(app.get(&path).await).await;
        assert_eq!((cache.as_deref(), body["event_counts"]["updated"].as_i64()), (Some("MISS"), Some(1)));
    }
}

backend_test! {
    async fn analytics_stay_readable_for_an_inactive_link(app) {
        let url = app.create_url("https://example.com/a").await;
        app.put(&format!("/urls/{}", url["id"]), &json!({"is_active": false})).await;
        let (status, _, body) = parts(app.get(&format!("/urls/{}/analytics", url["id"])).await).await;
        assert_eq!((status, body["total_events"].as_i64()), (200, Some(2)));
    }
}

/// The embedded default keeps its real-time counters in process: a restart rebuilds them from
/// the events, so totals, hourly buckets and unique visitors read the same afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_counters_read_the_same_after_a_restart() {
    let app = crate::helpers::TestApp::spawn_with(crate::helpers::Backend::Sqlite, |c| {
        c.trusted_proxy = Some("127.0.0.1".parse().unwrap());
    })
    .await;
    let url = app.create_url("https://example.com/restart").await;
    let code = url["short_code"].as_str().unwrap().to_owned();
    for visitor in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.2",
        "198.51.100.3",
    ] {
        let resp = app
            .client
            .get(app.url(&format!("/r/{code}")))
            .header("x-forwarded-for", visitor)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
    }
    app.run_pending_jobs().await;
    let path = format!("/urls/{}/analytics/realtime", url["id"]);
    let before: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(
        (&before["total_clicks"], &before["unique_visitors"]),
        (&json!(4), &json!(3)),
        "{before}"
    );
    // A new process's state over the same database file.
    let restarted = app.spawn_sibling().await;
    let after: Value = restarted.get(&path).await.json().await.unwrap();
    assert_eq!(after["total_clicks"], before["total_clicks"]);
    assert_eq!(after["unique_visitors"], before["unique_visitors"]);
    assert_eq!(after["hourly"], before["hourly"], "same hourly buckets");
}
