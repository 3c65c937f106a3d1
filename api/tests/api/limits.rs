//! Abuse limits (issue 8, item 8): per-client rate limits on writes and bulk imports (429 in
//! the contract's envelope with `RateLimit-*` and `Retry-After`, shared by every instance on
//! Redis), trusted-proxy aware; a limiter that cannot answer lets writes through; a request
//! timeout and a cap on requests in progress (503).

use std::time::{Duration, Instant};

use reqwest::Response;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::{Backend, TestApp, parts};

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn create(app: &TestApp, n: usize, forwarded_for: Option<&str>) -> Response {
    let mut req = app
        .client
        .post(app.url("/urls"))
        .json(&json!({"original_url": format!("https://example.com/limit/{n}")}));
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.unwrap()
}

async fn limited(backend: Backend, writes_per_minute: u64) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.rate_limit_writes_per_minute = writes_per_minute;
    })
    .await
}

backend_test! {
    async fn writes_past_the_limit_are_429_with_ratelimit_headers_and_reads_are_not_limited(app) {
        let app = limited(app.backend, 3).await;
        for (n, remaining) in [(0, "2"), (1, "1"), (2, "0")] {
            let resp = create(&app, n, None).await;
            assert_eq!(resp.status(), 201);
            assert_eq!(header(&resp, "ratelimit-limit").as_deref(), Some("3"));
            assert_eq!(header(&resp, "ratelimit-remaining").as_deref(), Some(remaining));
            assert_eq!(header(&resp, "retry-after"), None);
        }
        let resp = create(&app, 3, None).await;
        assert_eq!(resp.status(), 429);
        // 3 per minute: one more every 20 s.
        assert_eq!(header(&resp, "retry-after").as_deref(), Some("20"));
        assert_eq!(header(&resp, "ratelimit-remaining").as_deref(), Some("0"));
        assert_eq!(header(&resp, "ratelimit-reset").as_deref(), Some("60"));
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!({"error": "Too many requests: at most 3 write requests per minute; retry in 20 s"}));
        // A denied write changed nothing; every kind of write shares the budget; reads are free.
        let (_, _, list) = parts(app.get("/urls").await).await;
        assert_eq!(list.as_array().unwrap().len(), 3);
        assert_eq!(app.post("/users", &json!({"username": "u", "email": "u@example.com"})).await.status(), 429);
        for _ in 0..20 {
            assert_eq!(app.get("/urls").await.status(), 200);
        }
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(metrics.lines().any(|l| l == r#"curtain_rate_limited_total{class="write"} 2"#), "{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn two_instances_on_one_redis_share_one_budget_per_client() {
    let first = limited(Backend::Postgres, 2).await;
    let second = TestApp::spawn_on(Backend::Postgres, first.storage.clone(), |c| {
        c.rate_limit_writes_per_minute = 2;
    })
    .await;
    assert_eq!(create(&first, 0, None).await.status(), 201);
    assert_eq!(create(&second, 1, None).await.status(), 201);
    assert_eq!(create(&first, 2, None).await.status(), 429);
    assert_eq!(create(&second, 3, None).await.status(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let proxied = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.rate_limit_writes_per_minute = 1;
        c.trusted_proxy = Some("127.0.0.1".parse().unwrap());
    })
    .await;
    assert_eq!(create(&proxied, 0, Some("203.0.113.1")).await.status(), 201);
    assert_eq!(create(&proxied, 1, Some("203.0.113.1")).await.status(), 429);
    assert_eq!(
        create(&proxied, 2, Some("10.0.0.1, 203.0.113.2"))
            .await
            .status(),
        201
    );
    // Not from the trusted proxy: X-Forwarded-For is the client's own claim and is ignored.
    let direct = limited(Backend::Sqlite, 1).await;
    assert_eq!(create(&direct, 0, Some("203.0.113.1")).await.status(), 201);
    assert_eq!(create(&direct, 1, Some("203.0.113.2")).await.status(), 429);
}

backend_test! {
    async fn bulk_imports_have_their_own_smaller_budget(app) {
        let app = TestApp::spawn_with(app.backend, |c| c.rate_limit_bulk_per_minute = 1).await;
        let form = |n: u32| {
            Form::new().part(
                "file",
                Part::bytes(format!("username,email\nbulk{n},bulk{n}@example.com\n").into_bytes())
                    .file_name("users.csv")
                    .mime_str("text/csv")
                    .unwrap(),
            )
        };
        let send = |n| app.client.post(app.url("/users/bulk")).multipart(form(n)).send();
        assert_eq!(send(1).await.unwrap().status(), 201);
        let resp = send(2).await.unwrap();
        assert_eq!(resp.status(), 429);
        assert_eq!(header(&resp, "retry-after").as_deref(), Some("60"));
        // Ordinary writes still have their own budget.
        assert_eq!(create(&app, 0, None).await.status(), 201);
    }
}

/// A TCP server that accepts connections and never answers (a blackholed Redis).
async fn blackhole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (format!("redis://{addr}/"), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_limiter_lets_writes_through_quickly_and_counts_it() {
    let (url, _hole) = blackhole().await;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.rate_limit_writes_per_minute = 1;
        c.rate_limit_redis_url = Some(url);
    })
    .await;
    for n in 0..3 {
        let started = Instant::now();
        let resp = create(&app, n, None).await;
        assert_eq!(
            resp.status(),
            201,
            "the limiter's outage must not fail a write"
        );
        assert_eq!(header(&resp, "ratelimit-limit"), None, "no budget was read");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "curtain_rate_limit_unavailable_total 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_timeout_is_503_and_past_the_concurrency_cap_503_at_once() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.enable_incident_debug_routes = true;
        c.request_timeout_seconds = 1;
        c.max_concurrent_requests = 2;
    })
    .await;
    let started = Instant::now();
    let (status, _, body) = parts(app.get("/debug/slow?seconds=5").await).await;
    assert_eq!(
        (status, body),
        (503, json!({"error": "Request timed out after 1 s"}))
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let (status, _, body) = parts(app.get("/debug/slow?seconds=0").await).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));

    // Two requests in progress fill the cap; a third is refused at once, then all is well.
    let slow =
        |app: &TestApp| tokio::spawn(app.client.get(app.url("/debug/slow?seconds=0.8")).send());
    let (a, b) = (slow(&app), slow(&app));
    let pending = tokio::spawn(async move {
        (
            a.await.unwrap().unwrap().status(),
            b.await.unwrap().unwrap().status(),
        )
    });
    // Once both are in progress (they take 0.8 s), a third is refused, and at once.
    let deadline = Instant::now() + Duration::from_millis(600);
    let resp = loop {
        let started = Instant::now();
        let resp = app.get("/health").await;
        if resp.status() == 503 {
            assert!(
                started.elapsed() < Duration::from_millis(300),
                "{:?}",
                started.elapsed()
            );
            break resp;
        }
        assert!(
            Instant::now() < deadline,
            "never refused: {}",
            resp.status()
        );
    };
    assert_eq!(header(&resp, "retry-after").as_deref(), Some("1"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "Server busy: too many requests in progress; retry shortly"})
    );
    assert_eq!(
        pending.await.unwrap(),
        (reqwest::StatusCode::OK, reqwest::StatusCode::OK)
    );
    assert_eq!(app.get("/health").await.status(), 200);
    // Without the drill switch the slow route does not exist.
    let plain = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(plain.get("/debug/slow?seconds=1").await.status(), 404);
}
