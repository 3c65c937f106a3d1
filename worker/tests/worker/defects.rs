//! The apalis-redis 1.0 defects the worker must survive (DEPENDENCIES.md), each reproduced
//! against a real Redis.

use std::time::Duration;

use apalis::prelude::TaskSink;
use apalis_redis::RedisStorage;
use jobs::ClickBatch;

use crate::helpers::*;

/// Pushes single-click jobs the way apalis does (into `<q>:scheduled`, unpromoted).
async fn push_raw(redis: &str, queue: &str, links: &[(i64, String)], n: usize) {
    let conn = apalis_redis::connect(redis).await.unwrap();
    let mut storage: RedisStorage<ClickBatch> =
        RedisStorage::new(conn).with_config(jobs::queue::queue_config(queue));
    let mut pushed = 0;
    while pushed < n {
        let chunk: Vec<ClickBatch> = (pushed..(pushed + 1000).min(n))
            .map(|i| {
                let (id, code) = &links[i % links.len()];
                ClickBatch::new(vec![click(*id, code, &format!("v{i}"))])
            })
            .collect();
        pushed += chunk.len();
        storage.push_bulk(chunk).await.unwrap();
    }
}

/// Jobs fetched by workers and not finished yet (every worker's in-flight set).
async fn in_flight(redis: &str, queue: &str) -> u64 {
    let (mut conn, keys) = scan_keys(redis, &format!("{queue}:inflight:*")).await;
    let mut total = 0;
    for key in keys {
        let n: u64 = redis::cmd("SCARD")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        total += n;
    }
    total
}

/// Every key matching `pattern`, by SCAN, with the connection used.
async fn scan_keys(redis: &str, pattern: &str) -> (redis::aio::MultiplexedConnection, Vec<String>) {
    let client = redis::Client::open(redis).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut found = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .query_async(&mut conn)
            .await
            .unwrap();
        found.extend(keys);
        if next == 0 {
            return (conn, found);
        }
        cursor = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_50000_job_backlog_drains_after_workers_come_back() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let conn = db.connect().await;
    let links = seed_links(&conn, 50).await;
    push_raw(&redis.url(), &ns.queue, &links, 50_000).await;
    let queue = jobs::ClickQueue::connect(&redis.url(), Some(&ns.queue))
        .await
        .unwrap();
    let depth = queue.depth().await.unwrap();
    assert_eq!(
        depth.due + depth.future,
        50_000,
        "the backlog waits in the scheduled set: {depth:?}"
    );

    let mut config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    config.click_concurrency = 8;
    let (_stop, worker) = spawn_worker(config);
    let most_in_flight = std::sync::atomic::AtomicU64::new(0);
    eventually(
        Duration::from_mins(10),
        "50,000 clicks ingested",
        || async {
            assert!(
                !worker.is_finished(),
                "the worker stopped while a backlog remained"
            );
            most_in_flight.fetch_max(
                in_flight(&redis.url(), &ns.queue).await,
                std::sync::atomic::Ordering::Relaxed,
            );
            count(&conn, "SELECT COUNT(*) FROM events").await == 50_000
        },
    )
    .await;
    // The backlog stays in Redis: each of the 8 workers holds one fetch (one job) at most.
    let most = most_in_flight.into_inner();
    let fetch = jobs::queue::queue_config(&ns.queue).batch_size as u64;
    assert_eq!(fetch, 1);
    assert!(
        (1..=8 * fetch).contains(&most),
        "{most} jobs were fetched at once"
    );
    eventually(Duration::from_secs(10), "queue empty", || async {
        queue.depth().await.unwrap().pending() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn queue_depth_and_age_are_read_from_the_keys_and_exported() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let conn = db.connect().await;
    let links = seed_links(&conn, 1).await;
    push_raw(&redis.url(), &ns.queue, &links, 30).await;
    let queue = jobs::ClickQueue::connect(&redis.url(), Some(&ns.queue))
        .await
        .unwrap();
    let before = queue.depth().await.unwrap();
    assert_eq!(before.due + before.future, 30);
    assert_eq!(queue.promote_all_due().await.unwrap() + before.future, 30);
    let after = queue.depth().await.unwrap();
    assert_eq!(after.ready + after.due + after.future, 30);

    let config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    let metrics_url = format!("http://{}/metrics", config.listen);
    let (_stop, _worker) = spawn_worker(config);
    eventually(
        Duration::from_secs(20),
        "queue gauges exported and drained",
        || async {
            let Ok(resp) = reqwest::get(&metrics_url).await else {
                return false;
            };
            let text = resp.text().await.unwrap_or_default();
            text.contains("curtain_queue_jobs{")
                && text.contains("state=\"ready\"")
                && queue.depth().await.unwrap().pending() == 0
        },
    )
    .await;
}

/// A worker process busy with a 3,000-job backlog is stopped by `stop`, a successor starts at
/// once on the same host, and every click ends up in the database exactly once with nothing
/// left in the queue (dead or pending).
async fn successor_finishes_the_backlog(stop: impl FnOnce(&mut std::process::Child)) {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let conn = db.connect().await;
    let links = seed_links(&conn, 10).await;
    let config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    push_raw(&redis.url(), &ns.queue, &links, 3_000).await;
    let mut first = worker_process(&config);
    eventually(
        Duration::from_mins(1),
        "the first worker is busy",
        || async { count(&conn, "SELECT COUNT(*) FROM events").await >= 200 },
    )
    .await;
    stop(&mut first);
    let mut second = worker_process(&config);
    eventually(
        Duration::from_mins(1),
        "every click ingested by the successor",
        || async { count(&conn, "SELECT COUNT(*) FROM events").await == 3_000 },
    )
    .await;
    assert_eq!(
        count(&conn, "SELECT COUNT(DISTINCT click_id) FROM events").await,
        3_000
    );
    let queue = jobs::ClickQueue::connect(&redis.url(), Some(&ns.queue))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "orphaned jobs recovered and queue empty",
        || async {
            let d = queue.depth().await.unwrap();
            d.pending() == 0 && d.dead == 0
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the records of the first worker's pools pruned",
        || async { worker_records(&redis.url(), &ns.queue).await == config.click_concurrency },
    )
    .await;
    second.kill().unwrap();
    second.wait().unwrap();
}

/// How many worker metadata records the queue's Redis holds.
async fn worker_records(redis: &str, queue: &str) -> usize {
    scan_keys(redis, &format!("{queue}:workers:metadata:*"))
        .await
        .1
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_worker_killed_with_sigkill_and_restarted_at_once_recovers_its_jobs() {
    successor_finishes_the_backlog(|first| {
        first.kill().unwrap(); // SIGKILL: its in-flight jobs are orphaned
        first.wait().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_worker_stopped_with_sigterm_exits_zero_and_its_successor_finishes_the_backlog() {
    successor_finishes_the_backlog(|first| {
        let term = std::process::Command::new("kill")
            .args(["-TERM", &first.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let status = first.wait().unwrap();
        assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    })
    .await;
}

/// `used_memory` of a Redis server, in bytes.
async fn used_memory(redis: &str) -> u64 {
    let client = redis::Client::open(redis).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn queue_redis_memory_stays_flat_over_1_000_000_clicks() {
    // 1,000,000 clicks in ten rounds of 100,000 (50 jobs of 2,000, the api's batch size). After
    // each round is ingested and its finished jobs pruned, the queue Redis' memory is sampled:
    // it must not grow with the clicks it has carried. Unpruned, every round would leave about
    // 40 MB of job data behind. Counter shards live on a Redis of their own.
    const ROUNDS: usize = 10;
    const JOBS_PER_ROUND: usize = 50;
    const CLICKS_PER_JOB: usize = 2_000;
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let shard = RedisServer::start();
    let conn = db.connect().await;
    let links = seed_links(&conn, 100).await;
    let queue = jobs::ClickQueue::connect(&redis.url(), Some(&ns.queue))
        .await
        .unwrap();
    let (_stop, worker) = spawn_worker(worker_config(&db, &redis.url(), &[shard.addr()], &ns));

    let mut samples = Vec::new();
    let mut pushed = 0_i64;
    for round in 0..ROUNDS {
        for job in 0..JOBS_PER_ROUND {
            let clicks = (0..CLICKS_PER_JOB)
                .map(|i| {
                    let (id, code) = &links[i % links.len()];
                    click(*id, code, &format!("v{round}-{job}-{i}"))
                })
                .collect();
            queue.push(&ClickBatch::new(clicks)).await.unwrap();
        }
        pushed += (JOBS_PER_ROUND * CLICKS_PER_JOB) as i64;
        eventually(Duration::from_mins(3), "round ingested", || async {
            assert!(!worker.is_finished(), "the worker stopped");
            queue.depth().await.unwrap().pending() == 0
                && count(&conn, "SELECT COUNT(*) FROM events").await == pushed
        })
        .await;
        eventually(Duration::from_secs(10), "finished jobs pruned", || async {
            queue.depth().await.unwrap().done == 0
        })
        .await;
        samples.push(used_memory(&redis.url()).await);
    }
    eprintln!("queue redis used_memory after each 100,000 clicks: {samples:?}");
    let baseline = samples[0];
    let peak = *samples.iter().max().unwrap();
    assert!(
        peak <= baseline + 2 * 1024 * 1024,
        "queue Redis grew from {baseline} to {peak} bytes over 1,000,000 clicks: {samples:?}"
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(DISTINCT click_id) FROM events").await,
        pushed,
        "every click once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_worker_whose_queue_redis_stays_down_exits_non_zero() {
    // apalis workers end when their Redis drops. The process restarts them (a blip is ridden
    // out: see the faults tests), but once they have stopped more than WORKER_MAX_RESTARTS
    // times in a minute it must exit non-zero so that its supervisor notices.
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let mut redis = RedisServer::start();
    let mut config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    config.max_restarts_per_minute = 2;
    let health = format!("http://{}/health", config.listen);
    let mut worker = worker_process(&config);
    eventually(Duration::from_secs(30), "the worker is up", || async {
        reqwest::get(&health).await.is_ok()
    })
    .await;
    redis.stop();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the worker did not give up on a queue that stays down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("gave up after {:?}", started.elapsed());
    assert!(!status.success(), "gave up with {status:?}");
}
