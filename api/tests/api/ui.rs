//! Section 8 (UI): the home page with the shorten form, htmx served locally, and the
//! `/shorten-ui` fragments (same rules and code path as `POST /urls`).

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{Backend, TestApp, parts};

async fn shorten(app: &TestApp, fields: &[(&str, &str)]) -> (u16, String) {
    let form = serde_urlencoded::to_string(fields).unwrap();
    let resp = app
        .send_raw(
            Method::POST,
            "/shorten-ui",
            "application/x-www-form-urlencoded",
            form,
        )
        .await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(resp.headers().get("x-cache").is_none());
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn success(host: &str, code: &str, id: &Value) -> String {
    format!(
        "<div id=\"message\" class=\"success\">Short URL ready!<br><br><strong>Redirect:</strong> \
         <a href=\"{host}/r/{code}\" target=\"_blank\">{host}/r/{code}</a><br><strong>Payload:</strong> \
         <a href=\"{host}/urls/{id}\" target=\"_blank\">{host}/urls/{id}</a></div>"
    )
}

fn error(message: &str) -> String {
    format!("<div id=\"message\" class=\"error\">{message}</div>")
}

async fn only_url(app: &TestApp) -> Value {
    let (_, _, list) = parts(app.get("/urls").await).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    list[0].clone()
}

backend_test! {
    async fn home_page_renders_the_shorten_form_and_escaped_route_list(app) {
        let resp = app.get("/").await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(resp.headers().get("x-cache").is_none());
        let html = resp.text().await.unwrap();
        for needle in [
            "<form hx-post=\"/shorten-ui\" hx-target=\"#message\">",
            "name=\"original_url\"",
            "name=\"title\"",
            "name=\"user_id\"",
            "<div id=\"message\"></div>",
            "src=\"/static/htmx.min.js\"",
            "POST /urls<",
            "GET /r/&lt;short_code&gt;",
            "POST /users/bulk",
            "GET /urls/&lt;id&gt;/analytics",
            "GET /urls/short/&lt;short_code&gt;",
            "GET /urls/&lt;short_code&gt;/redirect",
            "PUT /users/&lt;id&gt;",
            "POST /events",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        assert!(!html.contains("<short_code>") && !html.contains("<id>"), "placeholders must be escaped");
    }
}

backend_test! {
    async fn htmx_is_served_locally(app) {
        let resp = app.get("/static/htmx.min.js").await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().contains("javascript"));
        assert!(resp.text().await.unwrap().contains("htmx"));
    }
}

backend_test! {
    async fn shorten_ui_answers_the_success_fragment_201_then_200(app) {
        let (status, html) = shorten(&app, &[("original_url", " https://example.com/ui "), ("title", " T ")]).await;
        assert_eq!(status, 201, "{html}");
        let url = only_url(&app).await;
        assert_eq!((&url["original_url"], &url["title"]), (&json!("https://example.com/ui"), &json!("T")));
        let code = url["short_code"].as_str().unwrap();
        assert_eq!(html, success(&app.address, code, &url["id"]));
        // Same URL again: the same mapping, 200, the same fragment, no second event.
        let (status, again) = shorten(&app, &[("original_url", "https://example.com/ui")]).await;
        assert_eq!((status, again), (200, html));
        let (_, _, events) = parts(app.get(&format!("/events?url_id={}", url["id"])).await).await;
        assert_eq!(events.as_array().unwrap().len(), 1);
        assert_eq!(events[0]["event_type"], "created");
        assert_eq!(events[0]["details"], json!({"short_code": code, "original_url": "https://example.com/ui"}));
        // It is the JSON API's mapping too.
        let (status, _, via_json) = parts(app.post("/urls", &json!({"original_url": "https://example.com/ui"})).await).await;
        assert_eq!((status, via_json), (200, url));
    }
}

backend_test! {
    async fn shorten_ui_uses_long_url_owner_and_invalidates_caches(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        assert_eq!(parts(app.get("/urls").await).await.1.as_deref(), Some("MISS"));
        assert_eq!(parts(app.get("/urls").await).await.1.as_deref(), Some("HIT"));
        let uid = user["id"].to_string();
        let (status, _) = shorten(&app, &[("original_url", ""), ("long_url", "https://example.com/alias"), ("user_id", &format!(" {uid} "))]).await;
        assert_eq!(status, 201);
        let (_, cache, list) = parts(app.get("/urls").await).await;
        assert_eq!(cache.as_deref(), Some("MISS"), "the create invalidated the cached list");
        assert_eq!((&list[0]["original_url"], &list[0]["user_id"]), (&json!("https://example.com/alias"), &user["id"]));
        let (_, _, events) = parts(app.get(&format!("/events?url_id={}", list[0]["id"])).await).await;
        assert_eq!(events[0]["user_id"], user["id"]);
        // A number typed with leading zeros is still that number.
        let (status, _) = shorten(&app, &[("original_url", "https://example.com/zeros"), ("user_id", &format!("00{uid}"))]).await;
        assert_eq!(status, 201);
        let (_, _, list) = parts(app.get(&format!("/urls?user_id={uid}")).await).await;
        assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    }
}

backend_test! {
    async fn shorten_ui_blank_user_id_means_no_owner(app) {
        for (i, blank) in ["", "   "].into_iter().enumerate() {
            let target = format!("https://example.com/{i}");
            let (status, html) = shorten(&app, &[("original_url", &target), ("user_id", blank), ("title", "")]).await;
            assert_eq!(status, 201, "{html}");
        }
        let (_, _, list) = parts(app.get("/urls").await).await;
        for url in list.as_array().unwrap() {
            assert_eq!((&url["user_id"], &url["title"]), (&Value::Null, &Value::Null));
        }
    }
}

backend_test! {
    async fn shorten_ui_errors_are_400_fragments_with_the_json_api_message(app) {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![], "Field 'original_url' is required"),
            (vec![("original_url", ""), ("long_url", "")], "Field 'original_url' is required"),
            (vec![("original_url", "   ")], "Field 'original_url' must not be empty"),
            (vec![("original_url", "javascript:alert(1)")], "Field 'original_url' must be a valid http or https URL"),
            (vec![("original_url", "ftp://x.example"), ("user_id", "abc")], "Field 'user_id' must be an integer"),
            (vec![("original_url", "https://x.example"), ("user_id", "1.5")], "Field 'user_id' must be an integer"),
            (vec![("original_url", "https://x.example"), ("user_id", "true")], "Field 'user_id' must be an integer"),
            (vec![("original_url", "https://x.example"), ("user_id", "[1]")], "Field 'user_id' must be an integer"),
            (vec![("original_url", "https://x.example"), ("user_id", "4242")], "Field 'user_id' must reference an existing user"),
            (vec![("original_url", "https://x.example"), ("user_id", "99999999999999999999")], "Field 'user_id' must reference an existing user"),
        ];
        for (fields, message) in cases {
            let (status, html) = shorten(&app, &fields).await;
            assert_eq!((status, html), (400, error(message)), "{fields:?}");
            // The JSON API says the same (apostrophes are not escaped in the fragment).
            let mut body = serde_json::Map::new();
            for (k, v) in &fields {
                let v = if *k == "user_id" { serde_json::from_str(v).unwrap_or_else(|_| json!(v)) } else { json!(v) };
                body.insert((*k).to_owned(), v);
            }
            let (_, _, json_error) = parts(app.post("/urls", &Value::Object(body)).await).await;
            assert_eq!(json_error["error"], message, "{fields:?}");
        }
        let over = format!("https://example.com/{}", "a".repeat(2100));
        let (status, html) = shorten(&app, &[("original_url", &over)]).await;
        assert_eq!((status, html), (400, error("Field 'original_url' must not exceed 2048 characters")));
        assert_eq!(parts(app.get("/urls").await).await.2, json!([]));
    }
}

backend_test! {
    async fn shorten_ui_ignores_a_json_body(app) {
        let resp = app.post("/shorten-ui", &json!({"original_url": "https://example.com/json"})).await;
        assert_eq!(resp.status(), 400);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert_eq!(resp.text().await.unwrap(), error("Field 'original_url' is required"));
        assert_eq!(parts(app.get("/urls").await).await.2, json!([]));
    }
}

backend_test! {
    async fn shorten_ui_escapes_values_written_into_html(app) {
        let resp = app
            .client
            .post(app.url("/shorten-ui"))
            .header("host", "a&b\"<c>'d")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("original_url=https%3A%2F%2Fexample.com%2Fx")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let html = resp.text().await.unwrap();
        let url = only_url(&app).await;
        let code = url["short_code"].as_str().unwrap();
        assert_eq!(html, success("http://a&amp;b&quot;&lt;c&gt;'d", code, &url["id"]));
    }
}

async fn public_base_url_is_used(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.public_base_url = Some("https://sho.rt".into());
    })
    .await;
    let (status, html) = shorten(&app, &[("original_url", "https://example.com/pub")]).await;
    assert_eq!(status, 201);
    let url = only_url(&app).await;
    assert_eq!(
        html,
        success(
            "https://sho.rt",
            url["short_code"].as_str().unwrap(),
            &url["id"]
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shorten_ui_links_use_public_base_url_when_configured_sqlite() {
    public_base_url_is_used(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn shorten_ui_links_use_public_base_url_when_configured_postgres() {
    public_base_url_is_used(Backend::Postgres).await;
}

backend_test! {
    async fn the_link_page_shows_details_counts_and_a_self_served_chart(app) {
        let resp = app.post("/urls", &json!({"original_url": "https://example.com/page?a=1&b=\"2\"", "title": "<b>T</b>"})).await;
        let url: Value = resp.json().await.unwrap();
        let code = url["short_code"].as_str().unwrap();
        for _ in 0..3 {
            assert_eq!(app.get(&format!("/r/{code}")).await.status(), 302);
        }
        app.run_pending_jobs().await;
        let resp = app.get(&format!("/ui/links/{code}")).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let page = resp.text().await.unwrap();
        assert!(page.contains(r#"<strong id="total-clicks">3</strong>"#), "{page}");
        assert!(page.contains(r#"<strong id="unique-visitors">1</strong>"#), "{page}");
        assert!(page.contains(r#"<strong id="total-events">4</strong>"#), "created + 3 redirects: {page}");
        assert!(page.contains(&format!(r#"data-url-id="{}""#, url["id"])), "{page}");
        assert!(page.contains(r#"<script src="/static/chart.js"></script>"#));
        // Values are escaped by the templates: no markup from the title, the target intact.
        assert!(page.contains("&lt;b&gt;T&lt;/b&gt;"), "{page}");
        assert!(!page.contains("<b>T</b>"));
        assert!(page.contains("https://example.com/page?a=1&amp;b=&quot;2&quot;"), "{page}");
        assert!(!page.contains("cdn"), "no CDN");
        let js = app.get("/static/chart.js").await;
        assert_eq!(js.status(), 200);
        assert!(js.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
        assert!(js.text().await.unwrap().contains("/analytics/timeseries?granularity=hour"));
        let (status, _, body) = parts(app.get("/ui/links/nope42").await).await;
        assert_eq!((status, body), (404, json!({"error": "URL not found"})));
    }
}
