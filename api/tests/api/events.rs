//! Section 6 (events): list with filters and pagination, read one, and `POST /events` with
//! every 400 in order, then the 404s.

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{TestApp, parts};

async fn post_raw(app: &TestApp, raw: &str) -> (u16, Option<String>, Value) {
    parts(
        app.send_raw(Method::POST, "/events", "application/json", raw.to_owned())
            .await,
    )
    .await
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

backend_test! {
    async fn post_event_records_a_client_event_with_trimmed_type(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let url = app.create_url("https://example.com/e").await;
        let resp = app.post("/events", &json!({"event_type": "  click ", "url_id": url["id"], "user_id": user["id"], "details": {"ref": "mail", "n": [1, 2]}})).await;
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let (status, cache, event) = parts(resp).await;
        assert_eq!((status, cache), (201, None));
        assert_eq!(event.as_object().unwrap().len(), 6, "{event}");
        assert_eq!((&event["event_type"], &event["url_id"], &event["user_id"]), (&json!("click"), &url["id"], &user["id"]));
        assert_eq!(event["details"], json!({"ref": "mail", "n": [1, 2]}));
        let ts = chrono::NaiveDateTime::parse_from_str(event["timestamp"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S").unwrap();
        assert!((chrono::Utc::now().naive_utc() - ts).num_seconds().abs() < 60);
        // Written before the response.
        let (status, cache, fetched) = parts(app.get(&format!("/events/{}", event["id"])).await).await;
        assert_eq!((status, cache, fetched), (200, None, event));
    }
}

backend_test! {
    async fn post_event_accepts_details_and_user_id_null_or_omitted(app) {
        let url = app.create_url("https://example.com/e").await;
        for body in [
            json!({"event_type": "click", "url_id": url["id"]}),
            json!({"event_type": "click", "url_id": url["id"], "details": null, "user_id": null}),
            json!({"event_type": "click", "url_id": url["id"], "details": {}}),
        ] {
            let (status, _, event) = parts(app.post("/events", &body).await).await;
            assert_eq!(status, 201, "{body} -> {event}");
            assert_eq!(event["user_id"], Value::Null);
            assert_eq!(event["details"], body.get("details").cloned().unwrap_or(Value::Null));
        }
    }
}

backend_test! {
    async fn post_event_reports_every_400_in_the_contract_order(app) {
        let url = app.create_url("https://example.com/e").await;
        let id = url["id"].clone();
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "JSON body must be an object"),
            (json!("click"), "JSON body must be an object"),
            (json!(null), "JSON body must be an object"),
            (json!({"url_id": "x", "details": 1}), "Field 'event_type' is required"),
            (json!({"event_type": null, "url_id": "x"}), "Field 'event_type' must be a non-empty string"),
            (json!({"event_type": 5}), "Field 'event_type' must be a non-empty string"),
            (json!({"event_type": "   "}), "Field 'event_type' must be a non-empty string"),
            (json!({"event_type": "e".repeat(65), "url_id": id}), "Field 'event_type' must be a non-empty string"),
            (json!({"event_type": "click", "user_id": "x", "details": 1}), "Field 'url_id' is required"),
            (json!({"event_type": "click", "url_id": null}), "Field 'url_id' must be an integer"),
            (json!({"event_type": "click", "url_id": 1.5}), "Field 'url_id' must be an integer"),
            (json!({"event_type": "click", "url_id": 1.0}), "Field 'url_id' must be an integer"),
            (json!({"event_type": "click", "url_id": "1"}), "Field 'url_id' must be an integer"),
            (json!({"event_type": "click", "url_id": true, "user_id": "x"}), "Field 'url_id' must be an integer"),
            (json!({"event_type": "click", "url_id": id, "user_id": "x", "details": 1}), "Field 'user_id' must be an integer"),
            (json!({"event_type": "click", "url_id": id, "user_id": 2.5}), "Field 'user_id' must be an integer"),
            (json!({"event_type": "click", "url_id": id, "user_id": false}), "Field 'user_id' must be an integer"),
            (json!({"event_type": "click", "url_id": 424242, "details": [1]}), "Field 'details' must be a JSON object"),
            (json!({"event_type": "click", "url_id": id, "details": "x"}), "Field 'details' must be a JSON object"),
            (json!({"event_type": "click", "url_id": id, "details": 3}), "Field 'details' must be a JSON object"),
        ];
        for (body, message) in cases {
            let (status, cache, got) = parts(app.post("/events", &body).await).await;
            assert_eq!((status, cache, got), (400, None, json!({ "error": message })), "{body}");
        }
        for (ct, raw) in [("application/json", ""), ("application/json", "{nope"), ("text/plain", r#"{"event_type":"click","url_id":1}"#)] {
            let (status, _, got) = parts(app.send_raw(Method::POST, "/events", ct, raw).await).await;
            assert_eq!((status, got), (400, json!({"error": "JSON body must be an object"})), "{ct} {raw}");
        }
        // Exactly 64 characters is fine.
        assert_eq!(app.post("/events", &json!({"event_type": "e".repeat(64), "url_id": id})).await.status(), 201);
    }
}

backend_test! {
    async fn post_event_answers_404_for_unknown_url_then_unknown_user(app) {
        let url = app.create_url("https://example.com/e").await;
        let url_missing = json!({"error": "URL not found"});
        let user_missing = json!({"error": "User not found"});
        assert_eq!(parts(app.post("/events", &json!({"event_type": "click", "url_id": 424242, "user_id": 424242})).await).await, (404, None, url_missing.clone()));
        assert_eq!(parts(app.post("/events", &json!({"event_type": "click", "url_id": -1})).await).await.2, url_missing);
        assert_eq!(post_raw(&app, r#"{"event_type": "click", "url_id": 99999999999999999999}"#).await, (404, None, url_missing.clone()));
        assert_eq!(post_raw(&app, r#"{"event_type": "click", "url_id": -99999999999999999999}"#).await.2, url_missing);
        assert_eq!(parts(app.post("/events", &json!({"event_type": "click", "url_id": url["id"], "user_id": 424242})).await).await, (404, None, user_missing.clone()));
        let raw = format!(r#"{{"event_type": "click", "url_id": {}, "user_id": 99999999999999999999}}"#, url["id"]);
        assert_eq!(post_raw(&app, &raw).await, (404, None, user_missing));
        let (_, _, events) = parts(app.get(&format!("/events?url_id={}", url["id"])).await).await;
        assert_eq!(events.as_array().unwrap().len(), 1, "only the created event");
    }
}

backend_test! {
    async fn get_event_answers_the_event_or_404(app) {
        let url = app.create_url("https://example.com/e").await;
        let (_, _, events) = parts(app.get("/events").await).await;
        let created = events[0].clone();
        assert_eq!(created["event_type"], "created");
        let (status, cache, body) = parts(app.get(&format!("/events/{}", created["id"])).await).await;
        assert_eq!((status, cache, body), (200, None, created));
        let (status, cache, body) = parts(app.get("/events/424242").await).await;
        assert_eq!((status, cache, body), (404, None, json!({"error": "Event not found"})));
        let (status, _, body) = parts(app.get("/events/99999999999999999999").await).await;
        assert_eq!((status, body), (404, json!({"error": "Event not found"})));
        assert_eq!(url["id"], events[0]["url_id"]);
    }
}

backend_test! {
    async fn get_events_filters_by_url_user_and_exact_type(app) {
        let ada = app.create_user("ada", "ada@x.io").await;
        let a = app.create_url("https://example.com/a").await;
        let b = app.create_url("https://example.com/b").await;
        let post = |body: Value| {
            let app = &app;
            async move { parts(app.post("/events", &body).await).await.2 }
        };
        let c1 = post(json!({"event_type": "click", "url_id": a["id"], "user_id": ada["id"]})).await;
        let c2 = post(json!({"event_type": "click", "url_id": b["id"]})).await;
        let v1 = post(json!({"event_type": "view", "url_id": a["id"], "user_id": ada["id"]})).await;
        let get = |q: String| {
            let app = &app;
            async move {
                let (status, cache, body) = parts(app.get(&format!("/events{q}")).await).await;
                assert_eq!((status, cache), (200, None), "{q}");
                body
            }
        };
        let all = get(String::new()).await;
        assert_eq!(all.as_array().unwrap().len(), 5, "two created + three posted");
        let mut sorted = ids(&all);
        sorted.sort_unstable();
        assert_eq!(ids(&all), sorted, "ordered by id");
        assert_eq!(get(format!("?url_id={}", a["id"])).await.as_array().unwrap().len(), 3);
        assert_eq!(get(format!("?user_id={}", ada["id"])).await, json!([c1, v1]));
        assert_eq!(get("?event_type=click".into()).await, json!([c1, c2]));
        assert_eq!(get(format!("?event_type=click&url_id={}", b["id"])).await, json!([c2]));
        assert_eq!(get(format!("?event_type=view&user_id={}&url_id={}", ada["id"], a["id"])).await, json!([v1]));
        // Exact match: no case folding, no trimming, no prefix match.
        for q in ["?event_type=Click", "?event_type=%20click", "?event_type=cli", "?event_type=", "?url_id=424242", "?user_id=-1", "?url_id=99999999999999999999"] {
            assert_eq!(get(q.into()).await, json!([]), "{q}");
        }
    }
}

backend_test! {
    async fn get_events_rejects_non_integer_filters(app) {
        for (q, message) in [
            ("url_id=abc", "Query parameter 'url_id' must be an integer"),
            ("url_id=1.5", "Query parameter 'url_id' must be an integer"),
            ("url_id=", "Query parameter 'url_id' must be an integer"),
            ("user_id=x", "Query parameter 'user_id' must be an integer"),
            ("user_id=true", "Query parameter 'user_id' must be an integer"),
            ("page=0", "Pagination parameters must be positive integers"),
            ("per_page=-1", "Pagination parameters must be positive integers"),
            ("page=a&per_page=2", "Pagination parameters must be positive integers"),
            ("url_id=99999999999999999999&page=0", "Pagination parameters must be positive integers"),
        ] {
            let (status, cache, body) = parts(app.get(&format!("/events?{q}")).await).await;
            assert_eq!((status, cache, body), (400, None, json!({ "error": message })), "{q}");
        }
    }
}

backend_test! {
    async fn get_events_paginates_like_users(app) {
        let url = app.create_url("https://example.com/p").await;
        for _ in 0..4 {
            app.post("/events", &json!({"event_type": "click", "url_id": url["id"]})).await;
        }
        let all = ids(&parts(app.get("/events").await).await.2);
        assert_eq!(all.len(), 5);
        let page = |q: &'static str| {
            let app = &app;
            async move { ids(&parts(app.get(&format!("/events?{q}")).await).await.2) }
        };
        assert_eq!(page("page=1&per_page=2").await, all[0..2]);
        assert_eq!(page("page=3&per_page=2").await, all[4..5]);
        assert_eq!(page("page=4&per_page=2").await, Vec::<i64>::new());
        assert_eq!(page("per_page=3").await, all[0..3]);
        assert_eq!(page("page=1").await, all, "per_page defaults to 20");
        assert_eq!(page("event_type=click&page=2&per_page=3").await, all[4..5], "filters apply before paging");
        assert_eq!(page("page=99999999999999999999").await, Vec::<i64>::new());
    }
}

backend_test! {
    async fn an_unpaged_list_is_streamed_whole_and_equals_the_pages(app) {
        // 5,000 events: several 64 KiB chunks of the streamed array.
        let url = app.create_url("https://example.com/many").await;
        let id = url["id"].as_i64().unwrap();
        let rows: Vec<entity::event::ActiveModel> = (0..5_000)
            .map(|i| entity::event::ActiveModel {
                url_id: sea_orm::ActiveValue::Set(Some(id)),
                event_type: sea_orm::ActiveValue::Set("view".to_owned()),
                timestamp: sea_orm::ActiveValue::Set(api::models::now()),
                details: sea_orm::ActiveValue::Set(Some(json!({"n": i, "pad": "x".repeat(40)}))),
                ..Default::default()
            })
            .collect();
        for chunk in rows.chunks(1_000) {
            sea_orm::EntityTrait::insert_many(chunk.to_vec()).exec_without_returning(&app.state.db).await.unwrap();
        }
        let resp = app.get("/events").await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("content-length").is_none(), "streamed, not buffered");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let all: Vec<Value> = resp.json().await.unwrap();
        assert_eq!(all.len(), 5_001, "the link's creation and the 5,000 views");
        let mut paged = Vec::new();
        for page in 1..=6 {
            let (_, _, body) = parts(app.get(&format!("/events?page={page}&per_page=1000")).await).await;
            paged.extend(body.as_array().unwrap().iter().cloned());
        }
        assert_eq!(all, paged);
        assert_eq!(all[4_000]["details"]["n"], 3_999);
        let (_, _, users) = parts(app.get("/users").await).await;
        assert_eq!(users, json!([]));
    }
}
