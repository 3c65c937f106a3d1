//! Click batches ingested together: a backlog of small batches is drained in fewer ingestions
//! than jobs, and every click is stored and counted exactly once.

use std::time::Duration;

use storage::counters::Counters;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_backlog_of_small_batches_is_ingested_in_groups_each_click_once() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let shards = [RedisServer::start(), RedisServer::start()];
    let addrs: Vec<String> = shards.iter().map(RedisServer::addr).collect();
    let redis = env("CURTAIN_TEST_REDIS_URL");
    let conn = db.connect().await;
    let links = seed_links(&conn, 3).await;
    // 300 jobs of 10 clicks over three links, queued before the worker starts; one job twice
    // (a re-delivery), which must count once.
    let queue = jobs::ClickQueue::connect(&redis, Some(&ns.queue))
        .await
        .unwrap();
    let mut batches = Vec::new();
    for j in 0..300 {
        let (id, code) = &links[j % 3];
        let clicks = (0..10)
            .map(|i| click(*id, code, &format!("visitor{}", (j * 10 + i) % 50)))
            .collect();
        batches.push(jobs::ClickBatch::new(clicks));
    }
    batches.push(batches[7].clone());
    for batch in &batches {
        queue.push(batch).await.unwrap();
    }
    let mut config = worker_config(&db, &redis, &addrs, &ns);
    config.click_concurrency = 16;
    config.click_ingest_slots = 2;
    let metrics_url = format!("http://{}/metrics", config.listen);
    let (_stop, _worker) = spawn_worker(config);
    eventually(Duration::from_secs(10), "the worker's metrics", || async {
        reqwest::get(&metrics_url).await.is_ok()
    })
    .await;

    eventually(Duration::from_mins(1), "every job processed", || async {
        metric_where(
            &metrics_url,
            "curtain_queue_jobs_processed_total",
            &format!("queue=\"{}\"", ns.queue),
        )
        .await
            >= 301.0
    })
    .await;
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM events WHERE event_type = 'redirect'"
        )
        .await,
        3_000
    );
    let groups = metric(&metrics_url, "curtain_worker_click_ingest_groups_total").await;
    assert!(
        groups > 0.0 && groups < 301.0 / 2.0,
        "301 jobs in {groups} ingestions: batches were not taken together"
    );
    let ingested = metric(&metrics_url, "curtain_worker_clicks_ingested_total").await;
    assert_eq!(ingested as i64, 3_000, "{ingested}");
    let deployment = storage::settings::deployment_id(&conn).await.unwrap();
    let counters = Counters::for_deployment(&addrs, &ns.prefix, &deployment).unwrap();
    let now = chrono::Utc::now().naive_utc();
    for (_, code) in &links {
        let r = counters.read(code, now).await;
        assert_eq!(r.total, 1_000, "{code}: {r:?}");
        assert_eq!(r.unique_visitors, 50, "{code}: {r:?}");
    }
}
