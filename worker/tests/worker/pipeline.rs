//! Redirect → queue → worker → events + counters, exactly once; counters survive a shard
//! failure; clicks survive a queue outage through the spool.

use std::time::Duration;

use storage::cache::Cache;
use storage::counters::{Counters, Delivery};

use crate::helpers::*;

const SERVICES: &str = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set";

async fn analytics(client: &reqwest::Client, api: &ApiServer, id: i64) -> serde_json::Value {
    get_json(client, &format!("{}/urls/{id}/analytics", api.address)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn redirects_become_events_and_sharded_counters_exactly_once() {
    let _ = SERVICES;
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let (s0, s1) = (RedisServer::start(), RedisServer::start());
    let shards = vec![s0.addr(), s1.addr()];
    let redis = env("CURTAIN_TEST_REDIS_URL");
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &redis, &shards, &ns, spool.path()).await;
    let (_stop, _worker) = spawn_worker(worker_config(&db, &redis, &shards, &ns));
    let client = http_client();

    let (id, code) = create_link(&client, &api, "https://example.com/pipeline").await;
    for _ in 0..25 {
        let resp = client
            .get(format!("{}/r/{code}", api.address))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
    }
    eventually(
        Duration::from_secs(15),
        "25 redirects in analytics",
        || async { analytics(&client, &api, id).await["redirect_count"] == 25 },
    )
    .await;
    let conn = db.connect().await;
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM events WHERE event_type = 'redirect'"
        )
        .await,
        25
    );
    // Every event carries the id given at the edge: a NULL would escape the unique index that
    // makes re-deliveries harmless.
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM events WHERE event_type = 'redirect' AND click_id IS NOT NULL"
        )
        .await,
        25
    );

    let realtime: serde_json::Value = get_json(
        &client,
        &format!("{}/urls/{id}/analytics/realtime", api.address),
    )
    .await;
    assert_eq!(realtime["total_clicks"], 25);
    assert_eq!(realtime["unique_visitors"], 1);
    assert_eq!(realtime["hourly"].as_array().unwrap().len(), 72);
    assert_eq!(realtime["hourly"][71]["clicks"], 25);

    // Finished jobs are pruned: the queue's data hash and done set empty out.
    let mut redis_conn = redis::Client::open(redis.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "finished jobs pruned", || {
        let mut c = redis_conn.clone();
        let queue = ns.queue.clone();
        async move {
            let (data, done): (u64, u64) = redis::pipe()
                .cmd("HLEN")
                .arg(format!("{queue}:data"))
                .cmd("SCARD")
                .arg(format!("{queue}:done"))
                .query_async(&mut c)
                .await
                .unwrap();
            data == 0 && done == 0
        }
    })
    .await;
    let _: () = redis::cmd("PING")
        .query_async(&mut redis_conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_batch_ingested_twice_counts_once() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let shard = RedisServer::start();
    let conn = db.connect().await;
    let links = seed_links(&conn, 2).await;
    let counters = Counters::sharded(&[shard.addr()], &ns.prefix).unwrap();
    let cache = Cache::memory(Duration::from_mins(1));
    let batch = jobs::ClickBatch::new(vec![
        click(links[0].0, &links[0].1, "v1"),
        click(links[0].0, &links[0].1, "v2"),
        click(links[1].0, &links[1].1, "v1"),
    ]);
    let first = storage::ingest::ingest(&conn, &counters, &cache, None, &batch)
        .await
        .unwrap();
    let again = storage::ingest::ingest(&conn, &counters, &cache, None, &batch)
        .await
        .unwrap();
    assert_eq!((first.inserted, again.inserted), (3, 0));
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM events").await, 3);
    let now = chrono::Utc::now().naive_utc();
    let r = counters.read(&links[0].1, now).await;
    assert_eq!((r.total, r.unique_visitors), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn clicks_of_a_deleted_link_are_dropped_without_failing_the_batch() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let shard = RedisServer::start();
    let conn = db.connect().await;
    let links = seed_links(&conn, 2).await;
    count(
        &conn,
        &format!(
            "WITH d AS (DELETE FROM urls WHERE id = {} RETURNING 1) SELECT COUNT(*) FROM d",
            links[1].0
        ),
    )
    .await;
    let counters = Counters::sharded(&[shard.addr()], &ns.prefix).unwrap();
    let cache = Cache::memory(Duration::from_mins(1));
    let batch = jobs::ClickBatch::new(vec![
        click(links[0].0, &links[0].1, "v"),
        click(links[1].0, &links[1].1, "v"),
    ]);
    let report = storage::ingest::ingest(&conn, &counters, &cache, None, &batch)
        .await
        .unwrap();
    assert_eq!((report.inserted, report.dropped_deleted), (1, 1));
}

/// Three throw-away shard servers and counters on them (keys under a fresh prefix).
fn three_shards() -> ([RedisServer; 3], Counters) {
    let shards = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let addrs: Vec<String> = shards.iter().map(RedisServer::addr).collect();
    let counters = Counters::sharded(&addrs, &Namespace::new().prefix).unwrap();
    (shards, counters)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn counters_fail_over_clockwise_when_a_shard_stops_and_reads_still_find_them() {
    let (mut shards, counters) = three_shards();
    let code = "failover1";
    let owner = storage::ring::HashRing::new(3).owner(code).unwrap();
    shards[owner].stop();

    let batch = jobs::ClickBatch::new(vec![click(1, code, "a"), click(1, code, "b")]);
    counters
        .apply(&batch.batch_id, &batch.clicks, Delivery::First)
        .await
        .unwrap();
    let stats = counters.stats();
    assert!(stats.failures >= 1 && stats.failovers >= 1, "{stats:?}");
    let now = chrono::Utc::now().naive_utc();
    let r = counters.read(code, now).await;
    assert_eq!(
        (r.total, r.unique_visitors, r.unavailable_shards),
        (2, 2, 1)
    );

    // The owner comes back empty: the counts written during the failover are still found, and
    // re-applying the same batch does not count it again.
    shards[owner] = RedisServer::start_on(shards[owner].port);
    eventually(
        Duration::from_secs(5),
        "the restarted owner is read again",
        || async { counters.read(code, now).await.unavailable_shards == 0 },
    )
    .await;
    counters
        .apply(&batch.batch_id, &batch.clicks, Delivery::Again)
        .await
        .unwrap();
    let r = counters.read(code, now).await;
    assert_eq!(
        (r.total, r.unique_visitors, r.unavailable_shards),
        (2, 2, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_retried_batch_counts_once_while_the_shard_it_failed_over_to_is_down() {
    let (mut shards, counters) = three_shards();
    let code = "failover2";
    let ring = storage::ring::HashRing::new(3);
    let preference = ring.preference(code);
    let (owner, failover) = (preference[0], preference[1]);
    let now = chrono::Utc::now().naive_utc();

    // First run: the owner is down, the batch is counted on the next shard clockwise.
    shards[owner].stop();
    let batch = jobs::ClickBatch::new(vec![click(1, code, "a"), click(1, code, "b")]);
    counters
        .apply(&batch.batch_id, &batch.clicks, Delivery::First)
        .await
        .unwrap();
    // The retry comes while the owner is back (empty) and that shard hangs: it cannot be
    // asked, so the retry must wait instead of counting on the owner.
    shards[owner] = RedisServer::start_on(shards[owner].port);
    shards[failover].pause();
    eventually(
        Duration::from_secs(5),
        "the owner answers again",
        || async { counters.read(code, now).await.unavailable_shards == 1 },
    )
    .await;
    let retried = counters
        .apply(&batch.batch_id, &batch.clicks, Delivery::Again)
        .await;
    assert!(
        matches!(retried, Err(storage::counters::CounterError::Unverifiable(s)) if s == failover),
        "{retried:?}"
    );
    // Once it answers, the retry finds its earlier count and adds nothing.
    shards[failover].resume();
    eventually(Duration::from_secs(5), "every shard answers", || async {
        counters.read(code, now).await.unavailable_shards == 0
    })
    .await;
    counters
        .apply(&batch.batch_id, &batch.clicks, Delivery::Again)
        .await
        .unwrap();
    let r = counters.read(code, now).await;
    assert_eq!((r.total, r.unique_visitors), (2, 2), "counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn clicks_are_spooled_while_the_queue_is_down_and_delivered_after() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let mut queue_redis = RedisServer::start();
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(
        &db,
        &queue_redis.url(),
        &[queue_redis.addr()],
        &ns,
        spool.path(),
    )
    .await;
    let conn = db.connect().await;
    let links = seed_links(&conn, 1).await;
    let client = http_client();

    queue_redis.stop();
    for _ in 0..10 {
        let resp = client
            .get(format!("{}/r/{}", api.address, links[0].1))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            302,
            "a redirect of a known link keeps answering while the queue is down"
        );
    }
    let spooled = std::fs::read_dir(spool.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert!(spooled > 0, "clicks must be spooled durably");

    let queue_redis = RedisServer::start_on(queue_redis.port);
    let (_stop, _worker) = spawn_worker(worker_config(
        &db,
        &queue_redis.url(),
        &[queue_redis.addr()],
        &ns,
    ));
    eventually(
        Duration::from_secs(20),
        "10 spooled clicks delivered",
        || async {
            count(
                &conn,
                "SELECT COUNT(*) FROM events WHERE event_type = 'redirect'",
            )
            .await
                == 10
        },
    )
    .await;
    eventually(Duration::from_secs(5), "spool emptied", || async {
        std::fs::read_dir(spool.path()).unwrap().count() == 0
    })
    .await;
    drop(api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_new_deployment_on_the_same_shards_inherits_no_counts() {
    // Two deployments sharing the queue Redis, shards, key prefix and short-code secret: the
    // second database's first link gets the same id, hence the same code, as the first's.
    let ns_a = Namespace::new();
    let ns_b = Namespace {
        prefix: ns_a.prefix.clone(),
        queue: format!("{}-b", ns_a.queue),
        alert_queue: format!("{}-b", ns_a.alert_queue),
    };
    let redis = RedisServer::start();
    let (db_a, db_b) = (TestDb::new().await, TestDb::new().await);
    let spool = tempfile::tempdir().unwrap();
    let config = |db: &TestDb, ns: &Namespace| {
        use clap::Parser;
        let mut c = api::Config::parse_from(["curtain-api"]);
        db.url.clone_into(&mut c.common.database_url);
        c.redis_url = Some(redis.url());
        c.common.redis_shards = vec![redis.addr()];
        c.common.cache_redis_url = Some(redis.url());
        c.common.cache_prefix.clone_from(&ns.prefix);
        c.common.click_queue.clone_from(&ns.queue);
        c.click_spool_dir = spool.path().to_owned();
        c.short_code_secret = Some("shared-secret".into());
        c
    };
    let api_a = serve_api(&config(&db_a, &ns_a)).await;
    let (_stop, _worker) = spawn_worker(worker_config(&db_a, &redis.url(), &[redis.addr()], &ns_a));
    let client = http_client();
    let (id_a, code_a) = create_link(&client, &api_a, "https://example.com/a").await;
    for _ in 0..3 {
        let r = client
            .get(format!("{}/r/{code_a}", api_a.address))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
    }
    let realtime_a = format!("{}/urls/{id_a}/analytics/realtime", api_a.address);
    eventually(
        Duration::from_secs(30),
        "deployment A counted 3",
        || async { get_json(&client, &realtime_a).await["total_clicks"] == 3 },
    )
    .await;

    let api_b = serve_api(&config(&db_b, &ns_b)).await;
    let (id_b, code_b) = create_link(&client, &api_b, "https://example.com/b").await;
    assert_eq!((id_b, &code_b), (id_a, &code_a), "same id, same code");
    let b = get_json(
        &client,
        &format!("{}/urls/{id_b}/analytics/realtime", api_b.address),
    )
    .await;
    assert_eq!(
        (&b["total_clicks"], &b["unique_visitors"]),
        (&serde_json::json!(0), &serde_json::json!(0)),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn deleting_a_link_deletes_its_counters_on_every_shard() {
    let ns = Namespace::new();
    let (queue, shard_a, shard_b) = (
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    );
    let shards = [shard_a.addr(), shard_b.addr()];
    let db = TestDb::new().await;
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &queue.url(), &shards, &ns, spool.path()).await;
    let (_stop, _worker) = spawn_worker(worker_config(&db, &queue.url(), &shards, &ns));
    let client = http_client();
    let (id, code) = create_link(&client, &api, "https://example.com/doomed").await;
    for _ in 0..5 {
        let r = client
            .get(format!("{}/r/{code}", api.address))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
    }
    let realtime = format!("{}/urls/{id}/analytics/realtime", api.address);
    eventually(Duration::from_secs(30), "5 clicks counted", || async {
        get_json(&client, &realtime).await["total_clicks"] == 5
    })
    .await;
    // Whatever the shard, the code's keys exist somewhere; after the delete, nowhere.
    let keys_of = |server: &RedisServer| {
        let url = server.url();
        let pattern = format!("{}:*:ctr:{code}:*", ns.prefix);
        async move {
            let client = redis::Client::open(url).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
                .unwrap();
            keys
        }
    };
    let before = keys_of(&shard_a).await.len() + keys_of(&shard_b).await.len();
    assert!(
        before >= 3,
        "total, uniques and an hourly bucket: {before} keys"
    );
    let r = client
        .delete(format!("{}/urls/{id}", api.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    eventually(
        Duration::from_secs(10),
        "the deleted link's counter keys removed",
        || async { keys_of(&shard_a).await.is_empty() && keys_of(&shard_b).await.is_empty() },
    )
    .await;
    // The pass removes the keys first and its tombstone row after, so the row may outlive
    // the keys by a moment; it must still go.
    let conn = db.connect().await;
    eventually(
        Duration::from_secs(10),
        "the tombstone row removed",
        || async { count(&conn, "SELECT count(*) FROM counter_tombstones").await == 0 },
    )
    .await;
}
