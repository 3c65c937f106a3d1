//! Section 0's hostile inputs: oversized, malformed, deeply nested or NUL-laden bodies,
//! over-long strings, out-of-range integers, booleans for integers and URLs with control
//! characters. All are client errors (4xx) with a message naming the field, never a 500.

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{TestApp, parts};

const JSON: &str = "application/json";

/// Sends a raw JSON body; asserts a 4xx and returns (status, body).
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let (status, cache, body) = parts(app.send_raw(method, path, JSON, body).await).await;
    assert!((400..500).contains(&status), "{path}: {status} {body}");
    assert!(cache.is_none());
    (status, body)
}

/// Asserts the contract's answer to a bad `field`: 422 `{"errors": {field: ...}}` from the
/// users routes, 400 `{"error": "... 'field' ..."}` from every other.
fn names_field(path: &str, status: u16, body: &Value, field: &str) {
    if path.starts_with("/users") {
        assert_eq!(status, 422, "{path}: {body}");
        assert!(
            body["errors"][field].is_string(),
            "{path}: {body} should name {field}"
        );
    } else {
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("'{field}'")),
            "{path}: {body} should name {field}"
        );
    }
}

backend_test! {
    async fn bodies_over_2_mib_are_413_and_up_to_2_mib_are_read(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let url = app.create_url("https://example.com/x").await;
        let big = format!("{{\"original_url\": \"https://example.com/{}\"}}", "a".repeat(2 * 1024 * 1024));
        for (method, path) in [
            (Method::POST, "/urls".to_owned()),
            (Method::POST, "/users".into()),
            (Method::POST, "/events".into()),
            (Method::PUT, format!("/urls/{}", url["id"])),
            (Method::PUT, format!("/users/{}", user["id"])),
        ] {
            let (status, body) = raw(&app, method.clone(), &path, big.clone()).await;
            assert_eq!((status, body), (413, json!({"error": "Request body too large"})), "{method} {path}");
        }
        let form = format!("original_url=https%3A%2F%2Fexample.com%2F{}", "a".repeat(2 * 1024 * 1024));
        let (status, _, body) = parts(app.send_raw(Method::POST, "/shorten-ui", "application/x-www-form-urlencoded", form).await).await;
        assert_eq!((status, body), (413, json!({"error": "Request body too large"})));
        // Just under 2 MiB is read, so the over-long URL gets its own message.
        let under = format!("{{\"original_url\": \"https://example.com/{}\"}}", "a".repeat(2 * 1024 * 1024 - 100));
        let (status, body) = raw(&app, Method::POST, "/urls", under).await;
        assert_eq!((status, body), (400, json!({"error": "Field 'original_url' must not exceed 2048 characters"})));
    }
}

backend_test! {
    async fn malformed_nan_empty_and_non_json_bodies_count_as_no_body(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let url = app.create_url("https://example.com/x").await;
        let bodies: [(&str, &[u8]); 7] = [
            (JSON, b"{\"original_url\": \"https://example.com/y\""),
            (JSON, b"{\"original_url\": \"https://example.com/y\", \"user_id\": NaN}"),
            (JSON, b"{\"original_url\": \"https://example.com/y\", \"n\": Infinity}"),
            (JSON, b""),
            (JSON, b"{\"original_url\": \"https://example.com/\xff\"}"),
            (JSON, b"{\"original_url\": \"https://example.com/\\ud800\"}"),
            ("text/plain", b"{\"original_url\": \"https://example.com/y\"}"),
        ];
        let user_path = format!("/users/{}", user["id"]);
        let url_path = format!("/urls/{}", url["id"]);
        for (ct, bytes) in bodies {
            let send = |method: Method, path: &str| {
                let path = path.to_owned();
                let app = &app;
                async move { parts(app.send_raw(method, &path, ct, bytes.to_vec()).await).await }
            };
            let what = String::from_utf8_lossy(bytes);
            let request = json!({"errors": {"request": "JSON body must be an object"}});
            assert_eq!(send(Method::POST, "/users").await, (422, None, request.clone()), "{ct} {what}");
            assert_eq!(send(Method::PUT, &user_path).await, (422, None, request), "{ct} {what}");
            assert_eq!(send(Method::POST, "/urls").await, (400, None, json!({"error": "Field 'original_url' is required"})), "{ct} {what}");
            assert_eq!(send(Method::PUT, &url_path).await, (400, None, json!({"error": "JSON body must be an object"})), "{ct} {what}");
            assert_eq!(send(Method::POST, "/events").await, (400, None, json!({"error": "JSON body must be an object"})), "{ct} {what}");
        }
        // A JSON content type with parameters, or a +json type, is still JSON.
        let (status, _, _) = parts(app.send_raw(Method::POST, "/urls", "application/json; charset=utf-8", r#"{"original_url": "https://example.com/cs"}"#).await).await;
        assert_eq!(status, 201);
    }
}

backend_test! {
    async fn deeply_nested_json_is_a_client_error_and_moderate_nesting_is_fine(app) {
        let url = app.create_url("https://example.com/x").await;
        let deep = format!("{{\"username\": {}1{}, \"email\": \"a@b.co\"}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(raw(&app, Method::POST, "/users", deep).await.1, json!({"errors": {"request": "JSON body must be an object"}}));
        let deep_details = format!(
            "{{\"event_type\": \"click\", \"url_id\": {}, \"details\": {}1{}}}",
            url["id"],
            "{\"a\":".repeat(50_000),
            "}".repeat(50_000)
        );
        assert_eq!(raw(&app, Method::POST, "/events", deep_details).await.1, json!({"error": "JSON body must be an object"}));
        let deep_url = format!("{{\"original_url\": {}\"https://x.example\"{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parts(app.send_raw(Method::POST, "/urls", JSON, deep_url).await).await.0, 400);
        // Within the parser's limit the details are stored and returned as sent.
        let mut nested = json!(1);
        for _ in 0..100 {
            nested = json!({ "a": nested });
        }
        let (status, _, event) = parts(app.post("/events", &json!({"event_type": "click", "url_id": url["id"], "details": nested})).await).await;
        assert_eq!((status, &event["details"]), (201, &nested));
    }
}

backend_test! {
    async fn nul_bytes_are_client_errors_naming_the_field(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let url = app.create_url("https://example.com/x").await;
        let uid = user["id"].clone();
        let cases: Vec<(Method, String, Value, &str)> = vec![
            (Method::POST, "/users".into(), json!({"username": "a\u{0}b", "email": "n@x.io"}), "username"),
            (Method::POST, "/users".into(), json!({"username": "nul", "email": "n\u{0}@x.io"}), "email"),
            (Method::PUT, format!("/users/{uid}"), json!({"username": "\u{0}"}), "username"),
            (Method::PUT, format!("/users/{uid}"), json!({"email": "a@x.io\u{0}"}), "email"),
            (Method::POST, "/urls".into(), json!({"original_url": "https://example.com/\u{0}"}), "original_url"),
            (Method::POST, "/urls".into(), json!({"original_url": "https://exa\u{0}mple.com/"}), "original_url"),
            (Method::POST, "/urls".into(), json!({"original_url": "https://example.com/t", "title": "a\u{0}"}), "title"),
            (Method::PUT, format!("/urls/{}", url["id"]), json!({"title": "a\u{0}"}), "title"),
            (Method::POST, "/events".into(), json!({"event_type": "cl\u{0}ick", "url_id": url["id"]}), "event_type"),
            (Method::POST, "/events".into(), json!({"event_type": "click", "url_id": url["id"], "details": {"k": "v\u{0}"}}), "details"),
            (Method::POST, "/events".into(), json!({"event_type": "click", "url_id": url["id"], "details": {"k\u{0}": 1}}), "details"),
            (Method::POST, "/events".into(), json!({"event_type": "click", "url_id": url["id"], "details": {"k": [{"deep": "\u{0}"}]}}), "details"),
        ];
        for (method, path, body, field) in cases {
            let (status, cache, got) = parts(app.request(method.clone(), &path, Some(&body)).await).await;
            assert!(cache.is_none());
            names_field(&path, status, &got, field);
        }
        // Unknown keys carrying NUL are ignored; a NUL in a filter matches nothing.
        let (status, _, _) = parts(app.post("/users", &json!({"username": "ok", "email": "ok@x.io", "x": "\u{0}"})).await).await;
        assert_eq!(status, 201);
        for (q, answer) in [
            ("/events?event_type=%00", (200, json!([]))),
            ("/events?event_type=click%00", (200, json!([]))),
            ("/urls?user_id=%00", (400, json!({"error": "Query parameter 'user_id' must be an integer"}))),
            ("/users?page=%00", (400, json!({"error": "Pagination parameters must be positive integers"}))),
        ] {
            let (status, _, body) = parts(app.get(q).await).await;
            assert_eq!((status, body), answer, "{q}");
        }
        let form = "original_url=https%3A%2F%2Fexample.com%2Fui&title=a%00b";
        let resp = app.send_raw(Method::POST, "/shorten-ui", "application/x-www-form-urlencoded", form).await;
        assert_eq!(resp.status(), 400);
        assert!(resp.text().await.unwrap().contains("'title'"));
    }
}

backend_test! {
    async fn strings_longer_than_their_column_are_client_errors(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let url = app.create_url("https://example.com/x").await;
        let cases: Vec<(Method, String, Value, &str)> = vec![
            (Method::POST, "/users".into(), json!({"username": "u".repeat(121), "email": "l@x.io"}), "username"),
            (Method::POST, "/users".into(), json!({"username": "l", "email": format!("{}@x.io", "e".repeat(251))}), "email"),
            (Method::PUT, format!("/users/{}", user["id"]), json!({"username": "u".repeat(10_000)}), "username"),
            (Method::POST, "/urls".into(), json!({"original_url": format!("https://x.example/{}", "p".repeat(2032))}), "original_url"),
            (Method::POST, "/urls".into(), json!({"original_url": "https://x.example/t", "title": "t".repeat(256)}), "title"),
            (Method::PUT, format!("/urls/{}", url["id"]), json!({"title": "t".repeat(256)}), "title"),
            (Method::POST, "/events".into(), json!({"event_type": "e".repeat(65), "url_id": url["id"]}), "event_type"),
        ];
        for (method, path, body, field) in cases {
            let (status, _, got) = parts(app.request(method.clone(), &path, Some(&body)).await).await;
            names_field(&path, status, &got, field);
        }
        // At the limit (in characters, multi-byte included) they fit.
        let (status, _, ok) = parts(app.post("/urls", &json!({"original_url": "https://x.example/t", "title": "ü".repeat(255)})).await).await;
        assert_eq!((status, ok["title"].as_str().map(|t| t.chars().count())), (201, Some(255)));
        let (status, _, _) = parts(app.put(&format!("/urls/{}", url["id"]), &json!({"title": "😀".repeat(255)})).await).await;
        assert_eq!(status, 200);
        let (status, _, _) = parts(app.post("/events", &json!({"event_type": "é".repeat(64), "url_id": url["id"]})).await).await;
        assert_eq!(status, 201);
    }
}

backend_test! {
    async fn out_of_range_integers_and_booleans_are_never_accepted_as_ids(app) {
        let url = app.create_url("https://example.com/x").await;
        let id = &url["id"];
        for (path, body, status, message) in [
            ("/urls", r#"{"original_url": "https://x.example/1", "user_id": 99999999999999999999}"#.to_owned(), 400, "Field 'user_id' must reference an existing user"),
            ("/urls", r#"{"original_url": "https://x.example/1", "user_id": -99999999999999999999}"#.to_owned(), 400, "Field 'user_id' must reference an existing user"),
            ("/urls", r#"{"original_url": "https://x.example/1", "user_id": 1e400}"#.to_owned(), 400, "Field 'user_id' must be an integer"),
            ("/urls", r#"{"original_url": "https://x.example/1", "user_id": true}"#.to_owned(), 400, "Field 'user_id' must be an integer"),
            ("/urls", r#"{"original_url": "https://x.example/1", "user_id": 1.0}"#.to_owned(), 400, "Field 'user_id' must be an integer"),
            ("/events", r#"{"event_type": "c", "url_id": 99999999999999999999}"#.to_owned(), 404, "URL not found"),
            ("/events", r#"{"event_type": "c", "url_id": true}"#.to_owned(), 400, "Field 'url_id' must be an integer"),
            ("/events", r#"{"event_type": "c", "url_id": 1e2}"#.to_owned(), 400, "Field 'url_id' must be an integer"),
            ("/events", format!(r#"{{"event_type": "c", "url_id": {id}, "user_id": true}}"#), 400, "Field 'user_id' must be an integer"),
            ("/events", format!(r#"{{"event_type": "c", "url_id": {id}, "user_id": 18446744073709551616}}"#), 404, "User not found"),
        ] {
            assert_eq!(raw(&app, Method::POST, path, body.clone()).await, (status, json!({ "error": message })), "{body}");
        }
        let (status, body) = raw(&app, Method::PUT, &format!("/urls/{id}"), r#"{"is_active": 1}"#).await;
        assert_eq!((status, body), (400, json!({"error": "Field 'is_active' must be a boolean"})));
    }
}

backend_test! {
    async fn numbers_in_details_beyond_what_storage_holds_are_client_errors(app) {
        let url = app.create_url("https://example.com/x").await;
        let id = &url["id"];
        for number in ["1e1000000", "-1e1000000", "1e-1000000", &"9".repeat(200_000)] {
            let body = format!(r#"{{"event_type": "c", "url_id": {id}, "details": {{"n": {number}}}}}"#);
            let (status, body) = raw(&app, Method::POST, "/events", body).await;
            assert_eq!(status, 400, "{body}");
            assert!(body["error"].as_str().unwrap().contains("'details'"), "{body}");
        }
        // Ordinary large, small and precise numbers are kept.
        let body = format!(r#"{{"event_type": "c", "url_id": {id}, "details": {{"big": 99999999999999999999, "f": 1.5e300, "neg": -0.25}}}}"#);
        let (status, _, event) = parts(app.send_raw(Method::POST, "/events", JSON, body).await).await;
        assert_eq!(status, 201, "{event}");
        assert_eq!(event["details"]["neg"], json!(-0.25));
        assert_eq!(event["details"]["big"].to_string(), "99999999999999999999");
    }
}

backend_test! {
    async fn urls_with_control_characters_or_spaces_in_the_host_are_invalid(app) {
        for bad in [
            "https://example.com/a\tb",
            "https://example.com/a\r\nSet-Cookie: x=1",
            "https://example.com/\na",
            "https://exa\u{7f}mple.com/",
            "https://example.com/a\u{85}b",
            "https://exa mple.com/",
            "https://example .com/",
            "http:// example.com/",
            "https://exa\u{3000}mple.com/",
            "https://exa\u{a0}mple.com/",
            // Host and port as a browser reads them (the url crate).
            "https://example.com:65536/",
            "https://example.com:8o/",
            "https://[::1/",
            "https://[zz::1]/",
            "https://exa<mple.com/",
            "https://exa|mple.com/",
        ] {
            let (status, cache, body) = parts(app.post("/urls", &json!({"original_url": bad})).await).await;
            assert_eq!((status, cache, body), (400, None, json!({"error": "Field 'original_url' must be a valid http or https URL"})), "{bad:?}");
        }
        // Spaces in the path are not in the host: stored as sent, percent-encoded in Location.
        let (status, _, url) = parts(app.post("/urls", &json!({"original_url": "https://example.com/a b"})).await).await;
        assert_eq!(status, 201);
        let resp = app.get(&format!("/r/{}", url["short_code"].as_str().unwrap())).await;
        assert_eq!(resp.headers()["location"], "https://example.com/a%20b");
    }
}
