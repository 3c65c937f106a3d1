//! Section 4 (URLs): create (alias, every 400 in order, idempotency, the created event), list
//! (filters, limit, cache key), update (rules, the updated event) and delete.

use std::fmt::Write as _;

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{TestApp, parts};

async fn events_of(app: &TestApp, url: &Value) -> Vec<Value> {
    let (_, _, body) = parts(app.get(&format!("/events?url_id={}", url["id"])).await).await;
    body.as_array().unwrap().clone()
}

async fn bad(app: &TestApp, body: &Value, message: &str) {
    let (status, cache, got) = parts(app.post("/urls", body).await).await;
    assert_eq!((status, cache), (400, None), "{body} -> {got}");
    assert_eq!(got, json!({ "error": message }), "{body}");
}

backend_test! {
    async fn post_url_creates_a_link_with_a_created_event_and_bypass(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let resp = app.post("/urls", &json!({"original_url": "  https://example.com/a?b=c  ", "title": "  Hello  ", "user_id": user["id"]})).await;
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let (status, cache, url) = parts(resp).await;
        assert_eq!((status, cache.as_deref()), (201, Some("BYPASS")));
        let keys: Vec<&str> = url.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 8, "{url}");
        assert_eq!(url["original_url"], "https://example.com/a?b=c");
        assert_eq!(url["title"], "Hello");
        assert_eq!(url["user_id"], user["id"]);
        assert_eq!(url["is_active"], true);
        assert_eq!(url["created_at"], url["updated_at"]);
        let code = url["short_code"].as_str().unwrap();
        assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_alphanumeric()), "{code}");
        // The created event is written before the response.
        let events = events_of(&app, &url).await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["event_type"], "created");
        assert_eq!(events[0]["url_id"], url["id"]);
        assert_eq!(events[0]["user_id"], user["id"]);
        assert_eq!(events[0]["timestamp"], url["created_at"]);
        assert_eq!(events[0]["details"], json!({"short_code": code, "original_url": "https://example.com/a?b=c"}));
        // No owner: the event has none either; blank titles are null.
        let (_, _, anon) = parts(app.post("/urls", &json!({"original_url": "https://example.com/anon", "title": "   "})).await).await;
        assert_eq!((&anon["user_id"], &anon["title"]), (&Value::Null, &Value::Null));
        assert_eq!(events_of(&app, &anon).await[0]["user_id"], Value::Null);
        assert_ne!(anon["short_code"], url["short_code"]);
    }
}

backend_test! {
    async fn post_url_accepts_long_url_when_original_url_is_absent_null_or_empty(app) {
        for (i, body) in [
            json!({"long_url": "https://example.com/1"}),
            json!({"original_url": null, "long_url": "https://example.com/2"}),
            json!({"original_url": "", "long_url": "https://example.com/3"}),
        ]
        .into_iter()
        .enumerate()
        {
            let (status, _, url) = parts(app.post("/urls", &body).await).await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(url["original_url"], format!("https://example.com/{}", i + 1));
        }
        // original_url wins when given.
        let (_, _, url) = parts(app.post("/urls", &json!({"original_url": "https://example.com/win", "long_url": "https://example.com/lose"})).await).await;
        assert_eq!(url["original_url"], "https://example.com/win");
        // A blank original_url is not "absent": it is the URL, and it is empty.
        bad(&app, &json!({"original_url": "  ", "long_url": "https://example.com/x"}), "Field 'original_url' must not be empty").await;
    }
}

backend_test! {
    async fn post_url_reports_every_400_in_the_contract_order(app) {
        let long = format!("https://example.com/{}", "a".repeat(2049 - 20));
        assert_eq!(long.chars().count(), 2049);
        let cases: Vec<(Value, &str)> = vec![
            (json!([{"original_url": "https://example.com"}]), "JSON body must be an object"),
            (json!("https://example.com"), "JSON body must be an object"),
            (json!({}), "Field 'original_url' is required"),
            (json!({"original_url": null, "long_url": ""}), "Field 'original_url' is required"),
            (json!({"title": 5, "user_id": "x"}), "Field 'original_url' is required"),
            (json!({"original_url": 5, "title": 5}), "Field 'original_url' must be a string"),
            (json!({"original_url": ["https://example.com"]}), "Field 'original_url' must be a string"),
            (json!({"long_url": true}), "Field 'original_url' must be a string"),
            (json!({"original_url": " \t\n ", "title": 5}), "Field 'original_url' must not be empty"),
            (json!({"original_url": "ftp://x.example", "title": 5, "user_id": "x"}), "Field 'title' must be a string"),
            (json!({"original_url": "ftp://x.example", "title": {"a": 1}}), "Field 'title' must be a string"),
            (json!({"original_url": "ftp://x.example", "user_id": "1"}), "Field 'user_id' must be an integer"),
            (json!({"original_url": "ftp://x.example", "user_id": 1.5}), "Field 'user_id' must be an integer"),
            (json!({"original_url": "ftp://x.example", "user_id": true}), "Field 'user_id' must be an integer"),
            (json!({"original_url": "ftp://x.example", "user_id": 999_999}), "Field 'original_url' must be a valid http or https URL"),
            (json!({"original_url": format!("ftp://{}", "a".repeat(3000)), "user_id": 999_999}), "Field 'original_url' must be a valid http or https URL"),
            (json!({"original_url": long.clone(), "user_id": 999_999}), "Field 'original_url' must not exceed 2048 characters"),
            (json!({"original_url": "https://example.com/ok", "user_id": 999_999}), "Field 'user_id' must reference an existing user"),
            (json!({"original_url": "https://example.com/ok", "user_id": -1}), "Field 'user_id' must reference an existing user"),
        ];
        for (body, message) in cases {
            bad(&app, &body, message).await;
        }
        // An integer too large to be an id is an unknown user, not a type error.
        let resp = app.send_raw(Method::POST, "/urls", "application/json", r#"{"original_url": "https://example.com/ok", "user_id": 99999999999999999999}"#).await;
        assert_eq!(parts(resp).await.2, json!({"error": "Field 'user_id' must reference an existing user"}));
        assert_eq!(parts(app.get("/urls").await).await.2, json!([]), "nothing was created");
    }
}

backend_test! {
    async fn post_url_accepts_only_literal_http_or_https_with_a_host(app) {
        for bad_url in [
            "http:/x.example", "https:x.example", "//x.example", "x.example", "javascript:alert(1)",
            "data:text/html,hi", "ftp://x.example", "http://", "https://", "http:///path", "http://:80/",
            "http://user@/", "mailto:a@x.io", "httpx://x.example", "http//x.example",
        ] {
            bad(&app, &json!({"original_url": bad_url}), "Field 'original_url' must be a valid http or https URL").await;
        }
        for ok in ["HTTP://X.example", "hTTpS://x.example/p", "http://localhost:8080", "https://user:pw@x.example/", "http://[::1]/", "http://127.0.0.1"] {
            let (status, _, url) = parts(app.post("/urls", &json!({"original_url": ok})).await).await;
            assert_eq!(status, 201, "{ok}");
            assert_eq!(url["original_url"], ok, "stored exactly as sent");
        }
        // Exactly 2048 characters is allowed.
        let limit = format!("https://example.com/{}", "b".repeat(2048 - 20));
        assert_eq!(parts(app.post("/urls", &json!({"original_url": limit})).await).await.0, 201);
    }
}

backend_test! {
    async fn post_url_stores_the_url_exactly_including_unicode(app) {
        let iri = "https://bücher.example/パス/ä?q=ü&r=日本#frag";
        let (status, _, url) = parts(app.post("/urls", &json!({"original_url": format!("\n {iri} \t")})).await).await;
        assert_eq!(status, 201);
        assert_eq!(url["original_url"], iri);
        let (_, _, fetched) = parts(app.get(&format!("/urls/{}", url["id"])).await).await;
        assert_eq!(fetched["original_url"], iri);
        assert_eq!(events_of(&app, &url).await[0]["details"]["original_url"], iri);
        // 2048 characters of multi-byte text fit the column (the limit counts characters).
        let wide = format!("https://example.com/{}", "パ".repeat(2048 - 20));
        let (status, _, url) = parts(app.post("/urls", &json!({"original_url": wide})).await).await;
        assert_eq!((status, url["original_url"].as_str()), (201, Some(wide.as_str())));
    }
}

backend_test! {
    async fn post_url_for_an_existing_active_url_answers_200_unchanged_without_an_event(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let first = app.create_url("https://example.com/same").await;
        let (status, cache, again) = parts(app.post("/urls", &json!({"original_url": "  https://example.com/same ", "title": "Other", "user_id": user["id"]})).await).await;
        assert_eq!((status, cache.as_deref()), (200, Some("BYPASS")));
        assert_eq!(again, first, "the existing mapping, unchanged");
        let (status, _, alias) = parts(app.post("/urls", &json!({"long_url": "https://example.com/same"})).await).await;
        assert_eq!((status, alias), (200, first.clone()));
        assert_eq!(events_of(&app, &first).await.len(), 1, "no event for the idempotent answer");
        // The comparison is exact: another case is another URL.
        assert_eq!(app.post("/urls", &json!({"original_url": "https://example.com/SAME"})).await.status(), 201);
        // Inactive links do not count; with several active ones the lowest id wins.
        let path = format!("/urls/{}", first["id"]);
        assert_eq!(app.put(&path, &json!({"is_active": false})).await.status(), 200);
        let (status, _, second) = parts(app.post("/urls", &json!({"original_url": "https://example.com/same"})).await).await;
        assert_eq!(status, 201);
        assert_ne!(second["id"], first["id"]);
        assert_eq!(app.put(&path, &json!({"is_active": true})).await.status(), 200);
        let (status, _, winner) = parts(app.post("/urls", &json!({"original_url": "https://example.com/same"})).await).await;
        assert_eq!((status, &winner["id"]), (200, &first["id"]));
    }
}

backend_test! {
    async fn post_url_does_not_prefill_caches_and_invalidates_lists(app) {
        let (_, cache, list) = parts(app.get("/urls").await).await;
        assert_eq!((cache.as_deref(), list), (Some("MISS"), json!([])));
        assert_eq!(parts(app.get("/urls").await).await.1.as_deref(), Some("HIT"));
        let url = app.create_url("https://example.com/new").await;
        let (_, cache, list) = parts(app.get("/urls").await).await;
        assert_eq!((cache.as_deref(), list), (Some("MISS"), json!([url.clone()])));
        assert_eq!(parts(app.get(&format!("/urls/{}", url["id"])).await).await.1.as_deref(), Some("MISS"));
    }
}

backend_test! {
    async fn get_urls_filters_by_user_and_active_and_honours_limit(app) {
        let ada = app.create_user("ada", "ada@x.io").await;
        let mut urls = Vec::new();
        for i in 0..4 {
            let owner = if i % 2 == 0 { ada["id"].clone() } else { Value::Null };
            let (_, _, url) = parts(app.post("/urls", &json!({"original_url": format!("https://example.com/{i}"), "user_id": owner})).await).await;
            urls.push(url);
        }
        let (_, _, off) = parts(app.put(&format!("/urls/{}", urls[2]["id"]), &json!({"is_active": false})).await).await;
        urls[2] = off;
        let get = |q: String| {
            let app = &app;
            async move { parts(app.get(&format!("/urls{q}")).await).await }
        };
        assert_eq!(get(String::new()).await.2, json!(urls));
        assert_eq!(get(format!("?user_id={}", ada["id"])).await.2, json!([urls[0], urls[2]]));
        assert_eq!(get(format!("?user_id=%20{}%20", ada["id"])).await.2, json!([urls[0], urls[2]]));
        assert_eq!(get("?is_active=false".into()).await.2, json!([urls[2]]));
        assert_eq!(get("?is_active=%20TRUE%20".into()).await.2, json!([urls[0], urls[1], urls[3]]));
        assert_eq!(get(format!("?user_id={}&is_active=True", ada["id"])).await.2, json!([urls[0]]));
        assert_eq!(get("?limit=2".into()).await.2, json!([urls[0], urls[1]]));
        for (q, n) in [("0", 1), ("-7", 1), ("1", 1), ("3", 3), ("abc", 4), ("", 4), ("2.5", 4), ("99999999999999999999", 4)] {
            let (status, cache, body) = get(format!("?limit={q}")).await;
            assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(n)), "limit={q}");
            assert!(cache.is_some());
        }
        // An unknown user (even one too large to be an id) is an empty list.
        for q in ["?user_id=424242", "?user_id=-3", "?user_id=99999999999999999999"] {
            let (status, cache, body) = get(q.into()).await;
            assert_eq!((status, body), (200, json!([])), "{q}");
            assert!(matches!(cache.as_deref(), Some("HIT" | "MISS")));
        }
    }
}

backend_test! {
    async fn get_urls_default_limit_is_100_and_the_cap_is_500(app) {
        let csv = (1..=501).fold(String::from("id,user_id,short_code,original_url\n"), |mut csv, i| {
            let _ = writeln!(csv, "{i},,c{i:05},https://example.com/{i}");
            csv
        });
        let rows = api::import::parse_urls(csv.as_bytes()).unwrap();
        api::import::insert_skipping_existing(&app.state.db, rows, |_| {}).await.unwrap();
        // No list was read before, so nothing cached hides the imported rows.
        for (q, n) in [("", 100), ("?limit=nope", 100), ("?limit=500", 500), ("?limit=501", 500), ("?limit=100000", 500), ("?limit=99999999999999999999", 500), ("?limit=-99999999999999999999", 1)] {
            let (_, _, body) = parts(app.get(&format!("/urls{q}")).await).await;
            assert_eq!(body.as_array().unwrap().len(), n, "{q}");
        }
    }
}

backend_test! {
    async fn get_urls_rejects_bad_user_id_and_is_active_without_x_cache(app) {
        for (q, message) in [
            ("user_id=abc", "Query parameter 'user_id' must be an integer"),
            ("user_id=1.5", "Query parameter 'user_id' must be an integer"),
            ("user_id=", "Query parameter 'user_id' must be an integer"),
            ("user_id=true", "Query parameter 'user_id' must be an integer"),
            ("is_active=yes", "Query parameter 'is_active' must be true or false"),
            ("is_active=1", "Query parameter 'is_active' must be true or false"),
            ("is_active=", "Query parameter 'is_active' must be true or false"),
        ] {
            let (status, cache, body) = parts(app.get(&format!("/urls?{q}")).await).await;
            assert_eq!((status, cache, body), (400, None, json!({ "error": message })), "{q}");
        }
    }
}

backend_test! {
    async fn get_urls_cache_key_covers_limit_and_filters(app) {
        for i in 0..3 {
            app.create_url(&format!("https://example.com/{i}")).await;
        }
        let (_, cache, one) = parts(app.get("/urls?limit=1").await).await;
        assert_eq!((cache.as_deref(), one.as_array().unwrap().len()), (Some("MISS"), 1));
        let (_, cache, two) = parts(app.get("/urls?limit=2").await).await;
        assert_eq!((cache.as_deref(), two.as_array().unwrap().len()), (Some("MISS"), 2));
        let (_, cache, again) = parts(app.get("/urls?limit=1").await).await;
        assert_eq!((cache.as_deref(), again), (Some("HIT"), one));
        let (_, cache, _) = parts(app.get("/urls?limit=1&is_active=false").await).await;
        assert_eq!(cache.as_deref(), Some("MISS"));
    }
}

backend_test! {
    async fn get_url_answers_the_link_with_x_cache_or_404(app) {
        let url = app.create_url("https://example.com/one").await;
        let path = format!("/urls/{}", url["id"]);
        assert_eq!(parts(app.get(&path).await).await, (200, Some("MISS".into()), url.clone()));
        assert_eq!(parts(app.get(&path).await).await, (200, Some("HIT".into()), url.clone()));
        let (status, cache, body) = parts(app.get("/urls/4242").await).await;
        assert_eq!((status, cache, body), (404, None, json!({"error": "URL not found"})));
    }
}

backend_test! {
    async fn put_url_changes_title_and_is_active_with_an_updated_event(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let (_, _, url) = parts(app.post("/urls", &json!({"original_url": "https://example.com/p", "title": "Old", "user_id": user["id"]})).await).await;
        let path = format!("/urls/{}", url["id"]);
        let (status, cache, updated) = parts(app.put(&path, &json!({"title": "  New  "})).await).await;
        assert_eq!((status, cache.as_deref()), (200, Some("BYPASS")));
        assert_eq!(updated["title"], "New");
        assert_eq!((&updated["created_at"], &updated["short_code"]), (&url["created_at"], &url["short_code"]));
        assert!(updated["updated_at"].as_str() >= url["updated_at"].as_str());
        let events = events_of(&app, &url).await;
        assert_eq!(events.len(), 2);
        let event = &events[1];
        assert_eq!((&event["event_type"], &event["user_id"], &event["url_id"]), (&json!("updated"), &user["id"], &url["id"]));
        assert_eq!(event["details"], json!({"title": "New", "is_active": true}));
        assert_eq!(event["timestamp"], updated["updated_at"]);
        // Deactivate; blank title becomes null; the details carry the new values.
        let (_, _, off) = parts(app.put(&path, &json!({"title": "   ", "is_active": false})).await).await;
        assert_eq!((&off["title"], &off["is_active"]), (&Value::Null, &json!(false)));
        assert_eq!(events_of(&app, &url).await[2]["details"], json!({"title": null, "is_active": false}));
        let (_, _, on) = parts(app.put(&path, &json!({"title": null, "is_active": true})).await).await;
        assert_eq!(on["is_active"], true);
        assert_eq!(events_of(&app, &url).await[3]["details"], json!({"title": null, "is_active": true}));
        assert_eq!(parts(app.get(&path).await).await.2, on);
    }
}

backend_test! {
    async fn put_url_with_nothing_to_change_answers_200_unchanged_without_an_event(app) {
        let (_, _, url) = parts(app.post("/urls", &json!({"original_url": "https://example.com/p", "title": "Same"})).await).await;
        let path = format!("/urls/{}", url["id"]);
        for body in [json!({}), json!({"title": " Same "}), json!({"is_active": true}), json!({"title": "Same", "is_active": true})] {
            let (status, cache, got) = parts(app.put(&path, &body).await).await;
            assert_eq!((status, cache.as_deref(), got), (200, Some("BYPASS"), url.clone()), "{body}");
        }
        assert_eq!(events_of(&app, &url).await.len(), 1, "only the created event");
    }
}

backend_test! {
    async fn put_url_rejects_unknown_keys_sorted_and_non_boolean_is_active(app) {
        let url = app.create_url("https://example.com/p").await;
        let path = format!("/urls/{}", url["id"]);
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "JSON body must be an object"),
            (json!("title"), "JSON body must be an object"),
            (json!({"zeta": 1, "alpha": 2, "title": 5}), "Field 'alpha' cannot be updated"),
            (json!({"short_code": "abc", "original_url": "https://x.example"}), "Field 'original_url' cannot be updated"),
            (json!({"user_id": 1}), "Field 'user_id' cannot be updated"),
            (json!({"id": 1, "is_active": "no"}), "Field 'id' cannot be updated"),
            (json!({"title": 5, "is_active": "false"}), "Field 'title' must be a string"),
            (json!({"title": ["x"]}), "Field 'title' must be a string"),
            (json!({"title": true}), "Field 'title' must be a string"),
            (json!({"is_active": "false"}), "Field 'is_active' must be a boolean"),
            (json!({"is_active": 0}), "Field 'is_active' must be a boolean"),
            (json!({"is_active": null}), "Field 'is_active' must be a boolean"),
        ];
        for (body, message) in cases {
            let (status, cache, got) = parts(app.put(&path, &body).await).await;
            assert_eq!((status, cache, got), (400, None, json!({ "error": message })), "{body}");
        }
        let resp = app.send_raw(Method::PUT, &path, "application/json", "not json").await;
        assert_eq!(parts(resp).await.2, json!({"error": "JSON body must be an object"}));
        assert_eq!(events_of(&app, &url).await.len(), 1);
        assert_eq!(parts(app.get(&path).await).await.2, url, "nothing changed");
        // 404 comes first, whatever the body.
        let (status, _, body) = parts(app.put("/urls/4242", &json!({"bogus": 1})).await).await;
        assert_eq!((status, body), (404, json!({"error": "URL not found"})));
    }
}

backend_test! {
    async fn delete_url_removes_the_link_and_its_events_and_404s_afterwards(app) {
        let url = app.create_url("https://example.com/doomed").await;
        let other = app.create_url("https://example.com/kept").await;
        let code = url["short_code"].as_str().unwrap();
        let path = format!("/urls/{}", url["id"]);
        assert_eq!(app.post("/events", &json!({"event_type": "click", "url_id": url["id"]})).await.status(), 201);
        // Warm every cache of the link.
        assert_eq!(app.get(&path).await.status(), 200);
        assert_eq!(app.get(&format!("{path}/analytics")).await.status(), 200);
        assert_eq!(app.get(&format!("/r/{code}")).await.status(), 302);
        app.run_pending_jobs().await;
        assert_eq!(app.get("/urls").await.status(), 200);

        let resp = app.delete(&path).await;
        assert_eq!(resp.status(), 204);
        assert!(resp.headers().get("x-cache").is_none());
        assert!(resp.text().await.unwrap().is_empty());

        let not_found = json!({"error": "URL not found"});
        for p in [path.clone(), format!("{path}/analytics"), format!("/r/{code}"), format!("/urls/short/{code}"), format!("/urls/{code}/redirect")] {
            let (status, cache, body) = parts(app.get(&p).await).await;
            assert_eq!((status, cache, body), (404, None, not_found.clone()), "{p}");
        }
        assert_eq!(events_of(&app, &url).await, Vec::<Value>::new());
        assert_eq!(events_of(&app, &other).await.len(), 1, "other links keep their events");
        assert_eq!(parts(app.get("/urls").await).await.2, json!([other]));
        let (status, _, body) = parts(app.delete(&path).await).await;
        assert_eq!((status, body), (404, not_found));
    }
}

backend_test! {
    async fn deleting_a_link_deletes_its_real_time_counters_within_seconds(app) {
        let url = app.create_url("https://example.com/doomed-counters").await;
        let code = url["short_code"].as_str().unwrap().to_owned();
        for _ in 0..3 {
            assert_eq!(app.get(&format!("/r/{code}")).await.status(), 302);
        }
        app.run_pending_jobs().await;
        let now = api::models::now();
        assert_eq!(app.state.counters.read(&code, now).await.total, 3);
        assert_eq!(app.delete(&format!("/urls/{}", url["id"])).await.status(), 204);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = app.state.counters.read(&code, api::models::now()).await;
            let tombstones = sea_orm::ConnectionTrait::query_all(
                &app.state.db,
                &sea_orm::sea_query::Query::select().column("id").from("counter_tombstones").to_owned(),
            )
            .await
            .unwrap()
            .len();
            if left.total == 0 && left.unique_visitors == 0 && tombstones == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "counters left: {left:?}, tombstones {tombstones}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}
