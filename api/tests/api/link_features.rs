//! Issue 11, link features: custom aliases, per-link redirect status and `Cache-Control`,
//! expiry by date and by clicks, tags with list filters, UTM parameters. Every option is read
//! through an opt-in (`/urls/<id>/details`, `?expand=details`), so the contract's `Url` keeps
//! its exact key set.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{TestApp, parts};

/// The contract's `Url` keys, exactly.
const URL_KEYS: [&str; 8] = [
    "created_at",
    "id",
    "is_active",
    "original_url",
    "short_code",
    "title",
    "updated_at",
    "user_id",
];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn contract_keys() -> BTreeSet<String> {
    URL_KEYS.iter().map(|k| (*k).to_owned()).collect()
}

/// `POST /urls` with `body`; asserts `status` and returns the JSON answer.
async fn create(app: &TestApp, body: &Value, status: u16) -> Value {
    let (got, _, answer) = parts(app.post("/urls", body).await).await;
    assert_eq!(got, status, "{body} -> {answer}");
    answer
}

/// A 4xx with the contract's envelope and this exact message.
async fn refused(app: &TestApp, body: &Value, status: u16, message: &str) {
    let (got, cache, answer) = parts(app.post("/urls", body).await).await;
    assert_eq!((got, cache), (status, None), "{body} -> {answer}");
    assert_eq!(answer, json!({ "error": message }), "{body}");
}

backend_test! {
    async fn custom_alias_becomes_the_short_code_and_redirects(app) {
        let url = create(&app, &json!({"original_url": "https://example.com/promo", "custom_code": "my-Promo_1"}), 201).await;
        assert_eq!(url["short_code"], "my-Promo_1");
        // The answer is the contract's Url, key for key.
        assert_eq!(keys(&url), contract_keys(), "{url}");
        let resp = app.get("/r/my-Promo_1").await;
        assert_eq!(resp.status(), 302);
        assert_eq!(resp.headers()["location"], "https://example.com/promo");
        // Codes are case-sensitive: another case is another (unknown) code.
        assert_eq!(app.get("/r/my-promo_1").await.status(), 404);

        let id = &url["id"];
        let (status, _, plain) = parts(app.get(&format!("/urls/{id}")).await).await;
        assert_eq!(status, 200);
        assert_eq!(keys(&plain), contract_keys(), "{plain}");
        let (status, _, details) = parts(app.get(&format!("/urls/{id}/details")).await).await;
        assert_eq!(status, 200);
        assert_eq!(details["custom_code"], true, "{details}");
        let (status, _, expanded) = parts(app.get(&format!("/urls/{id}?expand=details")).await).await;
        assert_eq!(status, 200);
        assert_eq!(expanded["details"], details);
        let (status, _, list) = parts(app.get("/urls").await).await;
        assert_eq!(status, 200);
        assert_eq!(keys(&list[0]), contract_keys(), "{list}");
        let (status, _, list) = parts(app.get("/urls?expand=details").await).await;
        assert_eq!(status, 200);
        assert_eq!(list[0]["details"], details);

        // A generated code is not custom.
        let other = app.create_url("https://example.com/other").await;
        let (_, _, details) = parts(app.get(&format!("/urls/{}/details", other["id"])).await).await;
        assert_eq!(details["custom_code"], false);
        assert_eq!(parts(app.get("/urls/999999/details").await).await.2, json!({"error": "URL not found"}));
        let (status, _, body) = parts(app.get(&format!("/urls/{id}?expand=everything")).await).await;
        assert_eq!((status, body), (400, json!({"error": "Query parameter 'expand' must be 'details'"})));
    }
}

backend_test! {
    async fn a_taken_code_is_409_whether_alias_or_generated(app) {
        create(&app, &json!({"original_url": "https://example.com/a", "custom_code": "launch"}), 201).await;
        refused(&app, &json!({"original_url": "https://example.com/b", "custom_code": "launch"}), 409,
            "Short code 'launch' is already taken").await;
        // Even the same URL again: the alias is taken (a create with options is not idempotent).
        refused(&app, &json!({"original_url": "https://example.com/a", "custom_code": "launch"}), 409,
            "Short code 'launch' is already taken").await;
        let generated = app.create_url("https://example.com/generated").await;
        let code = generated["short_code"].as_str().unwrap();
        refused(&app, &json!({"original_url": "https://example.com/c", "custom_code": code}), 409,
            &format!("Short code '{code}' is already taken")).await;
        // Nothing was created by the refusals.
        let (_, _, list) = parts(app.get("/urls").await).await;
        assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    }
}

backend_test! {
    async fn invalid_or_reserved_aliases_are_400(app) {
        let shape = "Field 'custom_code' must be 3 to 16 characters of A-Z, a-z, 0-9, '_' and '-'";
        for (code, message) in [
            (json!("ab"), shape.to_owned()),
            (json!("a".repeat(17)), shape.to_owned()),
            (json!("a/b.c"), shape.to_owned()),
            (json!("caf\u{e9}s"), shape.to_owned()),
            (json!("has space"), shape.to_owned()),
            (json!(12345), "Field 'custom_code' must be a string".to_owned()),
            (json!(true), "Field 'custom_code' must be a string".to_owned()),
            (json!("urls"), "Field 'custom_code' is a reserved word: 'urls'".to_owned()),
            (json!("Docs"), "Field 'custom_code' is a reserved word: 'Docs'".to_owned()),
            (json!("openapi.json"), shape.to_owned()),
            (json!("metrics"), "Field 'custom_code' is a reserved word: 'metrics'".to_owned()),
        ] {
            refused(&app, &json!({"original_url": "https://example.com/x", "custom_code": code}), 400, &message).await;
        }
        // The contract's own errors come first.
        refused(&app, &json!({"custom_code": "ab"}), 400, "Field 'original_url' is required").await;
        // null means "no alias".
        let url = create(&app, &json!({"original_url": "https://example.com/x", "custom_code": null}), 201).await;
        assert_eq!(url["short_code"].as_str().unwrap().len(), 6);
    }
}

backend_test! {
    async fn generated_codes_skip_a_taken_custom_alias(app) {
        let first = app.create_url("https://example.com/1").await;
        let first_id = first["id"].as_i64().unwrap();
        // The alias link takes the next id; the link after it would be given this code.
        let next = u64::try_from(first_id + 2).unwrap();
        let squatted = app.state.codes.code_for(next, 0).unwrap();
        let alias = create(&app, &json!({"original_url": "https://example.com/alias", "custom_code": squatted}), 201).await;
        assert_eq!(alias["id"].as_i64().unwrap(), first_id + 1);
        let third = app.create_url("https://example.com/3").await;
        assert_eq!(third["id"].as_i64().unwrap(), first_id + 2);
        let code = third["short_code"].as_str().unwrap();
        assert_ne!(code, squatted);
        assert_eq!(code, app.state.codes.code_for(next, 1).unwrap());
        // Both redirect to their own targets.
        assert_eq!(app.get(&format!("/r/{squatted}")).await.headers()["location"], "https://example.com/alias");
        assert_eq!(app.get(&format!("/r/{code}")).await.headers()["location"], "https://example.com/3");
    }
}

backend_test! {
    async fn a_plain_create_never_returns_a_link_with_options(app) {
        let alias = create(&app, &json!({"original_url": "https://example.com/same", "custom_code": "vanity"}), 201).await;
        let plain = create(&app, &json!({"original_url": "https://example.com/same"}), 201).await;
        assert_ne!(plain["id"], alias["id"]);
        // The contract's idempotency still holds among plain links.
        let again = create(&app, &json!({"original_url": "https://example.com/same"}), 200).await;
        assert_eq!(again, plain);
    }
}

backend_test! {
    async fn the_shorten_form_takes_a_custom_alias(app) {
        let form = |code: &str| {
            serde_urlencoded::to_string([("original_url", "https://example.com/form"), ("custom_code", code)]).unwrap()
        };
        let resp = app.send_raw(Method::POST, "/shorten-ui", "application/x-www-form-urlencoded", form("from-form")).await;
        assert_eq!(resp.status(), 201);
        let html = resp.text().await.unwrap();
        assert!(html.contains("/r/from-form\""), "{html}");
        let resp = app.send_raw(Method::POST, "/shorten-ui", "application/x-www-form-urlencoded", form("from-form")).await;
        assert_eq!(resp.status(), 409);
        assert_eq!(
            resp.text().await.unwrap(),
            "<div id=\"message\" class=\"error\">Short code 'from-form' is already taken</div>"
        );
        let resp = app.send_raw(Method::POST, "/shorten-ui", "application/x-www-form-urlencoded", form("ui")).await;
        assert_eq!(resp.status(), 400);
        // A blank alias is no alias.
        let resp = app.send_raw(Method::POST, "/shorten-ui", "application/x-www-form-urlencoded", form("  ")).await;
        assert_eq!(resp.status(), 201);
        let home = app.get("/").await.text().await.unwrap();
        assert!(home.contains("name=\"custom_code\""));
    }
}

backend_test! {
    async fn concurrent_creates_of_one_alias_give_one_link_and_409s(app) {
        let app = std::sync::Arc::new(app);
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let app = app.clone();
                tokio::spawn(async move {
                    let body = json!({"original_url": format!("https://example.com/race/{i}"), "custom_code": "race"});
                    parts(app.post("/urls", &body).await).await
                })
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            let (status, _, body) = task.await.unwrap();
            match status {
                201 => created += 1,
                409 => assert_eq!(body, json!({"error": "Short code 'race' is already taken"})),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(created, 1);
        let (_, _, list) = parts(app.get("/urls").await).await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    }
}

/// `GET path` without following: (status, `Cache-Control`, `X-Cache`, `Location`).
async fn follow(
    app: &TestApp,
    path: &str,
) -> (u16, Option<String>, Option<String>, Option<String>) {
    let resp = app.get(path).await;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    (
        resp.status().as_u16(),
        header("cache-control"),
        header("x-cache"),
        header("location"),
    )
}

backend_test! {
    async fn redirect_status_and_cache_control_are_per_link(app) {
        let plain = app.create_url("https://example.com/plain").await;
        let code = plain["short_code"].as_str().unwrap();
        for expected_cache in ["MISS", "HIT"] {
            let (status, cc, cache, location) = follow(&app, &format!("/r/{code}")).await;
            assert_eq!((status, cc, location.as_deref()), (302, None, Some("https://example.com/plain")));
            if expected_cache == "HIT" {
                assert_eq!(cache.as_deref(), Some("HIT"));
            }
        }
        for (n, status) in [301u16, 302, 307, 308].into_iter().enumerate() {
            let url = create(&app, &json!({
                "original_url": format!("https://example.com/s/{status}"),
                "redirect_status": status,
                "cache_control": format!("  public, max-age={n}  "),
            }), 201).await;
            assert_eq!(keys(&url), contract_keys(), "{url}");
            let code = url["short_code"].as_str().unwrap();
            // First from the database, then from the cache (the hot path for /r/), then an alias.
            for path in [format!("/r/{code}"), format!("/r/{code}"), format!("/urls/short/{code}"), format!("/urls/{code}/redirect")] {
                let (got, cc, _, location) = follow(&app, &path).await;
                assert_eq!(got, status, "{path}");
                assert_eq!(cc, Some(format!("public, max-age={n}")), "{path}");
                assert_eq!(location, Some(format!("https://example.com/s/{status}")), "{path}");
            }
            let (_, _, details) = parts(app.get(&format!("/urls/{}/details", url["id"])).await).await;
            assert_eq!(details["redirect_status"], status);
            assert_eq!(details["cache_control"], format!("public, max-age={n}"));
        }
        let (_, _, details) = parts(app.get(&format!("/urls/{}/details", plain["id"])).await).await;
        assert_eq!((&details["redirect_status"], &details["cache_control"]), (&json!(302), &Value::Null));
    }
}

backend_test! {
    async fn invalid_redirect_options_are_400(app) {
        let status_msg = "Field 'redirect_status' must be one of 301, 302, 307, 308";
        for bad in [json!(303), json!(200), json!(0), json!(-301), json!("301"), json!(true), json!(301.5), json!(70000)] {
            refused(&app, &json!({"original_url": "https://example.com/x", "redirect_status": bad}), 400, status_msg).await;
        }
        let cc_msg = "Field 'cache_control' must be 1 to 255 printable ASCII characters";
        for bad in [json!(""), json!("   "), json!("no-store\r\nX-Evil: 1"), json!("max-age=\u{e9}"), json!("a".repeat(256))] {
            refused(&app, &json!({"original_url": "https://example.com/x", "cache_control": bad}), 400, cc_msg).await;
        }
        refused(&app, &json!({"original_url": "https://example.com/x", "cache_control": 60}), 400,
            "Field 'cache_control' must be a string").await;
        // null is the default.
        let url = create(&app, &json!({"original_url": "https://example.com/x", "redirect_status": null, "cache_control": null}), 201).await;
        assert_eq!(follow(&app, &format!("/r/{}", url["short_code"].as_str().unwrap())).await.0, 302);
    }
}

backend_test! {
    async fn patching_details_changes_the_cached_redirect_at_once(app) {
        let url = app.create_url("https://example.com/patch").await;
        let (id, code) = (url["id"].clone(), url["short_code"].as_str().unwrap().to_owned());
        let details_path = format!("/urls/{id}/details");
        assert_eq!(follow(&app, &format!("/r/{code}")).await.0, 302);
        assert_eq!(follow(&app, &format!("/r/{code}")).await.2.as_deref(), Some("HIT"));

        let (status, _, details) = parts(app.request(Method::PATCH, &details_path, Some(&json!({"redirect_status": 308, "cache_control": "no-store"}))).await).await;
        assert_eq!(status, 200, "{details}");
        assert_eq!((&details["redirect_status"], &details["cache_control"]), (&json!(308), &json!("no-store")));
        let (status, cc, _, _) = follow(&app, &format!("/r/{code}")).await;
        assert_eq!((status, cc.as_deref()), (308, Some("no-store")));
        // The Url keeps its key set; its detail is read fresh.
        let (_, cache, after) = parts(app.get(&format!("/urls/{id}")).await).await;
        assert_eq!(cache.as_deref(), Some("MISS"));
        assert_eq!(keys(&after), contract_keys());
        // A link with options is no longer what a plain create of its URL returns...
        let other = create(&app, &json!({"original_url": "https://example.com/patch"}), 201).await;
        assert_ne!(other["id"], id);

        // null: back to the defaults (and the link is plain again).
        let (status, _, details) = parts(app.request(Method::PATCH, &details_path, Some(&json!({"redirect_status": null, "cache_control": null}))).await).await;
        assert_eq!(status, 200);
        assert_eq!((&details["redirect_status"], &details["cache_control"]), (&json!(302), &Value::Null));
        let (status, cc, _, _) = follow(&app, &format!("/r/{code}")).await;
        assert_eq!((status, cc), (302, None));

        // {} changes nothing.
        let (status, _, same) = parts(app.request(Method::PATCH, &details_path, Some(&json!({}))).await).await;
        assert_eq!((status, same), (200, details));
        for (body, message) in [
            (json!({"custom_code": "newcode"}), "Field 'custom_code' cannot be updated"),
            (json!({"zeta": 1, "alpha": 2, "redirect_status": 301}), "Field 'alpha' cannot be updated"),
            (json!({"redirect_status": 303}), "Field 'redirect_status' must be one of 301, 302, 307, 308"),
            (json!([1]), "JSON body must be an object"),
        ] {
            let (status, _, got) = parts(app.request(Method::PATCH, &details_path, Some(&body)).await).await;
            assert_eq!((status, got), (400, json!({"error": message})), "{body}");
        }
        let (status, _, got) = parts(app.request(Method::PATCH, "/urls/999999/details", Some(&json!({"redirect_status": 301}))).await).await;
        assert_eq!((status, got), (404, json!({"error": "URL not found"})));
        // The refused patches changed nothing.
        assert_eq!(follow(&app, &format!("/r/{code}")).await.0, 302);
    }
}

/// The link's `redirect` events once every recorded click is written.
async fn redirects_recorded(app: &TestApp, id: &Value) -> i64 {
    app.run_pending_jobs().await;
    let (_, _, body) = parts(app.get(&format!("/urls/{id}/analytics")).await).await;
    body["redirect_count"].as_i64().unwrap()
}

backend_test! {
    async fn a_link_past_its_expiry_answers_410_or_its_expired_url(app) {
        let past = create(&app, &json!({"original_url": "https://example.com/old", "expires_at": "2020-01-01T00:00:00Z"}), 201).await;
        let (status, cache, body) = parts(app.get(&format!("/r/{}", past["short_code"].as_str().unwrap())).await).await;
        assert_eq!((status, cache, body), (410, None, json!({"error": "URL has expired"})));
        assert_eq!(redirects_recorded(&app, &past["id"]).await, 0, "a 410 is no click");

        let fallback = create(&app, &json!({
            "original_url": "https://example.com/old2",
            "expires_at": "2020-01-01T02:00:00+02:00",
            "expired_url": "https://example.com/sorry",
        }), 201).await;
        let (status, _, _, location) = follow(&app, &format!("/r/{}", fallback["short_code"].as_str().unwrap())).await;
        assert_eq!((status, location.as_deref()), (302, Some("https://example.com/sorry")));
        let (_, _, details) = parts(app.get(&format!("/urls/{}/details", fallback["id"])).await).await;
        assert_eq!(details["expires_at"], "2020-01-01T00:00:00", "stored in UTC");
        assert_eq!(details["expired_url"], "https://example.com/sorry");

        let future = create(&app, &json!({"original_url": "https://example.com/new", "expires_at": "2999-01-01T00:00:00+02:00"}), 201).await;
        let code = future["short_code"].as_str().unwrap();
        assert_eq!(follow(&app, &format!("/r/{code}")).await.0, 302);
        let (status, _, cache, _) = follow(&app, &format!("/r/{code}")).await;
        assert_eq!((status, cache.as_deref()), (302, Some("HIT")));
        // Expiring a cached link takes effect at once.
        let (status, _, _) = parts(app.request(Method::PATCH, &format!("/urls/{}/details", future["id"]), Some(&json!({"expires_at": "2021-06-01T00:00:00Z"}))).await).await;
        assert_eq!(status, 200);
        assert_eq!(follow(&app, &format!("/r/{code}")).await.0, 410);
        assert_eq!(follow(&app, &format!("/urls/short/{code}")).await.0, 410);
        // null: never expires again.
        parts(app.request(Method::PATCH, &format!("/urls/{}/details", future["id"]), Some(&json!({"expires_at": null}))).await).await;
        assert_eq!(follow(&app, &format!("/r/{code}")).await.0, 302);
        assert_eq!(redirects_recorded(&app, &future["id"]).await, 3);
    }
}

backend_test! {
    async fn a_cached_redirect_stops_when_its_expiry_time_passes(app) {
        let at = chrono::Utc::now() + chrono::Duration::seconds(2);
        let url = create(&app, &json!({"original_url": "https://example.com/soon", "expires_at": at.to_rfc3339()}), 201).await;
        let code = url["short_code"].as_str().unwrap();
        assert_eq!(follow(&app, &format!("/r/{code}")).await.0, 302);
        let (status, _, cache, _) = follow(&app, &format!("/r/{code}")).await;
        assert_eq!((status, cache.as_deref()), (302, Some("HIT")));
        // Waiting for the clock, not for background work: the entry is still cached after.
        let wait = (at - chrono::Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(1100);
        tokio::time::sleep(wait).await;
        assert_eq!(follow(&app, &format!("/r/{code}")).await.0, 410);
    }
}

backend_test! {
    async fn max_clicks_is_exact_under_parallel_load(app) {
        const MAX: usize = 100;
        const TASKS: usize = 50;
        const PER_TASK: usize = 6;
        let url = create(&app, &json!({"original_url": "https://example.com/limited", "max_clicks": MAX}), 201).await;
        let code = url["short_code"].as_str().unwrap().to_owned();
        // With PostgreSQL + Redis, half the load goes to a second api instance.
        let sibling = match app.backend {
            crate::helpers::Backend::Postgres => Some(app.spawn_sibling().await),
            crate::helpers::Backend::Sqlite => None,
        };
        let bases: Vec<String> = std::iter::once(app.address.clone())
            .chain(sibling.as_ref().map(|s| s.address.clone()))
            .collect();
        let client = crate::helpers::http_client();
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (client, code) = (client.clone(), code.clone());
                let base = bases[t % bases.len()].clone();
                tokio::spawn(async move {
                    let mut statuses = Vec::new();
                    for _ in 0..PER_TASK {
                        let resp = client.get(format!("{base}/r/{code}")).send().await.unwrap();
                        statuses.push(resp.status().as_u16());
                    }
                    statuses
                })
            })
            .collect();
        let (mut found, mut gone) = (0, 0);
        for task in tasks {
            for status in task.await.unwrap() {
                match status {
                    302 => found += 1,
                    410 => gone += 1,
                    other => panic!("unexpected status {other}"),
                }
            }
        }
        assert_eq!(found, MAX);
        assert_eq!(gone, TASKS * PER_TASK - MAX);
        if let Some(sibling) = &sibling {
            sibling.run_pending_jobs().await;
        }
        assert_eq!(redirects_recorded(&app, &url["id"]).await, MAX as i64);
    }
}

backend_test! {
    async fn max_clicks_falls_back_to_expired_url_and_can_be_raised(app) {
        let url = create(&app, &json!({"original_url": "https://example.com/two", "max_clicks": 2, "expired_url": "https://example.com/over"}), 201).await;
        let (id, code) = (url["id"].clone(), url["short_code"].as_str().unwrap().to_owned());
        let path = format!("/r/{code}");
        for expected in ["https://example.com/two", "https://example.com/two", "https://example.com/over", "https://example.com/over"] {
            let (status, _, _, got) = follow(&app, &path).await;
            assert_eq!((status, got.as_deref()), (302, Some(expected)));
        }
        // Raising the limit lets the link serve the difference (refused redirects did not count).
        let (status, _, details) = parts(app.request(Method::PATCH, &format!("/urls/{id}/details"), Some(&json!({"max_clicks": 3}))).await).await;
        assert_eq!((status, &details["max_clicks"]), (200, &json!(3)));
        assert_eq!(follow(&app, &path).await.3.as_deref(), Some("https://example.com/two"));
        assert_eq!(follow(&app, &path).await.3.as_deref(), Some("https://example.com/over"));
        // Without a limit it serves again; without expired_url an exhausted link is 410.
        parts(app.request(Method::PATCH, &format!("/urls/{id}/details"), Some(&json!({"max_clicks": 3, "expired_url": null}))).await).await;
        assert_eq!(follow(&app, &path).await.0, 410);
        parts(app.request(Method::PATCH, &format!("/urls/{id}/details"), Some(&json!({"max_clicks": null}))).await).await;
        assert_eq!(follow(&app, &path).await.0, 302);
        assert_eq!(redirects_recorded(&app, &id).await, 4);
    }
}

backend_test! {
    async fn a_restarted_api_does_not_hand_out_served_clicks_again(app) {
        let url = create(&app, &json!({"original_url": "https://example.com/three", "max_clicks": 3}), 201).await;
        let path = format!("/r/{}", url["short_code"].as_str().unwrap());
        assert_eq!(follow(&app, &path).await.0, 302);
        assert_eq!(follow(&app, &path).await.0, 302);
        app.run_pending_jobs().await;
        // The process stops and a new one starts on the same storage: the in-process count
        // starts again from the events, the Redis count was kept.
        let (backend, storage) = (app.backend, app.storage.clone());
        drop(app);
        let restarted = TestApp::spawn_on(backend, storage, |_| {}).await;
        assert_eq!(follow(&restarted, &path).await.0, 302);
        assert_eq!(follow(&restarted, &path).await.0, 410);
        if let Some(redis_url) = &restarted.storage.redis_url {
            // Redis lost the count (flushed, restarted): it starts again from the events.
            restarted.run_pending_jobs().await;
            let key = format!("{}:clicklimit:{}", restarted.storage.cache_prefix, url["id"]);
            let mut conn = redis::Client::open(redis_url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
            let deleted: i64 = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();
            assert_eq!(deleted, 1, "{key}");
            assert_eq!(follow(&restarted, &path).await.0, 410);
        }
    }
}

backend_test! {
    async fn invalid_expiry_options_are_400(app) {
        let at = "Field 'expires_at' must be an RFC 3339 date-time (e.g. 2026-12-31T23:59:59Z)";
        for bad in [json!("tomorrow"), json!("2026-12-31T23:59:59"), json!("2026-13-01T00:00:00Z"), json!("")] {
            refused(&app, &json!({"original_url": "https://example.com/x", "expires_at": bad}), 400, at).await;
        }
        refused(&app, &json!({"original_url": "https://example.com/x", "expires_at": 1_700_000_000}), 400,
            "Field 'expires_at' must be a string").await;
        let max = "Field 'max_clicks' must be an integer of at least 1";
        for bad in [json!(0), json!(-5), json!("5"), json!(true), json!(1.5), json!(99999999999999999999u128)] {
            refused(&app, &json!({"original_url": "https://example.com/x", "max_clicks": bad}), 400, max).await;
        }
        for (bad, message) in [
            (json!("ftp://example.com/x"), "Field 'expired_url' must be a valid http or https URL".to_owned()),
            (json!("javascript:alert(1)"), "Field 'expired_url' must be a valid http or https URL".to_owned()),
            (json!(42), "Field 'expired_url' must be a string".to_owned()),
            (json!(format!("https://example.com/{}", "a".repeat(2048))), "Field 'expired_url' must not exceed 2048 characters".to_owned()),
        ] {
            refused(&app, &json!({"original_url": "https://example.com/x", "expired_url": bad}), 400, &message).await;
        }
        let (_, _, list) = parts(app.get("/urls").await).await;
        assert_eq!(list, json!([]));
    }
}

/// The ids of `GET path` (asserting 200).
async fn ids(app: &TestApp, path: &str) -> Vec<i64> {
    let (status, _, list) = parts(app.get(path).await).await;
    assert_eq!(status, 200, "{path}: {list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| {
            assert_eq!(keys(u), contract_keys(), "{path}");
            u["id"].as_i64().unwrap()
        })
        .collect()
}

backend_test! {
    async fn tags_are_set_on_create_and_filter_the_list(app) {
        let mut made = Vec::new();
        for (n, tags) in [json!(["red", "blue"]), json!(["blue", "blue"]), json!(["green", " red "]), Value::Null].into_iter().enumerate() {
            let url = create(&app, &json!({"original_url": format!("https://example.com/t/{n}"), "tags": tags}), 201).await;
            assert_eq!(keys(&url), contract_keys());
            made.push(url["id"].as_i64().unwrap());
        }
        let [a, b, c, d] = made[..] else { unreachable!() };
        let (_, _, details) = parts(app.get(&format!("/urls/{a}/details")).await).await;
        assert_eq!(details["tags"], json!(["blue", "red"]));
        let (_, _, details) = parts(app.get(&format!("/urls/{b}/details")).await).await;
        assert_eq!(details["tags"], json!(["blue"]), "duplicates count once");
        let (_, _, details) = parts(app.get(&format!("/urls/{d}/details")).await).await;
        assert_eq!(details["tags"], json!([]));

        assert_eq!(ids(&app, "/urls?tag=red").await, vec![a, c]);
        let (_, cache, _) = parts(app.get("/urls?tag=red").await).await;
        assert_eq!(cache.as_deref(), Some("HIT"));
        // The cache key covers the tags: another tag is another list.
        assert_eq!(ids(&app, "/urls?tag=blue").await, vec![a, b]);
        assert_eq!(ids(&app, "/urls?tag=red,blue").await, vec![a, b, c]);
        assert_eq!(ids(&app, "/urls?tag=red&tag=blue&tag_mode=any").await, vec![a, b, c]);
        assert_eq!(ids(&app, "/urls?tag=red&tag=blue&tag_mode=all").await, vec![a]);
        assert_eq!(ids(&app, "/urls?tag=red,green&tag_mode=ALL").await, vec![c]);
        assert_eq!(ids(&app, "/urls?tag=red,%20,blue&tag_mode=all").await, vec![a]);
        assert_eq!(ids(&app, "/urls?tag=nope").await, Vec::<i64>::new());
        assert_eq!(ids(&app, "/urls?tag=").await, vec![a, b, c, d], "no tag: no filter");
        assert_eq!(ids(&app, "/urls?tag=blue&limit=1").await, vec![a]);
        let (status, _, body) = parts(app.get("/urls?tag=red&tag_mode=some").await).await;
        assert_eq!((status, body), (400, json!({"error": "Query parameter 'tag_mode' must be any or all"})));
        let (_, _, expanded) = parts(app.get("/urls?tag=green&expand=details").await).await;
        assert_eq!(expanded[0]["details"]["tags"], json!(["green", "red"]));

        // Changing the tags changes the lists at once.
        let (status, _, details) = parts(app.request(Method::PATCH, &format!("/urls/{a}/details"), Some(&json!({"tags": ["green"]}))).await).await;
        assert_eq!((status, &details["tags"]), (200, &json!(["green"])));
        assert_eq!(ids(&app, "/urls?tag=red").await, vec![c]);
        assert_eq!(ids(&app, "/urls?tag=green").await, vec![a, c]);
        parts(app.request(Method::PATCH, &format!("/urls/{a}/details"), Some(&json!({"tags": null}))).await).await;
        assert_eq!(ids(&app, "/urls?tag=green").await, vec![c]);
        // A deleted link's tags go with it.
        assert_eq!(app.delete(&format!("/urls/{c}")).await.status(), 204);
        assert_eq!(ids(&app, "/urls?tag=green,red").await, Vec::<i64>::new());
    }
}

backend_test! {
    async fn invalid_tags_are_400(app) {
        let list = "Field 'tags' must be a list of strings";
        let item = "Field 'tags' items must be 1 to 64 characters without commas or control characters";
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        for (bad, message) in [
            (json!("red"), list),
            (json!([1]), list),
            (json!(["ok", null]), list),
            (json!({"a": 1}), list),
            (json!([""]), item),
            (json!(["  "]), item),
            (json!(["a,b"]), item),
            (json!(["a\u{7}b"]), item),
            (json!(["x".repeat(65)]), item),
            (json!(many), "Field 'tags' must hold at most 20 tags"),
        ] {
            refused(&app, &json!({"original_url": "https://example.com/x", "tags": bad}), 400, message).await;
        }
        let twenty: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        create(&app, &json!({"original_url": "https://example.com/x", "tags": twenty}), 201).await;
        create(&app, &json!({"original_url": "https://example.com/y", "tags": ["x".repeat(64)]}), 201).await;
    }
}

backend_test! {
    async fn utm_parameters_are_added_to_the_redirect(app) {
        let plain = app.create_url("https://example.com/p?a=1#top").await;
        assert_eq!(follow(&app, &format!("/r/{}", plain["short_code"].as_str().unwrap())).await.3.as_deref(), Some("https://example.com/p?a=1#top"));

        let url = create(&app, &json!({
            "original_url": "https://example.com/p?a=1#top",
            "utm_source": " news letter ",
            "utm_medium": "e&mail",
            "utm_campaign": "winter",
        }), 201).await;
        assert_eq!(keys(&url), contract_keys());
        assert_eq!(url["original_url"], "https://example.com/p?a=1#top", "the target is stored as sent");
        let (id, code) = (url["id"].clone(), url["short_code"].as_str().unwrap().to_owned());
        let expected = "https://example.com/p?a=1&utm_source=news+letter&utm_medium=e%26mail&utm_campaign=winter#top";
        for path in [format!("/r/{code}"), format!("/r/{code}"), format!("/urls/short/{code}")] {
            assert_eq!(follow(&app, &path).await.3.as_deref(), Some(expected), "{path}");
        }
        let (_, _, details) = parts(app.get(&format!("/urls/{id}/details")).await).await;
        assert_eq!(
            (&details["utm_source"], &details["utm_medium"], &details["utm_campaign"], &details["utm_term"], &details["utm_content"]),
            (&json!("news letter"), &json!("e&mail"), &json!("winter"), &Value::Null, &Value::Null)
        );
        // The HTML body links to the same target.
        let body = app.get(&format!("/r/{code}")).await.text().await.unwrap();
        assert!(body.contains("utm_campaign=winter"), "{body}");

        let (status, _, _) = parts(app.request(Method::PATCH, &format!("/urls/{id}/details"), Some(&json!({"utm_campaign": null, "utm_term": "shoes", "utm_content": "banner"}))).await).await;
        assert_eq!(status, 200);
        assert_eq!(
            follow(&app, &format!("/r/{code}")).await.3.as_deref(),
            Some("https://example.com/p?a=1&utm_source=news+letter&utm_medium=e%26mail&utm_term=shoes&utm_content=banner#top")
        );

        // A parameter of the same name in the target gives way to the link's.
        let replaced = create(&app, &json!({"original_url": "https://example.com/q?utm_source=old&b=2", "utm_source": "new"}), 201).await;
        assert_eq!(
            follow(&app, &format!("/r/{}", replaced["short_code"].as_str().unwrap())).await.3.as_deref(),
            Some("https://example.com/q?b=2&utm_source=new")
        );

        refused(&app, &json!({"original_url": "https://example.com/x", "utm_source": 5}), 400, "Field 'utm_source' must be a string").await;
        let shape = "Field 'utm_content' must be 1 to 255 characters without control characters";
        for bad in [json!(""), json!("a\nb"), json!("x".repeat(256))] {
            refused(&app, &json!({"original_url": "https://example.com/x", "utm_content": bad}), 400, shape).await;
        }
    }
}

backend_test! {
    async fn option_changes_reach_every_instance_at_once(app) {
        let url = create(&app, &json!({"original_url": "https://example.com/everywhere", "redirect_status": 307}), 201).await;
        let path = format!("/r/{}", url["short_code"].as_str().unwrap());
        // With PostgreSQL + Redis a second instance serves (and caches) the link too; the
        // embedded default is one process.
        let sibling = match app.backend {
            crate::helpers::Backend::Postgres => Some(app.spawn_sibling().await),
            crate::helpers::Backend::Sqlite => None,
        };
        let instances: Vec<&TestApp> = std::iter::once(&app).chain(sibling.as_ref()).collect();
        for instance in &instances {
            assert_eq!(follow(instance, &path).await.0, 307);
            let (status, _, cache, _) = follow(instance, &path).await;
            assert_eq!((status, cache.as_deref()), (307, Some("HIT")));
        }
        let (status, _, _) = parts(app.request(Method::PATCH, &format!("/urls/{}/details", url["id"]), Some(&json!({"expires_at": "2020-01-01T00:00:00Z"}))).await).await;
        assert_eq!(status, 200);
        for instance in &instances {
            assert_eq!(follow(instance, &path).await.0, 410);
        }
        let home = app.get("/").await.text().await.unwrap();
        assert!(home.contains("PATCH /urls/&lt;id&gt;/details"), "the home page lists the new routes");
    }
}
