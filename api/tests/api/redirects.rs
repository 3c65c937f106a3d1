//! Section 5 (redirects): the three paths and HEAD, `Location` as a valid URI, 404s, case
//! sensitivity, the HTML body, and exactly one `redirect` event per redirect.

use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{Backend, TestApp, parts};

fn paths(code: &str) -> [String; 3] {
    [
        format!("/r/{code}"),
        format!("/urls/short/{code}"),
        format!("/urls/{code}/redirect"),
    ]
}

async fn redirect_events(app: &TestApp, url: &Value) -> Vec<Value> {
    app.run_pending_jobs().await;
    let (_, _, body) = parts(
        app.get(&format!("/events?url_id={}&event_type=redirect", url["id"]))
            .await,
    )
    .await;
    body.as_array().unwrap().clone()
}

/// Creates links until one's code contains a letter (so that swapping case changes it).
async fn link_with_letters(app: &TestApp) -> Value {
    for i in 0..10 {
        let url = app
            .create_url(&format!("https://example.com/case/{i}"))
            .await;
        if url["short_code"]
            .as_str()
            .unwrap()
            .bytes()
            .any(|b| b.is_ascii_alphabetic())
        {
            return url;
        }
    }
    panic!("ten codes without a letter");
}

backend_test! {
    async fn the_three_redirect_paths_answer_302_with_location_and_html(app) {
        let url = app.create_url("https://example.com/landing?a=1&b=2").await;
        let code = url["short_code"].as_str().unwrap();
        for path in paths(code) {
            let resp = app.get(&path).await;
            assert_eq!(resp.status(), 302, "{path}");
            assert_eq!(resp.headers()["location"], "https://example.com/landing?a=1&b=2");
            assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
            let cache = resp.headers()["x-cache"].to_str().unwrap().to_owned();
            assert!(cache == "HIT" || cache == "MISS", "{cache}");
            let body = resp.text().await.unwrap();
            assert!(body.contains("Redirecting..."), "{body}");
            assert!(body.contains("href=\"https://example.com/landing?a=1&amp;b=2\""), "{body}");
        }
    }
}

backend_test! {
    async fn without_warming_the_redirect_cache_is_miss_then_hit_and_ingestion_keeps_it(app) {
        let app = TestApp::spawn_with(app.backend, |c| c.cache_warm_on_write = false).await;
        let url = app.create_url("https://example.com/hot").await;
        let path = format!("/r/{}", url["short_code"].as_str().unwrap());
        assert_eq!(app.get(&path).await.headers()["x-cache"], "MISS");
        assert_eq!(app.get(&path).await.headers()["x-cache"], "HIT");
        app.run_pending_jobs().await;
        assert_eq!(app.get(&path).await.headers()["x-cache"], "HIT", "click ingestion never touches the redirect cache");
        // Even a title-only change invalidates the redirect.
        app.put(&format!("/urls/{}", url["id"]), &json!({"title": "New"})).await;
        assert_eq!(app.get(&path).await.headers()["x-cache"], "MISS");
    }
}

backend_test! {
    async fn head_redirects_like_get_without_a_body(app) {
        let url = app.create_url("https://example.com/head").await;
        let code = url["short_code"].as_str().unwrap();
        for path in paths(code) {
            let resp = app.client.request(Method::HEAD, app.url(&path)).send().await.unwrap();
            assert_eq!(resp.status(), 302, "{path}");
            assert_eq!(resp.headers()["location"], "https://example.com/head");
            assert!(resp.headers().get("x-cache").is_some());
            assert!(resp.text().await.unwrap().is_empty());
        }
        // A HEAD is the same operation: each one is one click.
        assert_eq!(redirect_events(&app, &url).await.len(), 3);
        let resp = app.client.request(Method::HEAD, app.url("/r/zzzzzz")).send().await.unwrap();
        assert_eq!(resp.status(), 404);
    }
}

backend_test! {
    async fn location_of_an_iri_is_a_valid_uri_with_idna_host_and_uppercase_hex(app) {
        let cases = [
            ("https://bücher.example/パ?q=ü", "https://xn--bcher-kva.example/%E3%83%91?q=%C3%BC"),
            ("https://example.com/パス", "https://example.com/%E3%83%91%E3%82%B9"),
            ("http://例え.jp/", "http://xn--r8jz45g.jp/"),
            ("https://example.com:8443/a b", "https://example.com:8443/a%20b"),
            ("https://example.com/already%e3%83%91", "https://example.com/already%e3%83%91"),
        ];
        for (target, location) in cases {
            let url = app.create_url(target).await;
            assert_eq!(url["original_url"], target, "stored as sent");
            let resp = app.get(&format!("/r/{}", url["short_code"].as_str().unwrap())).await;
            assert_eq!(resp.status(), 302);
            assert_eq!(resp.headers()["location"], location, "{target}");
            assert!(resp.text().await.unwrap().contains(location));
        }
    }
}

backend_test! {
    async fn unknown_inactive_and_malformed_codes_are_404_url_not_found(app) {
        let url = app.create_url("https://example.com/off").await;
        let code = url["short_code"].as_str().unwrap().to_owned();
        assert_eq!(app.get(&format!("/r/{code}")).await.status(), 302);
        app.put(&format!("/urls/{}", url["id"]), &json!({"is_active": false})).await;
        let not_found = json!({"error": "URL not found"});
        for path in paths(&code) {
            let (status, cache, body) = parts(app.get(&path).await).await;
            assert_eq!((status, cache, body), (404, None, not_found.clone()), "{path}");
        }
        for bad in ["zzzzzz", "a-b", "%F0%9F%98%80", "abcdefghijklmnopq", "abc.def"] {
            for path in paths(bad) {
                let (status, _, body) = parts(app.get(&path).await).await;
                assert_eq!((status, body), (404, not_found.clone()), "{path}");
            }
        }
        // Reactivating restores it at once.
        app.put(&format!("/urls/{}", url["id"]), &json!({"is_active": true})).await;
        assert_eq!(app.get(&format!("/r/{code}")).await.status(), 302);
    }
}

backend_test! {
    async fn short_codes_are_case_sensitive(app) {
        let url = link_with_letters(&app).await;
        let code = url["short_code"].as_str().unwrap();
        let swapped: String = code
            .chars()
            .map(|c| if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        assert_ne!(swapped, code);
        assert_eq!(app.get(&format!("/r/{code}")).await.status(), 302);
        let (status, _, body) = parts(app.get(&format!("/r/{swapped}")).await).await;
        assert_eq!((status, body), (404, json!({"error": "URL not found"})));
    }
}

backend_test! {
    async fn each_redirect_is_exactly_one_redirect_event_with_only_the_short_code(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let (_, _, url) = parts(app.post("/urls", &json!({"original_url": "https://example.com/c", "user_id": user["id"]})).await).await;
        let code = url["short_code"].as_str().unwrap();
        for path in paths(code) {
            assert_eq!(app.get(&path).await.status(), 302);
        }
        assert_eq!(app.get(&format!("/r/{code}")).await.status(), 302);
        let events = redirect_events(&app, &url).await;
        assert_eq!(events.len(), 4, "one event per redirect, never two");
        for event in &events {
            assert_eq!(event.as_object().unwrap().len(), 6, "{event}");
            assert_eq!(event["url_id"], url["id"]);
            assert_eq!(event["user_id"], Value::Null, "a click has no user, even on an owned link");
            assert_eq!(event["event_type"], "redirect");
            assert_eq!(event["details"], json!({"short_code": code}));
        }
        // Flushing again does not duplicate anything.
        assert_eq!(redirect_events(&app, &url).await.len(), 4);
        let (_, _, analytics) = parts(app.get(&format!("/urls/{}/analytics", url["id"])).await).await;
        assert_eq!(analytics["redirect_count"], 4);
        // 404s are not clicks.
        app.get("/r/zzzzzz").await;
        app.run_pending_jobs().await;
        let (_, _, all) = parts(app.get("/events?event_type=redirect").await).await;
        assert_eq!(all.as_array().unwrap().len(), 4);
    }
}

backend_test! {
    async fn short_codes_are_six_base62_characters_unique_and_not_sequential(app) {
        const ALPHABET: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let value = |code: &str| code.chars().fold(0_i128, |n, c| n * 62 + ALPHABET.find(c).unwrap() as i128);
        let mut codes = Vec::new();
        for i in 0..5 {
            let url = app.create_url(&format!("https://example.com/seq/{i}")).await;
            let code = url["short_code"].as_str().unwrap().to_owned();
            assert!(code.len() == 6 && code.chars().all(|c| ALPHABET.contains(c)), "{code}");
            codes.push(code);
        }
        for pair in codes.windows(2) {
            assert_ne!(pair[0], pair[1]);
            assert!((value(&pair[1]) - value(&pair[0])).abs() > 1, "consecutive codes {pair:?}");
        }
    }
}

backend_test! {
    async fn a_create_never_collides_with_an_imported_code(app) {
        // An imported link already holds the code the next id would get: the create still
        // succeeds, with another (longer) code.
        let taken = app.state.codes.code_for(1001, 0).unwrap();
        let csv = format!("id,short_code,original_url\n1000,{taken},https://example.com/imported\n");
        let rows = api::import::parse_urls(csv.as_bytes()).unwrap();
        api::import::insert_skipping_existing(&app.state.db, rows, |_| {}).await.unwrap();
        api::import::advance_sequence(&app.state.db, "urls").await.unwrap();
        let url = app.create_url("https://example.com/new").await;
        assert_eq!(url["id"], 1001);
        let code = url["short_code"].as_str().unwrap();
        assert_ne!(code, taken);
        assert!(code.len() > 6 && code.bytes().all(|b| b.is_ascii_alphanumeric()), "{code}");
        assert_eq!(app.get(&format!("/r/{taken}")).await.headers()["location"], "https://example.com/imported");
        assert_eq!(app.get(&format!("/r/{code}")).await.headers()["location"], "https://example.com/new");
    }
}

backend_test! {
    async fn click_metadata_lives_in_its_own_columns_and_raw_ips_are_not_stored(app) {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let url = app.create_url("https://example.com/meta").await;
        let resp = app
            .client
            .get(app.url(&format!("/r/{}", url["short_code"].as_str().unwrap())))
            .header("user-agent", "curtain-test/1.0")
            .header("referer", "https://ref.example/page")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        app.run_pending_jobs().await;
        let rows = entity::event::Entity::find()
            .filter(entity::event::Column::EventType.eq("redirect"))
            .all(&app.state.db)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.details, Some(json!({"short_code": url["short_code"]})));
        assert!(row.click_id.as_deref().is_some_and(|c| !c.is_empty()));
        assert_eq!(row.user_agent.as_deref(), Some("curtain-test/1.0"));
        assert_eq!(row.referrer.as_deref(), Some("https://ref.example/page"));
        let hash = row.visitor_hash.as_deref().unwrap();
        assert!(!hash.is_empty() && !hash.contains("127.0.0.1"), "{hash}");
    }
}

/// The visitor hashes of two redirects sent with different `X-Forwarded-For` values.
async fn visitor_hashes(app: &TestApp) -> Vec<String> {
    use sea_orm::{EntityTrait, QueryOrder};
    let url = app.create_url("https://example.com/xff").await;
    for ip in ["203.0.113.7", "198.51.100.9"] {
        let path = app.url(&format!("/r/{}", url["short_code"].as_str().unwrap()));
        assert_eq!(
            app.client
                .get(path)
                .header("x-forwarded-for", ip)
                .send()
                .await
                .unwrap()
                .status(),
            302
        );
    }
    app.run_pending_jobs().await;
    let rows = entity::event::Entity::find()
        .order_by_asc(entity::event::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap();
    let hashes: Vec<String> = rows.into_iter().filter_map(|r| r.visitor_hash).collect();
    assert_eq!(hashes.len(), 2);
    assert!(
        hashes
            .iter()
            .all(|h| !h.contains("203.0.113.7") && !h.contains("198.51.100.9"))
    );
    hashes
}

backend_test! {
    async fn x_forwarded_for_is_ignored_without_a_trusted_proxy(app) {
        let hashes = visitor_hashes(&app).await;
        assert_eq!(hashes[0], hashes[1], "an untrusted peer cannot choose its visitor identity");
    }
}

async fn trusted_proxy_forwarded_for(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.trusted_proxy = Some("127.0.0.1".parse().unwrap());
    })
    .await;
    let hashes = visitor_hashes(&app).await;
    assert_ne!(
        hashes[0], hashes[1],
        "the trusted proxy's X-Forwarded-For names the visitor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_of_the_trusted_proxy_names_the_visitor_sqlite() {
    trusted_proxy_forwarded_for(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn x_forwarded_for_of_the_trusted_proxy_names_the_visitor_postgres() {
    trusted_proxy_forwarded_for(Backend::Postgres).await;
}

backend_test! {
    async fn a_click_of_a_link_deleted_before_ingestion_never_blocks_the_queue(app) {
        let doomed = app.create_url("https://example.com/doomed").await;
        let kept = app.create_url("https://example.com/kept").await;
        let doomed_path = format!("/r/{}", doomed["short_code"].as_str().unwrap());
        // Warm this process's redirect tier; that click is ingested (ack) while the link lives.
        assert_eq!(app.get(&doomed_path).await.status(), 302);
        // The row goes behind this process's back (another instance deleted it and the news has
        // not arrived yet): the next redirect is still answered, its click finds no link.
        app.state
            .db
            .execute_unprepared(&format!("DELETE FROM urls WHERE id = {}", doomed["id"]))
            .await
            .unwrap();
        assert_eq!(app.get(&doomed_path).await.status(), 302);
        assert_eq!(app.get(&format!("/r/{}", kept["short_code"].as_str().unwrap())).await.status(), 302);
        app.run_pending_jobs().await;
        let (_, _, redirects) = parts(app.get("/events?event_type=redirect").await).await;
        let kept_clicks = redirects.as_array().unwrap().iter().filter(|e| e["url_id"] == kept["id"]).count();
        assert_eq!(kept_clicks, 1, "the click after the dropped one is ingested: {redirects}");
        let metrics = app.get("/metrics").await.text().await.unwrap();
        let dropped = metrics.lines().find_map(|l| l.strip_prefix("curtain_clicks_dropped_deleted_total "));
        assert_eq!(dropped, Some("1"), "the doomed link's click is counted as dropped, once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn deleting_a_link_on_one_instance_stops_its_redirects_on_the_other() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = a.spawn_sibling().await;
    let url = a.create_url("https://example.com/both").await;
    let path = format!("/r/{}", url["short_code"].as_str().unwrap());
    assert_eq!(b.get(&path).await.status(), 302);
    assert_eq!(b.get(&path).await.headers()["x-cache"], "HIT");
    assert_eq!(
        a.delete(&format!("/urls/{}", url["id"])).await.status(),
        204
    );
    // The other instance's in-process tier hears of it by pub/sub: within a second (README),
    // typically 2-3 ms, so poll rather than race it (this raced under CPU load).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let (status, body) = loop {
        let (status, _, body) = parts(b.get(&path).await).await;
        if status == 404 || std::time::Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!((status, body), (404, json!({"error": "URL not found"})));
    let (status, _, _) = parts(b.get(&format!("/urls/{}/analytics", url["id"])).await).await;
    assert_eq!(status, 404);
}

backend_test! {
    async fn a_cached_redirect_answers_exactly_like_the_first_one(app) {
        // Without warming, the first redirect of a code takes the documented operation
        // (MISS); later ones are answered from the prepared 302 of the in-process cache
        // (HIT). Same answer, same request id handling, same metric series.
        let app = TestApp::spawn_with(app.backend, |c| c.cache_warm_on_write = false).await;
        let url = app.create_url("https://example.com/same?x=<1>").await;
        let path = format!("/r/{}", url["short_code"].as_str().unwrap());
        let mut answers = Vec::new();
        for _ in 0..3 {
            let resp = app.client.get(app.url(&path)).header("x-request-id", "probe-1").send().await.unwrap();
            let h = resp.headers().clone();
            let cache = h["x-cache"].to_str().unwrap().to_owned();
            let mut names: Vec<String> = h.keys().map(|k| k.as_str().to_owned()).collect();
            names.sort();
            assert_eq!(h["x-request-id"], "probe-1", "a client's request id is echoed");
            answers.push((cache, resp.status().as_u16(), h["location"].clone(), h["content-type"].clone(), names, resp.text().await.unwrap()));
        }
        assert_eq!(answers[0].0, "MISS");
        assert_eq!(answers[1].0, "HIT");
        for later in &answers[1..] {
            assert_eq!((later.1, &later.2, &later.3, &later.4, &later.5), (answers[0].1, &answers[0].2, &answers[0].3, &answers[0].4, &answers[0].5));
        }
        let resp = app.get(&path).await;
        assert!(!resp.headers()["x-request-id"].is_empty(), "an id is made when none is sent");
        app.client.request(Method::HEAD, app.url(&path)).send().await.unwrap();
        assert_eq!(redirect_events(&app, &url).await.len(), 5, "every answer is one click");
        let text = app.get("/metrics").await.text().await.unwrap();
        let count = |method: &str| -> u64 {
            text.lines()
                .find(|l| l.starts_with("http_requests_total{") && l.contains(&format!("method=\"{method}\"")) && l.contains("path=\"/r/<short_code>\"") && l.contains("status_code=\"302\""))
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
                .unwrap_or(0)
        };
        assert_eq!((count("GET"), count("HEAD")), (4, 1), "{text}");
    }
}
