//! Per-key invalidation and cache warming: a write invalidates what it changed and nothing
//! else; a create or update warms the redirect so the first click needs no database read.

use api::cache::{CacheKey, Invalidation, Lookup};
use api::clicks::Durability;
use serde_json::json;

use crate::backend_test;
use crate::helpers::{Backend, TestApp, parts};

/// The value of the first series of `name` whose labels contain every `labels` pair.
async fn metric(app: &TestApp, name: &str, labels: &[(&str, &str)]) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Redirects of `path`, answered by an app whose database pool has been closed: only the
/// cache can answer them.
async fn first_redirect_after_create_is_a_hit_without_the_database(backend: Backend) {
    // `fast`: the redirect does not wait for its click to reach the (closed) database.
    let app = TestApp::spawn_with(backend, |c| c.click_durability = Durability::Fast).await;
    let warm_jobs = metric(&app, "curtain_cache_warm_jobs_total", &[]).await;
    let url = app.create_url("https://example.com/warm?x=1").await;
    assert_eq!(
        metric(&app, "curtain_cache_warm_jobs_total", &[]).await,
        warm_jobs + 1,
        "the create ran one warm step before answering"
    );
    app.state.db.clone().close().await.unwrap();
    let resp = app
        .get(&format!("/r/{}", url["short_code"].as_str().unwrap()))
        .await;
    assert_eq!(
        (
            resp.status().as_u16(),
            resp.headers()["x-cache"].to_str().unwrap(),
            resp.headers()["location"].to_str().unwrap()
        ),
        (302, "HIT", "https://example.com/warm?x=1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_redirect_after_create_is_a_hit_without_the_database_sqlite() {
    first_redirect_after_create_is_a_hit_without_the_database(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn first_redirect_after_create_is_a_hit_without_the_database_postgres() {
    first_redirect_after_create_is_a_hit_without_the_database(Backend::Postgres).await;
}

async fn an_update_warms_the_new_state_never_the_old(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.click_durability = Durability::Fast).await;
    let url = app.create_url("https://example.com/toggle").await;
    let detail = format!("/urls/{}", url["id"]);
    let path = format!("/r/{}", url["short_code"].as_str().unwrap());
    assert_eq!(app.get(&path).await.headers()["x-cache"], "HIT");
    app.put(&detail, &json!({"is_active": false})).await;
    let (status, _, body) = parts(app.get(&path).await).await;
    assert_eq!(
        (status, body),
        (404, json!({"error": "URL not found"})),
        "warming never serves the old target of a deactivated link"
    );
    app.put(&detail, &json!({"is_active": true})).await;
    app.state.db.clone().close().await.unwrap();
    let resp = app.get(&path).await;
    assert_eq!(
        (
            resp.status().as_u16(),
            resp.headers()["x-cache"].to_str().unwrap()
        ),
        (302, "HIT"),
        "the reactivation warmed the redirect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_warms_the_new_state_never_the_old_sqlite() {
    an_update_warms_the_new_state_never_the_old(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn an_update_warms_the_new_state_never_the_old_postgres() {
    an_update_warms_the_new_state_never_the_old(Backend::Postgres).await;
}

backend_test! {
    async fn a_write_to_one_link_leaves_the_other_links_cached(app) {
        let a = app.create_url("https://example.com/a").await;
        let b = app.create_url("https://example.com/b").await;
        let a_detail = format!("/urls/{}", a["id"]);
        let b_detail = format!("/urls/{}", b["id"]);
        let a_redirect = format!("/r/{}", a["short_code"].as_str().unwrap());
        let app = &app;
        let cache = |path: String| async move { parts(app.get(&path).await).await.1.unwrap() };
        for path in [&a_detail, &b_detail, &"/urls".to_owned()] {
            assert_eq!(cache(path.clone()).await, "MISS", "{path}");
            assert_eq!(cache(path.clone()).await, "HIT", "{path}");
        }
        let c = app.create_url("https://example.com/c").await;
        assert_eq!(cache(a_detail.clone()).await, "HIT", "a create keeps other links' details");
        assert_eq!(cache("/urls".into()).await, "MISS", "a create invalidates the lists");
        assert_eq!(app.put(&b_detail, &json!({"title": "B"})).await.status(), 200);
        assert_eq!(cache(b_detail.clone()).await, "MISS");
        assert_eq!(cache(a_detail.clone()).await, "HIT", "an update keeps other links' details");
        assert_eq!(cache(a_redirect.clone()).await, "HIT", "an update keeps other links' redirects");
        assert_eq!(app.delete(&format!("/urls/{}", c["id"])).await.status(), 204);
        assert_eq!(cache(a_detail.clone()).await, "HIT", "a delete keeps other links' details");
        let user = app.create_user("owner", "owner@example.com").await;
        let owned = app.post("/urls", &json!({"original_url": "https://example.com/o", "user_id": user["id"]})).await;
        let owned: serde_json::Value = owned.json().await.unwrap();
        let owned_detail = format!("/urls/{}", owned["id"]);
        assert_eq!(cache(owned_detail.clone()).await, "MISS");
        assert_eq!(cache(owned_detail.clone()).await, "HIT");
        assert_eq!(app.delete(&format!("/users/{}", user["id"])).await.status(), 204);
        let (_, status, body) = parts(app.get(&owned_detail).await).await;
        assert_eq!((status.as_deref(), &body["user_id"]), (Some("MISS"), &json!(null)), "a deleted user's links are invalidated");
        assert_eq!(cache(a_detail).await, "HIT", "a user delete keeps other links' details");
    }
}

backend_test! {
    async fn a_reader_that_loaded_before_a_write_cannot_store_its_old_data(app) {
        let url = app.create_url("https://example.com/race").await;
        let (id, code) = (url["id"].as_i64().unwrap(), url["short_code"].as_str().unwrap());
        let cache = &app.state.cache;
        for key in [CacheKey::Url(id), CacheKey::Redirect(code.to_owned()), CacheKey::Analytics(id)] {
            cache.invalidate(Invalidation::link(id, code)).await;
            let Lookup::Miss(Some(before)) = cache.lookup(&key).await else {
                panic!("{key:?}: a miss with a snapshot after an invalidation");
            };
            // The write lands between the reader's load and its store.
            cache.invalidate(Invalidation::link(id, code)).await;
            cache.put(&before, &key, "\"old\"").await;
            let Lookup::Miss(Some(after)) = cache.lookup(&key).await else {
                panic!("{key:?}: the old data was stored after the write");
            };
            cache.put(&after, &key, "\"new\"").await;
            assert!(matches!(cache.lookup(&key).await, Lookup::Hit(p) if p == "\"new\""), "{key:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn an_invalidation_redis_refused_is_retried_until_it_lands() {
    let redis = RedisServer::start();
    let url_of_redis = redis.url();
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        c.common.cache_redis_url = Some(url_of_redis.clone());
    })
    .await;
    let url = app.create_url("https://example.com/retried").await;
    let detail = format!("/urls/{}", url["id"]);
    assert_eq!(
        parts(app.get(&detail).await).await.1.as_deref(),
        Some("MISS")
    );
    assert_eq!(
        parts(app.get(&detail).await).await.1.as_deref(),
        Some("HIT")
    );
    let client = redis::Client::open(redis.url()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    let version_key = format!("{}:cache:v:link:{}", app.storage.cache_prefix, url["id"]);
    let version = |mut conn: redis::aio::MultiplexedConnection, key: String| async move {
        redis::cmd("GET")
            .arg(key)
            .query_async::<Option<u64>>(&mut conn)
            .await
            .unwrap()
    };
    let before = version(conn.clone(), version_key.clone()).await;
    // Redis refuses the version bump (reads still work): the update's invalidation fails.
    let acl = |rule: &'static str| {
        let mut conn = conn.clone();
        async move {
            let _: () = redis::cmd("ACL")
                .arg("SETUSER")
                .arg("default")
                .arg(rule)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    };
    acl("-incr").await;
    assert_eq!(
        app.put(&detail, &json!({"title": "After"})).await.status(),
        200
    );
    assert_eq!(
        metric(&app, "curtain_cache_invalidation_retries_total", &[]).await,
        1
    );
    let (_, cache, body) = parts(app.get(&detail).await).await;
    assert_eq!(
        (cache.as_deref(), &body["title"]),
        (Some("MISS"), &json!("After")),
        "the writer never serves what it failed to invalidate"
    );
    assert_eq!(version(conn.clone(), version_key.clone()).await, before);
    acl("+incr").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while version(conn.clone(), version_key.clone()).await == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the failed invalidation never reached Redis"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, cache, body) = parts(app.get(&detail).await).await;
    assert_eq!(
        (cache.as_deref(), &body["title"]),
        (Some("MISS"), &json!("After"))
    );
    assert_eq!(
        parts(app.get(&detail).await).await.1.as_deref(),
        Some("HIT"),
        "healthy again once delivered"
    );
}

/// A throw-away `redis-server` (no persistence) on a free port; killed on drop.
struct RedisServer {
    port: u16,
    child: std::process::Child,
}

impl RedisServer {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

backend_test! {
    async fn cache_lookups_are_counted_per_tier_and_result(app) {
        let url = app.create_url("https://example.com/counted").await;
        let detail = format!("/urls/{}", url["id"]);
        // Details live in the in-process tier (embedded) or in Redis (shared), never both.
        let tier = if app.backend == Backend::Sqlite { "memory" } else { "redis" };
        let app = &app;
        let count = |result: &'static str| async move {
            metric(app, "curtain_cache_requests_total", &[("tier", tier), ("result", result)]).await
        };
        let (hits, misses) = (count("hit").await, count("miss").await);
        assert_eq!(parts(app.get(&detail).await).await.1.as_deref(), Some("MISS"));
        assert_eq!((count("hit").await, count("miss").await), (hits, misses + 1));
        assert_eq!(parts(app.get(&detail).await).await.1.as_deref(), Some("HIT"));
        assert_eq!((count("hit").await, count("miss").await), (hits + 1, misses + 1));
    }
}
