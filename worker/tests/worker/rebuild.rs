//! Counter rebuilds from the events table (issue 10): a shard restarted empty is noticed and
//! rebuilt by the worker, and rebuilds run while clicks keep arriving count every click once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use storage::counters::{Counters, RebuildError, RebuildScope};
use storage::ring::HashRing;

use crate::faults::{assert_counted_once, redirect_load, warm_link};
use crate::helpers::*;

const REBUILDS_OK: &str = "curtain_counter_rebuilds_total";

async fn redis_cmd(addr: &str, args: &[&str]) -> Option<String> {
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async::<Option<String>>(&mut conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_counter_shard_restarted_empty_is_rebuilt_from_the_events() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = env("CURTAIN_TEST_REDIS_URL");
    let mut shards = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let addrs: Vec<String> = shards.iter().map(RedisServer::addr).collect();
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &redis, &addrs, &ns, spool.path()).await;
    let config = worker_config(&db, &redis, &addrs, &ns);
    let metrics_url = format!("http://{}/metrics", config.listen);
    let (_stop_worker, _worker) = spawn_worker(config);
    let client = http_client();
    // Link i gets i + 1 clicks, all from one visitor.
    let mut links = Vec::new();
    for i in 0..12 {
        let (id, code) = create_link(&client, &api, &format!("https://example.com/{i}")).await;
        links.push((id, code, i + 1));
    }
    for (_, code, n) in &links {
        for _ in 0..*n {
            let r = client
                .get(format!("{}/r/{code}", api.address))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 302);
        }
    }
    for (id, _, n) in &links {
        assert_counted_once(&client, &api, *id, *n).await;
    }
    // The worker rebuilt the new deployment's shards once at start (they had no epoch).
    eventually(Duration::from_secs(30), "the first rebuild", || async {
        metric_where(&metrics_url, REBUILDS_OK, "result=\"ok\"").await >= 1.0
    })
    .await;
    let before = metric_where(&metrics_url, REBUILDS_OK, "result=\"ok\"").await;

    // The shard owning the first link restarts empty, on the same port.
    let ring = HashRing::new(3);
    let victim = ring.owner(&links[0].1).unwrap();
    let lost = links
        .iter()
        .filter(|(_, code, _)| ring.owner(code) == Some(victim))
        .count();
    assert!(lost >= 1);
    let port = shards[victim].port;
    shards[victim].stop();
    shards[victim] = RedisServer::start_on(port);

    eventually(
        Duration::from_mins(1),
        "the emptied shard rebuilt",
        || async { metric_where(&metrics_url, REBUILDS_OK, "result=\"ok\"").await > before },
    )
    .await;
    let conn = db.connect().await;
    for (id, _, n) in &links {
        let events = count(
            &conn,
            &format!("SELECT COUNT(*) FROM events WHERE event_type = 'redirect' AND url_id = {id}"),
        )
        .await;
        assert_eq!(events, *n);
        let url = format!("{}/urls/{id}/analytics/realtime", api.address);
        // The api finds the restarted shard again (it skips a failing shard for a second).
        eventually(Duration::from_secs(10), "every shard read", || async {
            get_json(&client, &url).await["unavailable_shards"] == 0
        })
        .await;
        let r = get_json(&client, &url).await;
        assert_eq!(r["total_clicks"].as_i64(), Some(events), "link {id}: {r}");
        assert_eq!(r["unique_visitors"].as_i64(), Some(1), "link {id}: {r}");
        let hourly: i64 = r["hourly"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["clicks"].as_i64().unwrap())
            .sum();
        assert_eq!(hourly, events, "link {id}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn rebuilds_while_clicks_arrive_count_every_click_once() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = env("CURTAIN_TEST_REDIS_URL");
    let shards = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let addrs: Vec<String> = shards.iter().map(RedisServer::addr).collect();
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &redis, &addrs, &ns, spool.path()).await;
    let (_stop_worker, _worker) = spawn_worker(worker_config(&db, &redis, &addrs, &ns));
    let client = http_client();
    let (id, code) = warm_link(&client, &api).await;
    assert_counted_once(&client, &api, id, 1).await;

    // Wrong figures a rebuild must replace: a total on the owner, a failover leftover on the
    // next shard.
    let conn = db.connect().await;
    let deployment = storage::settings::deployment_id(&conn).await.unwrap();
    let owner = HashRing::new(3).owner(&code).unwrap();
    let other = (owner + 1) % 3;
    let total_key = format!("{}:{deployment}:ctr:{code}:total", ns.prefix);
    redis_cmd(&addrs[owner], &["SET", &total_key, "1000"]).await;
    redis_cmd(&addrs[other], &["SET", &total_key, "500"]).await;
    let counters = Counters::for_deployment(&addrs, &ns.prefix, &deployment).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let load = redirect_load(format!("{}/r/{code}", api.address), 8, stop.clone());
    let scopes = [
        RebuildScope::All,
        RebuildScope::Shard(owner),
        RebuildScope::Code(code.clone()),
    ];
    let mut rebuilt = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while tokio::time::Instant::now() < deadline {
        let scope = &scopes[rebuilt % scopes.len()];
        match counters.rebuild(&conn, scope).await {
            Ok(report) => {
                assert!(report.clicks >= 1, "{report:?}");
                rebuilt += 1;
            }
            // The worker's own rebuild (the deployment's first) holds the lock.
            Err(RebuildError::Busy) => {}
            Err(e) => panic!("rebuild: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let (ok, bad) = load.await.unwrap();
    assert_eq!(bad, 0, "every redirect answered 302");
    assert!(rebuilt >= 10, "only {rebuilt} rebuilds ran under load");
    assert!(ok > 200, "only {ok} redirects under load");

    let expected = ok as i64 + 1;
    eventually(Duration::from_mins(1), "every click ingested", || async {
        count(
            &conn,
            "SELECT COUNT(*) FROM events WHERE event_type = 'redirect'",
        )
        .await
            >= expected
    })
    .await;
    assert_counted_once(&client, &api, id, expected).await;
    assert_eq!(
        redis_cmd(&addrs[other], &["GET", &total_key]).await,
        None,
        "the failover leftover was removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_batch_stored_before_a_rebuild_and_counted_after_it_counts_once() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let shards = [RedisServer::start(), RedisServer::start()];
    let addrs: Vec<String> = shards.iter().map(RedisServer::addr).collect();
    let conn = db.connect().await;
    let links = seed_links(&conn, 2).await;
    let deployment = storage::settings::deployment_id(&conn).await.unwrap();
    let counters = Counters::for_deployment(&addrs, &ns.prefix, &deployment).unwrap();
    let cache = storage::cache::Cache::memory(Duration::from_mins(1));
    // A worker stored this batch's events and stalled before its counter update: the events
    // are in the database, the counters never saw them (in-process counters stand in for
    // the update that did not happen).
    let (id, code) = &links[0];
    let stalled =
        jobs::ClickBatch::new((0..5).map(|i| click(*id, code, &format!("v{i}"))).collect());
    storage::ingest::ingest(&conn, &Counters::memory(), &cache, None, &stalled)
        .await
        .unwrap();
    // Another batch goes all the way.
    let done = jobs::ClickBatch::new(vec![
        click(*id, code, "v0"),
        click(links[1].0, &links[1].1, "w"),
    ]);
    storage::ingest::ingest(&conn, &counters, &cache, None, &done)
        .await
        .unwrap();
    let now = chrono::Utc::now().naive_utc();
    assert_eq!(counters.read(code, now).await.total, 1);

    let report = counters.rebuild(&conn, &RebuildScope::All).await.unwrap();
    assert_eq!(report.clicks, 7);
    assert_eq!(report.codes, 2);
    assert_eq!(counters.read(code, now).await.total, 6);
    // The stalled worker wakes up and updates the counters: already counted by the rebuild.
    counters
        .apply(
            &stalled.batch_id,
            &stalled.clicks,
            storage::counters::Delivery::First,
        )
        .await
        .unwrap();
    let after = counters.read(code, now).await;
    assert_eq!(after.total, 6, "counted once: {after:?}");
    assert_eq!(after.unique_visitors, 5);
    assert_eq!(after.hourly.iter().map(|(_, n)| n).sum::<u64>(), 6);
    // A rebuild is idempotent.
    counters.rebuild(&conn, &RebuildScope::All).await.unwrap();
    assert_eq!(counters.read(code, now).await.total, 6);
    assert_eq!(counters.read(&links[1].1, now).await.total, 1);
}
