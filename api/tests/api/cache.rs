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
