//! `X-Cache` semantics and invalidation, within one instance and across two sharing a Redis.

use serde_json::json;

use crate::backend_test;
use crate::helpers::{Backend, TestApp, parts};

backend_test! {
    async fn second_read_is_a_hit_and_a_write_makes_it_a_miss(app) {
        let url = app.create_url("https://example.com/cached").await;
        let path = format!("/urls/{}", url["id"]);
        assert_eq!(parts(app.get(&path).await).await.1.as_deref(), Some("MISS"));
        assert_eq!(parts(app.get(&path).await).await.1.as_deref(), Some("HIT"));
        let (status, cache, _) = parts(app.put(&path, &json!({"title": "New"})).await).await;
        assert_eq!((status, cache.as_deref()), (200, Some("BYPASS")));
        let (_, cache, body) = parts(app.get(&path).await).await;
        assert_eq!(cache.as_deref(), Some("MISS"));
        assert_eq!(body["title"], "New");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_write_on_one_instance_invalidates_the_other() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = a.spawn_sibling().await;
    let url = a.create_url("https://example.com/shared").await;
    let code = url["short_code"].as_str().unwrap().to_owned();
    let detail = format!("/urls/{}", url["id"]);

    // b warms its view of the link and the redirect.
    assert_eq!(parts(b.get(&detail).await).await.1.as_deref(), Some("MISS"));
    assert_eq!(parts(b.get(&detail).await).await.1.as_deref(), Some("HIT"));
    assert_eq!(b.get(&format!("/r/{code}")).await.status(), 302);

    // a deactivates it: b must see the change at once, redirect included.
    assert_eq!(
        a.put(&detail, &json!({"is_active": false})).await.status(),
        200
    );
    let (_, cache, body) = parts(b.get(&detail).await).await;
    assert_eq!(cache.as_deref(), Some("MISS"));
    assert_eq!(body["is_active"], false);
    // b's in-process redirect tier hears of it through Redis pub/sub: within a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        if b.get(&format!("/r/{code}")).await.status() == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "b still redirects a deactivated link after 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A `curtain-api` process of its own (the release binary's code, built for the tests) on a
/// free port, sharing `storage`; killed when dropped.
struct ApiProcess {
    child: std::process::Child,
    address: String,
}

impl ApiProcess {
    async fn start(storage: &crate::helpers::Storage, spool: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_curtain-api"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CURTAIN_LISTEN", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", &storage.database_url)
            .env("CACHE_REDIS_URL", storage.redis_url.as_deref().unwrap())
            .env("CACHE_PREFIX", &storage.cache_prefix)
            .env("CLICK_SPOOL_DIR", spool)
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("start curtain-api");
        let process = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while client.get(process.url("/health")).send().await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "curtain-api did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        process
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long `b` keeps redirecting `path` (302) before answering 404; panics after 1 s.
async fn time_until_404(
    client: &reqwest::Client,
    b: &ApiProcess,
    path: &str,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    loop {
        if client.get(b.url(path)).send().await.unwrap().status() == 404 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "the other process still redirects {path} after 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn deactivate_and_delete_reach_another_api_process_within_a_second() {
    let storage = crate::helpers::Storage::new(Backend::Postgres).await;
    let spool = tempfile::tempdir().unwrap();
    let a = ApiProcess::start(&storage, &spool.path().join("a")).await;
    let b = ApiProcess::start(&storage, &spool.path().join("b")).await;
    let client = crate::helpers::http_client();
    let create = |target: &'static str| {
        let client = client.clone();
        let url = a.url("/urls");
        async move {
            let resp = client
                .post(url)
                .json(&json!({"original_url": target}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
            resp.json::<serde_json::Value>().await.unwrap()
        }
    };
    let paused = create("https://example.com/paused").await;
    let deleted = create("https://example.com/deleted").await;
    let redirect =
        |link: &serde_json::Value| format!("/r/{}", link["short_code"].as_str().unwrap());

    // a warmed the shared cache when it created them: b's first answer comes from Redis, the
    // second from its in-process tier.
    for link in [&paused, &deleted] {
        for expected in ["HIT", "HIT"] {
            let resp = client.get(b.url(&redirect(link))).send().await.unwrap();
            assert_eq!(
                (
                    resp.status().as_u16(),
                    resp.headers()["x-cache"].to_str().unwrap()
                ),
                (302, expected)
            );
        }
    }

    let resp = client
        .put(a.url(&format!("/urls/{}", paused["id"])))
        .json(&json!({"is_active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let after_deactivate = time_until_404(&client, &b, &redirect(&paused)).await;

    let resp = client
        .delete(a.url(&format!("/urls/{}", deleted["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let after_delete = time_until_404(&client, &b, &redirect(&deleted)).await;
    eprintln!(
        "b stopped redirecting {after_deactivate:?} after the deactivation and {after_delete:?} after the delete"
    );

    // a, the process that made the changes, stops at once.
    for link in [&paused, &deleted] {
        assert_eq!(
            client
                .get(a.url(&redirect(link)))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
    }
}
