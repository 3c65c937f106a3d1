//! Issue 11, item 3: password links. The password goes in `X-Link-Password` (API clients) or
//! the form a browser is shown (`POST /r/<code>/unlock`); nothing is counted until it is accepted;
//! wrong attempts are limited per client and link, atomically, across api instances.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{Backend, TestApp, parts};

const TARGET: &str = "https://example.com/members?x=1";
const PASSWORD: &str = "open sesame ü";

/// A GET of `path` with these headers: (status, `Cache-Control`, `Location`, body text).
async fn get_with(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Option<String>, String) {
    let mut req = app.client.get(app.url(path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (cc, location) = (header("cache-control"), header("location"));
    (
        resp.status().as_u16(),
        cc,
        location,
        resp.text().await.unwrap(),
    )
}

/// `POST /r/<code>/unlock` with the form field `password`: (status, `Location`, body text).
async fn post_form(app: &TestApp, code: &str, password: &str) -> (u16, Option<String>, String) {
    let body = format!(
        "password={}",
        url::form_urlencoded::byte_serialize(password.as_bytes()).collect::<String>()
    );
    let resp = app
        .send_raw(
            Method::POST,
            &format!("/r/{code}/unlock"),
            "application/x-www-form-urlencoded",
            body,
        )
        .await;
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), location, resp.text().await.unwrap())
}

/// The link's `redirect` events once every recorded click is written.
async fn redirects_recorded(app: &TestApp, id: &Value) -> i64 {
    app.run_pending_jobs().await;
    let (_, _, body) = parts(app.get(&format!("/urls/{id}/analytics")).await).await;
    body["redirect_count"].as_i64().unwrap()
}

async fn create_protected(app: &TestApp, target: &str, password: &str) -> (Value, String) {
    let (status, _, url) = parts(
        app.post(
            "/urls",
            &json!({"original_url": target, "password": password}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{url}");
    let code = url["short_code"].as_str().unwrap().to_owned();
    (url, code)
}

fn error(message: &str) -> String {
    json!({ "error": message }).to_string()
}

backend_test! {
    async fn a_password_link_redirects_only_with_its_password_and_counts_only_then(app) {
        let (url, code) = create_protected(&app, TARGET, PASSWORD).await;
        // The contract's Url, key for key, and never the password or its hash.
        let keys: BTreeSet<&str> = url.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["created_at", "id", "is_active", "original_url", "short_code", "title", "updated_at", "user_id"]));
        let (_, _, details) = parts(app.get(&format!("/urls/{}/details", url["id"])).await).await;
        assert_eq!(details["password_protected"], json!(true), "{details}");
        for shown in [url.to_string(), details.to_string()] {
            assert!(!shown.contains("sesame") && !shown.contains("argon2"), "{shown}");
        }
        let r = format!("/r/{code}");

        // No password: a JSON 401 for an API client, the form for a browser.
        let (status, cc, location, body) = get_with(&app, &r, &[]).await;
        assert_eq!((status, location, body), (401, None, error("Password required")));
        assert_eq!(cc, None);
        let (status, cc, _, page) =
            get_with(&app, &r, &[("accept", "text/html,application/xhtml+xml")]).await;
        assert_eq!((status, cc.as_deref()), (200, Some("no-store")));
        assert!(page.contains(&format!(r#"<form id="unlock" method="post" action="/r/{code}/unlock">"#)), "{page}");
        assert!(page.contains(r#"name="password" type="password""#), "{page}");
        // A wrong password, by header.
        let (status, _, location, body) =
            get_with(&app, &r, &[("x-link-password", "open sesame")]).await;
        assert_eq!((status, location, body), (401, None, error("Wrong password")));
        // The aliases ask too.
        for alias in [format!("/urls/short/{code}"), format!("/urls/{code}/redirect")] {
            let (status, _, _, body) = get_with(&app, &alias, &[]).await;
            assert_eq!((status, body), (401, error("Password required")), "{alias}");
        }
        assert_eq!(redirects_recorded(&app, &url["id"]).await, 0, "nothing counted before the password");

        // The right one (UTF-8 in the header): the redirect, never stored by a cache.
        let right = [("x-link-password", PASSWORD)];
        for n in 1..=2 {
            let (status, cc, location, _) = get_with(&app, &r, &right).await;
            assert_eq!((status, cc.as_deref(), location.as_deref()), (302, Some("no-store"), Some(TARGET)), "redirect {n}");
            // The link is cached in this process now: the cached path asks all the same.
            let (status, _, _, body) = get_with(&app, &r, &[]).await;
            assert_eq!((status, body), (401, error("Password required")), "after redirect {n}");
        }
        assert_eq!(redirects_recorded(&app, &url["id"]).await, 2);
    }
}

backend_test! {
    async fn the_form_posts_the_password_and_a_right_one_answers_303_to_the_target(app) {
        let (url, code) = create_protected(&app, TARGET, PASSWORD).await;
        let (status, location, page) = post_form(&app, &code, "guess").await;
        assert_eq!((status, location), (401, None));
        assert!(page.contains(r#"<p id="error" class="error" role="alert">Wrong password</p>"#), "{page}");
        assert!(page.contains(r#"<form id="unlock""#), "{page}");
        assert_eq!(redirects_recorded(&app, &url["id"]).await, 0);

        let (status, location, _) = post_form(&app, &code, PASSWORD).await;
        assert_eq!((status, location.as_deref()), (303, Some(TARGET)));
        assert_eq!(redirects_recorded(&app, &url["id"]).await, 1);

        // A form without the field, or not a form at all: 400 in the envelope.
        let resp = app.send_raw(Method::POST, &format!("/r/{code}/unlock"), "application/x-www-form-urlencoded", "pass=x").await;
        let (status, _, body) = parts(resp).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].is_string(), "{body}");
        // No form at all: 415, in the envelope.
        let resp = app.client.post(app.url(&format!("/r/{code}/unlock"))).send().await.unwrap();
        let (status, _, body) = parts(resp).await;
        assert_eq!(status, 415, "{body}");
        assert!(body["error"].is_string(), "{body}");
        // An unknown code: 404, as its GET.
        let (status, _, body) = post_form(&app, "nosuchcode", PASSWORD).await;
        assert_eq!((status, body), (404, error("URL not found")));
        // An open link's form answer is its redirect, counted.
        let open = app.create_url("https://example.com/open").await;
        let (status, location, _) = post_form(&app, open["short_code"].as_str().unwrap(), "x").await;
        assert_eq!((status, location.as_deref()), (303, Some("https://example.com/open")));
        assert_eq!(redirects_recorded(&app, &open["id"]).await, 1);
        assert_eq!(redirects_recorded(&app, &url["id"]).await, 1);
    }
}

backend_test! {
    async fn a_password_set_changed_and_removed_by_patch_applies_at_once(app) {
        let url = app.create_url("https://example.com/later").await;
        let (id, code) = (&url["id"], url["short_code"].as_str().unwrap());
        let r = format!("/r/{code}");
        // Cached as an open link first.
        assert_eq!(get_with(&app, &r, &[]).await.0, 302);
        assert_eq!(get_with(&app, &r, &[]).await.0, 302);
        let patch = |body: Value| {
            let app = &app;
            async move {
                parts(app.request(Method::PATCH, &format!("/urls/{id}/details"), Some(&body)).await).await
            }
        };
        let (status, _, details) = patch(json!({"password": "first"})).await;
        assert_eq!((status, &details["password_protected"]), (200, &json!(true)), "{details}");
        assert_eq!(get_with(&app, &r, &[]).await.0, 401, "the cached open link is gone");
        assert_eq!(get_with(&app, &r, &[("x-link-password", "first")]).await.0, 302);

        let (status, _, _) = patch(json!({"password": "second"})).await;
        assert_eq!(status, 200);
        assert_eq!(get_with(&app, &r, &[("x-link-password", "first")]).await.0, 401);
        assert_eq!(get_with(&app, &r, &[("x-link-password", "second")]).await.0, 302);

        for (bad, message) in [
            (json!(""), "Field 'password' must be 1 to 128 characters without control characters"),
            (json!("x".repeat(129)), "Field 'password' must be 1 to 128 characters without control characters"),
            (json!("tab\there"), "Field 'password' must be 1 to 128 characters without control characters"),
            (json!(1234), "Field 'password' must be a string"),
        ] {
            let (status, _, body) = patch(json!({ "password": bad })).await;
            assert_eq!((status, body), (400, json!({ "error": message })));
            let (status, _, body) = parts(app.post("/urls", &json!({"original_url": TARGET, "password": bad})).await).await;
            assert_eq!((status, body), (400, json!({ "error": message })));
        }

        let (status, _, details) = patch(json!({"password": null})).await;
        assert_eq!((status, &details["password_protected"]), (200, &json!(false)), "{details}");
        let (status, cc, location, _) = get_with(&app, &r, &[]).await;
        assert_eq!((status, cc, location.as_deref()), (302, None, Some("https://example.com/later")));
        // 2 open redirects, 2 with the password, 1 open again.
        assert_eq!(redirects_recorded(&app, id).await, 5);
    }
}

backend_test! {
    async fn an_expired_password_link_asks_for_the_password_before_it_says_so(app) {
        let (status, _, url) = parts(app.post("/urls", &json!({
            "original_url": TARGET, "password": PASSWORD, "max_clicks": 1,
        })).await).await;
        assert_eq!(status, 201);
        let r = format!("/r/{}", url["short_code"].as_str().unwrap());
        // Asking without the password spends none of its clicks.
        assert_eq!(get_with(&app, &r, &[]).await.0, 401);
        assert_eq!(get_with(&app, &r, &[("x-link-password", "nope")]).await.0, 401);
        assert_eq!(get_with(&app, &r, &[("x-link-password", PASSWORD)]).await.0, 302);
        assert_eq!(get_with(&app, &r, &[]).await.0, 401);
        let (status, _, _, body) = get_with(&app, &r, &[("x-link-password", PASSWORD)]).await;
        assert_eq!((status, body), (410, error("URL has expired")));
        assert_eq!(redirects_recorded(&app, &url["id"]).await, 1);
    }
}

/// Parallel wrong attempts of one client, through every api instance given: exactly the
/// budget (5) are checked (401), the rest are 429; the right password is refused too until
/// the window ends, while another client and another link are not affected.
async fn attempts_are_limited_per_client_and_link(backend: Backend) {
    let proxy = |c: &mut api::Config| c.trusted_proxy = Some("127.0.0.1".parse().unwrap());
    let app = TestApp::spawn_with(backend, proxy).await;
    let sibling = match backend {
        // A second api process on the same database and Redis: the budget is shared.
        Backend::Postgres => Some(TestApp::spawn_on(backend, app.storage.clone(), proxy).await),
        Backend::Sqlite => None,
    };
    let (url, code) = create_protected(&app, TARGET, PASSWORD).await;
    let (_, other) = create_protected(&app, "https://example.com/other", PASSWORD).await;
    let r = format!("/r/{code}");
    let attempt = |app: &TestApp, path: String, client: &'static str, password: &'static str| {
        let req = app
            .client
            .get(app.url(&path))
            .header("x-forwarded-for", client)
            .header("x-link-password", password);
        async move {
            let resp = req.send().await.unwrap();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            (resp.status().as_u16(), retry, resp.text().await.unwrap())
        }
    };
    let mut tasks = Vec::new();
    for i in 0..24 {
        let via = match (&sibling, i % 2) {
            (Some(s), 1) => s,
            _ => &app,
        };
        tasks.push(attempt(via, r.clone(), "203.0.113.7", "wrong"));
    }
    let answers = futures_util::future::join_all(tasks).await;
    let wrong = answers.iter().filter(|a| a.0 == 401).count();
    let limited: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert_eq!((wrong, limited.len()), (5, 19), "{answers:?}");
    for (_, retry, body) in &limited {
        assert!(
            matches!(retry, Some(s) if (1..=300).contains(s)),
            "{retry:?}"
        );
        let body: Value = serde_json::from_str(body).unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("Too many password attempts; try again in "),
            "{body}"
        );
    }
    // Spent: the right password too.
    let (status, _, _) = attempt(&app, r.clone(), "203.0.113.7", PASSWORD).await;
    assert_eq!(status, 429);
    // Another client at this link, and this client at another link, have their own.
    let (status, _, _) = attempt(&app, r.clone(), "198.51.100.9", PASSWORD).await;
    assert_eq!(status, 302);
    let (status, _, _) = attempt(&app, format!("/r/{other}"), "203.0.113.7", PASSWORD).await;
    assert_eq!(status, 302);
    // The form counts against the same budget.
    let resp = app
        .client
        .post(app.url(&format!("{r}/unlock")))
        .header("x-forwarded-for", "203.0.113.7")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "password={}",
            url::form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(redirects_recorded(&app, &url["id"]).await, 1);
    // The instances' metrics, summed, say the same.
    let instances: Vec<&TestApp> = std::iter::once(&app).chain(sibling.as_ref()).collect();
    let attempts = |result: &str| -> u64 {
        let series = format!("curtain_link_password_attempts_total{{result=\"{result}\"}} ");
        instances
            .iter()
            .map(|a| {
                let text = a.state.metrics.render();
                let line = text
                    .lines()
                    .find(|l| l.starts_with(&series))
                    .unwrap()
                    .to_owned();
                line[series.len()..].parse::<u64>().unwrap()
            })
            .sum()
    };
    assert_eq!(
        (attempts("wrong"), attempts("limited"), attempts("accepted")),
        (5, 21, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_limited_per_client_and_link_sqlite() {
    attempts_are_limited_per_client_and_link(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn attempts_are_limited_per_client_and_link_postgres() {
    attempts_are_limited_per_client_and_link(Backend::Postgres).await;
}
