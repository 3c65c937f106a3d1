//! Sections 0 and 2: `/health`, `/metrics`, `/debug/fail`, the generic 404/405 envelopes, path
//! matching and path ids, and where `X-Cache` must be absent.

use reqwest::Method;
use serde_json::json;

use crate::backend_test;
use crate::helpers::{Backend, TestApp, parts};

backend_test! {
    async fn health_answers_ok_with_the_instance_name(app) {
        let resp = app.get("/health").await;
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        assert_eq!(parts(resp).await, (200, None, json!({"status": "ok", "instance": "test"})));
    }
}

backend_test! {
    async fn metrics_expose_the_four_families_with_route_template_labels(app) {
        let url = app.create_url("https://example.com/m").await;
        let code = url["short_code"].as_str().unwrap();
        app.get(&format!("/r/{code}")).await;
        app.get(&format!("/urls/{}", url["id"])).await;
        app.get("/users/424242").await;
        app.get("/no/such/probe-4711").await;
        app.get("/metrics").await;
        let resp = app.get("/metrics").await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        assert!(resp.headers().get("x-cache").is_none());
        let text = resp.text().await.unwrap();
        for family in [
            "# TYPE http_requests_total counter",
            "# TYPE http_request_duration_seconds histogram",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
        ] {
            assert!(text.contains(family), "missing {family}");
        }
        let series = |name: &str, labels: &[&str]| {
            text.lines().any(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        };
        assert!(series("http_requests_total{", &["method=\"GET\"", "path=\"/r/<short_code>\"", "status_code=\"302\"", "instance=\"test\""]), "{text}");
        assert!(series("http_requests_total{", &["path=\"/urls/<id>\"", "status_code=\"200\""]), "{text}");
        assert!(series("http_requests_total{", &["method=\"POST\"", "path=\"/urls\"", "status_code=\"201\""]), "{text}");
        assert!(series("http_requests_total{", &["path=\"/users/<id>\"", "status_code=\"404\""]), "{text}");
        // Every operation's 500 series exists before its first failure, at 0.
        assert!(text.lines().any(|l| l == "http_requests_total{instance=\"test\",method=\"DELETE\",path=\"/users/<id>\",status_code=\"500\"} 0"), "{text}");
        assert!(series("http_request_duration_seconds_bucket{", &["path=\"/r/<short_code>\"", "status_code=\"302\"", "instance=\"test\""]), "{text}");
        assert!(series("http_request_duration_seconds_count{", &["path=\"/users/<id>\"", "status_code=\"404\""]), "{text}");
        // Only the contract's two HTTP families carry `instance`; none carries `job` (both
        // are Prometheus' own target labels).
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(!line.contains("job="), "{line}");
            assert!(line.starts_with("http_request") || !line.contains("instance="), "{line}");
        }
        assert!(text.contains("\ncurtain_counter_shard_failures_total 0\n"), "{text}");
        // Never the raw path: one series per template, not per code, id or probe.
        for raw in [code.to_owned(), format!("/urls/{}\"", url["id"]), "/users/424242".into(), "probe-4711".into()] {
            assert!(!text.contains(&raw), "raw path {raw} leaked into the metrics");
        }
        assert!(!text.contains("path=\"/metrics\""), "/metrics must not count itself");
    }
}

backend_test! {
    async fn debug_fail_is_404_unless_enabled(app) {
        let (status, cache, body) = parts(app.get("/debug/fail").await).await;
        assert_eq!((status, cache, body), (404, None, json!({"error": "Not found"})));
    }
}

async fn debug_fail_enabled(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.enable_incident_debug_routes = true).await;
    for _ in 0..2 {
        let resp = app.get("/debug/fail").await;
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        assert_eq!(
            parts(resp).await,
            (500, None, json!({"error": "Internal server error"}))
        );
    }
    // The drill breaks nothing else.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_fail_with_incident_routes_enabled_is_a_json_500_sqlite() {
    debug_fail_enabled(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn debug_fail_with_incident_routes_enabled_is_a_json_500_postgres() {
    debug_fail_enabled(Backend::Postgres).await;
}

backend_test! {
    async fn unknown_routes_are_json_404_and_trailing_slashes_do_not_match(app) {
        let not_found = json!({"error": "Not found"});
        for path in ["/nope", "/users/", "/urls/", "/events/", "/health/", "/users/1/", "/r/", "/r", "/urls/1/analytics/", "/api/users", "/USERS", "//users", "/users//1", "/r//abc"] {
            let resp = app.get(path).await;
            assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"), "{path}");
            assert_eq!(parts(resp).await, (404, None, not_found.clone()), "{path}");
        }
        let (status, _, body) = parts(app.post("/nope", &json!({})).await).await;
        assert_eq!((status, body), (404, not_found));
    }
}

backend_test! {
    async fn wrong_methods_are_json_405(app) {
        let not_allowed = json!({"error": "Method not allowed"});
        // Each with the `Allow` header RFC 9110 requires: the methods of the path's operation.
        for (method, path, allow) in [
            (Method::DELETE, "/users", "GET, HEAD, POST"),
            (Method::PUT, "/urls", "GET, HEAD, POST"),
            (Method::PATCH, "/urls/1", "DELETE, GET, HEAD, PUT"),
            (Method::POST, "/health", "GET, HEAD"),
            (Method::POST, "/metrics", "GET, HEAD"),
            (Method::POST, "/events/1", "GET, HEAD"),
            (Method::POST, "/r/abcdef", "GET, HEAD"),
            (Method::DELETE, "/urls/1/analytics", "GET, HEAD"),
            (Method::GET, "/shorten-ui", "POST"),
            (Method::OPTIONS, "/users", "GET, HEAD, POST"),
            (Method::PATCH, "/users/1", "DELETE, GET, HEAD, PUT"),
            (Method::GET, "/users/bulk", "POST"),
            (Method::TRACE, "/", "GET, HEAD"),
        ] {
            let resp = app.request(method.clone(), path, None).await;
            assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"), "{method} {path}");
            assert_eq!(resp.headers().get("allow").map(|v| v.to_str().unwrap().to_owned()).as_deref(), Some(allow), "{method} {path}");
            assert_eq!(parts(resp).await, (405, None, not_allowed.clone()), "{method} {path}");
        }
    }
}

backend_test! {
    async fn non_numeric_or_negative_path_ids_are_generic_404s(app) {
        let url = app.create_url("https://example.com/x").await;
        let not_found = json!({"error": "Not found"});
        for id in ["abc", "-1", "1.5", "1e3", "%201", "0x10", "+1"] {
            for (method, path) in [
                (Method::GET, format!("/users/{id}")),
                (Method::PUT, format!("/users/{id}")),
                (Method::DELETE, format!("/users/{id}")),
                (Method::GET, format!("/urls/{id}")),
                (Method::PUT, format!("/urls/{id}")),
                (Method::DELETE, format!("/urls/{id}")),
                (Method::GET, format!("/urls/{id}/analytics")),
                (Method::GET, format!("/events/{id}")),
            ] {
                let (status, cache, body) = parts(app.request(method.clone(), &path, Some(&json!({}))).await).await;
                assert_eq!((status, cache, body), (404, None, not_found.clone()), "{method} {path}");
            }
        }
        assert_eq!(parts(app.get(&format!("/urls/{}", url["id"])).await).await.0, 200);
    }
}

backend_test! {
    async fn ids_too_large_for_the_column_are_the_resources_own_404(app) {
        let huge = "99999999999999999999";
        for (method, path, message) in [
            (Method::GET, format!("/users/{huge}"), "User not found"),
            (Method::PUT, format!("/users/{huge}"), "User not found"),
            (Method::DELETE, format!("/users/{huge}"), "User not found"),
            (Method::GET, format!("/urls/{huge}"), "URL not found"),
            (Method::PUT, format!("/urls/{huge}"), "URL not found"),
            (Method::DELETE, format!("/urls/{huge}"), "URL not found"),
            (Method::GET, format!("/urls/{huge}/analytics"), "URL not found"),
            (Method::GET, format!("/events/{huge}"), "Event not found"),
            (Method::GET, "/users/9223372036854775807".to_owned(), "User not found"),
            (Method::GET, "/users/9223372036854775808".to_owned(), "User not found"),
            (Method::GET, "/urls/0".to_owned(), "URL not found"),
        ] {
            let (status, cache, body) = parts(app.request(method.clone(), &path, Some(&json!({"title": "x"}))).await).await;
            assert_eq!((status, cache, body), (404, None, json!({ "error": message })), "{method} {path}");
        }
    }
}

backend_test! {
    async fn x_cache_is_absent_on_users_events_deletes_and_errors(app) {
        let user = app.create_user("ada", "ada@x.io").await;
        let url = app.create_url("https://example.com/x").await;
        let (_, _, event) = parts(app.post("/events", &json!({"event_type": "click", "url_id": url["id"]})).await).await;
        let requests: Vec<(Method, String, Option<serde_json::Value>)> = vec![
            (Method::GET, "/users".into(), None),
            (Method::GET, format!("/users/{}", user["id"]), None),
            (Method::PUT, format!("/users/{}", user["id"]), Some(json!({"username": "b"}))),
            (Method::POST, "/users".into(), Some(json!({}))),
            (Method::GET, "/events".into(), None),
            (Method::GET, format!("/events/{}", event["id"]), None),
            (Method::POST, "/events".into(), Some(json!({}))),
            (Method::GET, "/health".into(), None),
            (Method::POST, "/urls".into(), Some(json!({}))),
            (Method::PUT, format!("/urls/{}", url["id"]), Some(json!({"bogus": 1}))),
            (Method::GET, "/urls?limit=x&user_id=y".into(), None),
            (Method::GET, "/urls/424242".into(), None),
            (Method::GET, "/r/zzzzzz".into(), None),
            (Method::DELETE, format!("/urls/{}", url["id"]), None),
            (Method::DELETE, format!("/users/{}", user["id"]), None),
        ];
        for (method, path, body) in requests {
            let resp = app.request(method.clone(), &path, body.as_ref()).await;
            assert!(resp.status().as_u16() < 500, "{method} {path}");
            assert!(resp.headers().get("x-cache").is_none(), "{method} {path} sent X-Cache");
        }
    }
}

/// Section 7: an unreachable cache is a miss, never a failed request.
async fn cache_outage(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.common.cache_redis_url = Some("redis://127.0.0.1:1/".into());
    })
    .await;
    let url = app.create_url("https://example.com/outage").await;
    for path in [
        format!("/urls/{}", url["id"]),
        "/urls".into(),
        format!("/urls/{}/analytics", url["id"]),
    ] {
        for _ in 0..2 {
            let (status, cache, _) = parts(app.get(&path).await).await;
            assert_eq!((status, cache.as_deref()), (200, Some("MISS")), "{path}");
        }
    }
    let resp = app
        .get(&format!("/r/{}", url["short_code"].as_str().unwrap()))
        .await;
    assert_eq!(
        (
            resp.status().as_u16(),
            resp.headers()["x-cache"].to_str().unwrap()
        ),
        (302, "MISS")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_outage_behaves_as_a_miss_sqlite() {
    cache_outage(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_cache_outage_behaves_as_a_miss_postgres() {
    cache_outage(Backend::Postgres).await;
}

backend_test! {
    async fn every_response_carries_a_request_id_for_the_logs(app) {
        // Section 0: a 500 is logged with a request id; the id is echoed so clients can quote it.
        for path in ["/health", "/nope", "/users/424242"] {
            let resp = app.get(path).await;
            assert!(resp.headers().get("x-request-id").is_some_and(|v| !v.is_empty()), "{path}");
        }
        let resp = app.client.get(app.url("/health")).header("x-request-id", "trace-42").send().await.unwrap();
        assert_eq!(resp.headers()["x-request-id"], "trace-42");
    }
}
