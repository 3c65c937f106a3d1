//! With `CURTAIN_REQUIRE_API_KEY=true` the worker's `/metrics` needs an `admin` key too (issue
//! 8, item 8); `/health` stays open.

use std::time::Duration;

use storage::api_keys::{self, Scope};

use crate::helpers::{Namespace, TestDb, env, eventually, spawn_worker, worker_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn required_keys_guard_the_worker_metrics() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let mut config = worker_config(&db, &env("CURTAIN_TEST_REDIS_URL"), &[], &ns);
    config.common.require_api_key = true;
    let base = format!("http://{}", config.listen);
    let (stop, handle) = spawn_worker(config);
    let client = reqwest::Client::new();
    eventually(Duration::from_secs(20), "worker /health", || async {
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let conn = db.connect().await;
    let admin = api_keys::create(&conn, None, &[Scope::Admin])
        .await
        .unwrap();
    let writer = api_keys::create(&conn, None, &[Scope::LinksWrite])
        .await
        .unwrap();
    let status =
        |req: reqwest::RequestBuilder| async move { req.send().await.unwrap().status().as_u16() };
    let metrics = format!("{base}/metrics");
    assert_eq!(status(client.get(&metrics)).await, 401);
    assert_eq!(
        status(client.get(&metrics).bearer_auth("ck_0123456789ab_nope")).await,
        401
    );
    assert_eq!(
        status(client.get(&metrics).bearer_auth(&writer.token)).await,
        403
    );
    let resp = client
        .get(&metrics)
        .header("x-api-key", &admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("curtain_queue_jobs{"));
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}
