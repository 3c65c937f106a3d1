//! Section 3 (users): create with every 422 in order, list and pagination, get, partial
//! update (uniqueness, `{}`), delete (links and events survive with `user_id = null`).

use std::fmt::Write as _;

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{TestApp, parts};

/// Asserts a 422 `{"errors": {field: message}}` with nothing else in it, and no `X-Cache`.
async fn assert_422(resp: reqwest::Response, field: &str, message: &str) {
    let (status, cache, body) = parts(resp).await;
    assert_eq!((status, cache), (422, None), "{body}");
    assert_eq!(body, json!({ "errors": { field: message } }));
}

async fn post_user(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post("/users", body).await
}

fn is_timestamp(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok() && s.len() == 19
}

backend_test! {
    async fn post_user_trims_fields_ignores_unknown_ones_and_answers_201(app) {
        let resp = post_user(&app, &json!({"username": "  ada  ", "email": " ada@example.com ", "id": 77, "admin": true})).await;
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let (status, cache, body) = parts(resp).await;
        assert_eq!((status, cache), (201, None));
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 4, "{body}");
        assert_eq!(body["username"], "ada");
        assert_eq!(body["email"], "ada@example.com");
        assert_ne!(body["id"], 77, "a client-chosen id is ignored");
        assert!(is_timestamp(&body["created_at"]), "{body}");
        let (status, _, fetched) = parts(app.get(&format!("/users/{}", body["id"])).await).await;
        assert_eq!((status, fetched), (200, body));
    }
}

backend_test! {
    async fn post_user_rejects_a_body_that_is_not_an_object(app) {
        let message = "JSON body must be an object";
        for body in [json!([]), json!("ada"), json!(5), Value::Null] {
            assert_422(post_user(&app, &body).await, "request", message).await;
        }
        // Malformed JSON, NaN, an empty body and a non-JSON content type are "no body".
        for (ct, raw) in [
            ("application/json", "{\"username\": "),
            ("application/json", "{\"username\": NaN, \"email\": \"a@b.co\"}"),
            ("application/json", ""),
            ("text/plain", "{\"username\": \"ada\", \"email\": \"ada@example.com\"}"),
        ] {
            assert_422(app.send_raw(Method::POST, "/users", ct, raw).await, "request", message).await;
        }
    }
}

backend_test! {
    async fn post_user_reports_the_first_failure_in_the_contract_order(app) {
        app.create_user("taken", "Taken@Example.com").await;
        let long_name = "n".repeat(121);
        let long_email = format!("{}@example.com", "e".repeat(244));
        assert_eq!(long_email.chars().count(), 256);
        let cases: Vec<(Value, &str, &str)> = vec![
            // Required fields first (username before email), before any type check.
            (json!({}), "username", "Field 'username' is required"),
            (json!({"email": 5}), "username", "Field 'username' is required"),
            (json!({"username": 5}), "email", "Field 'email' is required"),
            // Then per field, username first: type, blank, length.
            (json!({"username": 5, "email": 5}), "username", "Field 'username' must be a string"),
            (json!({"username": null, "email": "a@b.co"}), "username", "Field 'username' must be a string"),
            (json!({"username": true, "email": "a@b.co"}), "username", "Field 'username' must be a string"),
            (json!({"username": "   ", "email": 5}), "username", "Field 'username' must not be empty"),
            (json!({"username": long_name, "email": ""}), "username", "Field 'username' must be at most 120 characters"),
            (json!({"username": "ok", "email": ["a@b.co"]}), "email", "Field 'email' must be a string"),
            (json!({"username": "ok", "email": " \t "}), "email", "Field 'email' must not be empty"),
            (json!({"username": "ok", "email": long_email}), "email", "Field 'email' must be at most 255 characters"),
            // Then the email shape: an '@' with a '.' after the last '@'.
            (json!({"username": "ok", "email": "no-at-sign.example.com"}), "email", "Field 'email' must be a valid email address"),
            (json!({"username": "ok", "email": "a.b@localhost"}), "email", "Field 'email' must be a valid email address"),
            (json!({"username": "ok", "email": "a@b.c@host"}), "email", "Field 'email' must be a valid email address"),
            // Then uniqueness, without regard to case (and after trimming).
            (json!({"username": "ok", "email": " taken@EXAMPLE.com "}), "email", "Field 'email' must be unique"),
        ];
        for (body, field, message) in cases {
            assert_422(post_user(&app, &body).await, field, message).await;
        }
        let (_, _, users) = parts(app.get("/users").await).await;
        assert_eq!(users.as_array().unwrap().len(), 1, "no failed create inserted anything");
    }
}

backend_test! {
    async fn post_user_accepts_lengths_at_the_limit_counted_in_characters(app) {
        let username = "é".repeat(120);
        let email = format!("{}@example.com", "ü".repeat(243));
        assert_eq!(email.chars().count(), 255);
        let (status, _, body) = parts(post_user(&app, &json!({"username": format!("  {username}  "), "email": email})).await).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["username"], username);
        assert_eq!(body["email"], email);
        // The literal email rule: '@' then a '.' somewhere after the last '@'.
        app.create_user("b", "@x.io").await;
        app.create_user("c", "a@b.").await;
    }
}

backend_test! {
    async fn get_users_lists_every_user_ordered_by_id_without_x_cache(app) {
        let (status, cache, body) = parts(app.get("/users").await).await;
        assert_eq!((status, cache, body), (200, None, json!([])));
        let a = app.create_user("a", "a@x.io").await;
        let b = app.create_user("b", "b@x.io").await;
        let c = app.create_user("c", "c@x.io").await;
        let (status, cache, body) = parts(app.get("/users").await).await;
        assert_eq!((status, cache), (200, None));
        assert_eq!(body, json!([a, b, c]));
    }
}

backend_test! {
    async fn get_users_paginates_with_defaults_and_answers_empty_past_the_end(app) {
        let mut users = Vec::new();
        for i in 0..3 {
            users.push(app.create_user(&format!("u{i}"), &format!("u{i}@x.io")).await);
        }
        let get = |q: &'static str| {
            let app = &app;
            async move { parts(app.get(&format!("/users?{q}")).await).await }
        };
        assert_eq!(get("page=1&per_page=2").await.2, json!([users[0], users[1]]));
        assert_eq!(get("page=2&per_page=2").await.2, json!([users[2]]));
        assert_eq!(get("page=3&per_page=2").await.2, json!([]));
        assert_eq!(get("per_page=1").await.2, json!([users[0]]), "page defaults to 1");
        assert_eq!(get("page=1").await.2, json!(users), "per_page defaults to 20");
        assert_eq!(get("page=2").await.2, json!([]));
        // Far past the end (even beyond any offset the database can take) is still [].
        for q in ["page=1000000", "page=9223372036854775807&per_page=1000", "page=99999999999999999999"] {
            let (status, _, body) = get(q).await;
            assert_eq!((status, body), (200, json!([])), "{q}");
        }
    }
}

backend_test! {
    async fn get_users_rejects_zero_negative_and_non_integer_pagination(app) {
        app.create_user("a", "a@x.io").await;
        for q in [
            "page=0", "page=-1", "page=abc", "page=1.5", "page=", "per_page=0", "per_page=-5",
            "per_page=ten", "per_page=2.0", "page=1&per_page=0", "page=x&per_page=2",
        ] {
            let (status, cache, body) = parts(app.get(&format!("/users?{q}")).await).await;
            assert_eq!((status, cache), (400, None), "{q}");
            assert_eq!(body, json!({"error": "Pagination parameters must be positive integers"}), "{q}");
        }
    }
}

backend_test! {
    async fn get_users_caps_per_page_at_1000(app) {
        let csv = (1..=1001).fold(String::from("id,username,email\n"), |mut csv, i| {
            let _ = writeln!(csv, "{i},user{i},user{i}@x.io");
            csv
        });
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("users.csv"));
        let resp = app.client.post(app.url("/users/bulk")).multipart(form).send().await.unwrap();
        assert_eq!(parts(resp).await.2, json!({"count": 1001}));
        let (_, _, page) = parts(app.get("/users?per_page=5000").await).await;
        let page = page.as_array().unwrap();
        assert_eq!(page.len(), 1000);
        assert_eq!((page[0]["id"].as_i64(), page[999]["id"].as_i64()), (Some(1), Some(1000)));
        let (_, _, second) = parts(app.get("/users?page=2&per_page=5000").await).await;
        assert_eq!(second.as_array().unwrap().len(), 1, "page 2 of 1000 holds the last user");
        let (_, _, all) = parts(app.get("/users").await).await;
        assert_eq!(all.as_array().unwrap().len(), 1001, "without pagination the whole list");
    }
}

backend_test! {
    async fn get_user_answers_the_user_or_404(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let (status, cache, body) = parts(app.get(&format!("/users/{}", user["id"])).await).await;
        assert_eq!((status, cache, body), (200, None, user.clone()));
        let missing = user["id"].as_i64().unwrap() + 1;
        let (status, cache, body) = parts(app.get(&format!("/users/{missing}")).await).await;
        assert_eq!((status, cache, body), (404, None, json!({"error": "User not found"})));
        for method in [Method::PUT, Method::DELETE] {
            let (status, _, body) = parts(app.request(method, &format!("/users/{missing}"), Some(&json!({}))).await).await;
            assert_eq!((status, body), (404, json!({"error": "User not found"})));
        }
    }
}

backend_test! {
    async fn put_user_updates_only_the_given_fields_and_ignores_read_only_ones(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let path = format!("/users/{}", user["id"]);
        let (status, cache, body) = parts(app.put(&path, &json!({"username": "  grace "})).await).await;
        assert_eq!((status, cache), (200, None));
        assert_eq!(body, json!({"id": user["id"], "username": "grace", "email": "ada@x.io", "created_at": user["created_at"]}));
        let (_, _, body) = parts(app.put(&path, &json!({"email": " Grace@X.io ", "id": 999, "created_at": "2000-01-01T00:00:00", "x": 1})).await).await;
        assert_eq!(body, json!({"id": user["id"], "username": "grace", "email": "Grace@X.io", "created_at": user["created_at"]}));
        let (_, _, fetched) = parts(app.get(&path).await).await;
        assert_eq!(fetched, body);
        // `{}` (and only-ignored keys) answer 200 unchanged.
        for empty in [json!({}), json!({"id": 5})] {
            let (status, _, unchanged) = parts(app.put(&path, &empty).await).await;
            assert_eq!((status, unchanged), (200, body.clone()));
        }
    }
}

backend_test! {
    async fn put_user_applies_the_create_rules_except_required(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let path = format!("/users/{}", user["id"]);
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!([]), "request", "JSON body must be an object"),
            (json!("x"), "request", "JSON body must be an object"),
            (json!({"username": 1}), "username", "Field 'username' must be a string"),
            (json!({"username": null}), "username", "Field 'username' must be a string"),
            (json!({"username": " ", "email": 1}), "username", "Field 'username' must not be empty"),
            (json!({"username": "u".repeat(121)}), "username", "Field 'username' must be at most 120 characters"),
            (json!({"email": false}), "email", "Field 'email' must be a string"),
            (json!({"email": ""}), "email", "Field 'email' must not be empty"),
            (json!({"email": format!("{}@x.io", "e".repeat(251))}), "email", "Field 'email' must be at most 255 characters"),
            (json!({"email": "nope"}), "email", "Field 'email' must be a valid email address"),
        ];
        for (body, field, message) in cases {
            assert_422(app.put(&path, &body).await, field, message).await;
        }
        assert_422(app.send_raw(Method::PUT, &path, "application/json", "").await, "request", "JSON body must be an object").await;
        let (_, _, unchanged) = parts(app.get(&path).await).await;
        assert_eq!(unchanged, user);
    }
}

backend_test! {
    async fn put_user_rejects_email_used_by_another_user_case_insensitively(app) {
        let ada = app.create_user("ada", "ada@x.io").await;
        app.create_user("bob", "bob@x.io").await;
        let path = format!("/users/{}", ada["id"]);
        assert_422(app.put(&path, &json!({"username": "fine", "email": "BOB@x.io"})).await, "email", "Field 'email' must be unique").await;
        // Keeping (or re-casing) one's own email is not a conflict.
        let (status, _, body) = parts(app.put(&path, &json!({"email": "ADA@x.io"})).await).await;
        assert_eq!((status, &body["email"]), (200, &json!("ADA@x.io")));
        let (_, _, fetched) = parts(app.get(&path).await).await;
        assert_eq!(fetched["username"], "ada", "the rejected update changed nothing");
    }
}

backend_test! {
    async fn put_user_on_an_unknown_id_is_404_before_any_validation(app) {
        let (status, _, body) = parts(app.put("/users/424242", &json!({"username": 5})).await).await;
        assert_eq!((status, body), (404, json!({"error": "User not found"})));
        let (status, _, body) = parts(app.send_raw(Method::PUT, "/users/424242", "text/plain", "x").await).await;
        assert_eq!((status, body), (404, json!({"error": "User not found"})));
    }
}

backend_test! {
    async fn delete_user_nulls_its_urls_and_events_which_survive(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let other = app.create_user("bob", "bob@x.io").await;
        let uid = user["id"].as_i64().unwrap();
        let (_, _, url) = parts(app.post("/urls", &json!({"original_url": "https://example.com/owned", "user_id": uid})).await).await;
        let (_, _, kept) = parts(app.post("/urls", &json!({"original_url": "https://example.com/bob", "user_id": other["id"]})).await).await;
        let (status, _, posted) = parts(app.post("/events", &json!({"event_type": "click", "url_id": url["id"], "user_id": uid})).await).await;
        assert_eq!(status, 201);
        // Warm the caches that show the user.
        let list = format!("/urls?user_id={uid}");
        let detail = format!("/urls/{}", url["id"]);
        assert_eq!(parts(app.get(&list).await).await.2.as_array().unwrap().len(), 1);
        assert_eq!(parts(app.get(&detail).await).await.2["user_id"], uid);

        let resp = app.delete(&format!("/users/{uid}")).await;
        assert_eq!(resp.status(), 204);
        assert!(resp.headers().get("x-cache").is_none());
        assert!(resp.text().await.unwrap().is_empty());

        let (status, _, body) = parts(app.get(&format!("/users/{uid}")).await).await;
        assert_eq!((status, body), (404, json!({"error": "User not found"})));
        let (status, cache, body) = parts(app.get(&detail).await).await;
        assert_eq!((status, cache.as_deref()), (200, Some("MISS")));
        assert_eq!(body["user_id"], Value::Null);
        assert_eq!(parts(app.get(&list).await).await.2, json!([]));
        let (_, _, events) = parts(app.get(&format!("/events?url_id={}", url["id"])).await).await;
        let events = events.as_array().unwrap();
        assert_eq!(events.len(), 2, "created + click survive");
        assert!(events.iter().all(|e| e["user_id"].is_null()), "{events:?}");
        assert!(events.iter().any(|e| e["id"] == posted["id"]));
        // Other users' rows are untouched.
        assert_eq!(parts(app.get(&format!("/urls/{}", kept["id"])).await).await.2["user_id"], other["id"]);
        assert_eq!(parts(app.get(&format!("/users/{}", other["id"])).await).await.0, 200);
        let (status, _, body) = parts(app.delete(&format!("/users/{uid}")).await).await;
        assert_eq!((status, body), (404, json!({"error": "User not found"})));
    }
}

backend_test! {
    async fn email_uniqueness_folds_non_ascii_letters_too(app) {
        app.create_user("accent", "ÉLODIE@exämple.org").await;
        let (status, _, body) =
            parts(app.post("/users", &json!({"username": "other", "email": "élodie@EXÄMPLE.org"})).await).await;
        assert_eq!(status, 422);
        assert_eq!(body, json!({"errors": {"email": "Field 'email' must be unique"}}));
    }
}
