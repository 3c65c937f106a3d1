//! The apalis-redis 1.0 defects the worker must survive (DEPENDENCIES.md), each reproduced
//! against a real Redis.

use std::time::Duration;

use apalis::prelude::TaskSink;
use apalis_redis::RedisStorage;
use jobs::ClickBatch;

use sea_orm::{ConnectionTrait, TransactionTrait};

use crate::helpers::*;

/// Pushes single-click jobs the way apalis does (into `<q>:scheduled`, unpromoted); returns
/// their click ids.
async fn push_raw(redis: &str, queue: &str, links: &[(i64, String)], n: usize) -> Vec<String> {
    // Not `apalis_redis::connect`: its 500 ms response timeout failed a 1,000-job push on a
    // loaded CI machine (every suite runs at once), before the worker under test even started.
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(30)))
        .set_connection_timeout(Some(Duration::from_secs(10)));
    let conn = redis::Client::open(redis)
        .unwrap()
        .get_connection_manager_with_config(config)
        .await
        .unwrap();
    let mut storage: RedisStorage<ClickBatch> =
        RedisStorage::new(conn).with_config(jobs::queue::queue_config(queue));
    let mut pushed = 0;
    let mut ids = Vec::with_capacity(n);
    while pushed < n {
        let chunk: Vec<ClickBatch> = (pushed..(pushed + 1000).min(n))
            .map(|i| {
                let (id, code) = &links[i % links.len()];
                ClickBatch::new(vec![click(*id, code, &format!("v{i}"))])
            })
            .collect();
        pushed += chunk.len();
        ids.extend(chunk.iter().map(|b| b.clicks[0].click_id.clone()));
        storage.push_bulk(chunk).await.unwrap();
    }
    ids
}

/// The click ids of the redirect events, sorted.
async fn stored_click_ids(conn: &sea_orm::DatabaseConnection) -> Vec<String> {
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT click_id FROM events ORDER BY click_id",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
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
    backdate_scheduled(&redis.url(), &ns.queue, 45).await;
    let queue = jobs::ClickQueue::connect(&redis.url(), Some(&ns.queue))
        .await
        .unwrap();
    let before = queue.depth().await.unwrap();
    assert_eq!((before.due, before.future, before.ready), (30, 0, 0));
    assert!(
        (45..60).contains(&before.oldest_age_seconds),
        "jobs due 45 s ago are 45 s old: {before:?}"
    );
    assert_eq!(queue.promote_all_due().await.unwrap(), 30);
    let after = queue.depth().await.unwrap();
    assert_eq!((after.due, after.ready), (0, 30));
    assert_eq!(after.oldest_age_seconds, 0, "nothing is due any more");

    let config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    let metrics_url = format!("http://{}/metrics", config.listen);
    let (_stop, _worker) = spawn_worker(config);
    let ready = format!(
        "curtain_queue_jobs{{queue=\"{}\",state=\"ready\"}}",
        ns.queue
    );
    eventually(
        Duration::from_secs(20),
        "the queue drained and its gauges read 0",
        || async {
            queue.depth().await.unwrap().pending() == 0
                && gauge(&metrics_url, &ready).await == Some(0)
                && gauge(&metrics_url, &ready_age(&ns.queue)).await == Some(0)
        },
    )
    .await;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM events").await, 30);
}

/// Moves every scheduled job's time `secs` into the past: a backlog that has waited that long.
async fn backdate_scheduled(redis: &str, queue: &str, secs: u64) {
    let client = redis::Client::open(redis).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let moved: u64 = redis::Script::new(
        r"
local ids = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #ids, 2 do
  redis.call('ZADD', KEYS[1], 'XX', tonumber(ids[i + 1]) - tonumber(ARGV[1]), ids[i])
end
return #ids / 2
",
    )
    .key(jobs::queue::queue_config(queue).scheduled_jobs_set())
    .arg(secs)
    .invoke_async(&mut conn)
    .await
    .unwrap();
    assert!(moved > 0);
}

/// Pushes single-click jobs onto `<q>:active` in the layout our producer writes, with ids
/// (ULIDs) stamped `age` ago: a ready backlog that has waited that long.
async fn push_ready_aged(
    redis: &str,
    queue: &str,
    links: &[(i64, String)],
    n: usize,
    age: Duration,
) {
    let config = jobs::queue::queue_config(queue);
    let client = redis::Client::open(redis).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let pushed_ms = now_ms - age.as_millis() as u64;
    let mut pipe = redis::pipe();
    for i in 0..n {
        let id = ulid::Ulid::from_parts(pushed_ms + i as u64, rand::random::<u128>()).to_string();
        let (url_id, code) = &links[i % links.len()];
        let batch = ClickBatch::new(vec![click(*url_id, code, &format!("v{i}"))]);
        pipe.hset(
            config.job_data_hash(),
            &id,
            serde_json::to_string(&batch).unwrap(),
        )
        .ignore()
        .hset_multiple(
            format!("{}:{id}", config.job_meta_hash()),
            &[
                ("attempts", "0"),
                ("max_attempts", "25"),
                ("status", "Pending"),
                ("idempotency_key", ""),
            ],
        )
        .ignore()
        .rpush(config.active_jobs_list(), &id)
        .ignore();
    }
    pipe.del(config.signal_list())
        .ignore()
        .lpush(config.signal_list(), 1)
        .ignore();
    let () = pipe.query_async(&mut conn).await.unwrap();
}

/// The value of one series (name and labels as rendered for the queue, any other labels
/// such as `instance` allowed) in a `/metrics` text, if exported.
async fn gauge(metrics_url: &str, series: &str) -> Option<i64> {
    let text = reqwest::get(metrics_url).await.ok()?.text().await.ok()?;
    let (name, labels) = series.split_once('{')?;
    let labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
    text.lines().find_map(|line| {
        let (head, value) = line.rsplit_once(' ')?;
        let (n, l) = head.split_once('{')?;
        (n == name
            && labels
                .iter()
                .all(|want| l.trim_end_matches('}').split(',').any(|x| x == *want)))
        .then(|| value.parse().ok())?
    })
}

fn ready_age(queue: &str) -> String {
    format!("curtain_queue_oldest_ready_age_seconds{{queue=\"{queue}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_30_s_old_ready_backlog_shows_its_age_in_the_api_and_the_worker_metrics() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let conn = db.connect().await;
    let links = seed_links(&conn, 1).await;
    push_ready_aged(&redis.url(), &ns.queue, &links, 40, Duration::from_secs(31)).await;
    let queue = jobs::ClickQueue::connect(&redis.url(), Some(&ns.queue))
        .await
        .unwrap();
    let depth = queue.depth().await.unwrap();
    assert_eq!((depth.ready, depth.due), (40, 0));
    assert!(
        (31..40).contains(&depth.oldest_ready_age_seconds),
        "a ready backlog pushed 31 s ago is 31 s old: {depth:?}"
    );

    // Every worker down: the api alone exports the age.
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &redis.url(), &[redis.addr()], &ns, spool.path()).await;
    let api_metrics = format!("{}/metrics", api.address);
    eventually(
        Duration::from_secs(15),
        "the api exports the ready backlog's age",
        || async {
            gauge(&api_metrics, &ready_age(&ns.queue))
                .await
                .is_some_and(|v| v >= 30)
        },
    )
    .await;

    // A worker stuck on its first jobs (the events table locked) exports it too.
    let lock = conn.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    config.click_concurrency = 1;
    let worker_metrics = format!("http://{}/metrics", config.listen);
    let (_stop, _worker) = spawn_worker(config);
    eventually(
        Duration::from_secs(20),
        "the worker exports the ready backlog's age",
        || async {
            gauge(&worker_metrics, &ready_age(&ns.queue))
                .await
                .is_some_and(|v| v >= 30)
        },
    )
    .await;
    lock.rollback().await.unwrap();
    eventually(Duration::from_secs(30), "the backlog drained", || async {
        queue.depth().await.unwrap().pending() == 0
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "an empty queue reads age 0",
        || async { gauge(&api_metrics, &ready_age(&ns.queue)).await == Some(0) },
    )
    .await;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM events").await, 40);
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
    let mut pushed = push_raw(&redis.url(), &ns.queue, &links, 3_000).await;
    pushed.sort();
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
    assert!(
        stored_click_ids(&conn).await == pushed,
        "exactly the pushed clicks, each once"
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
    // The events' unique index cannot double a click; the counters have no such index: each
    // click is counted once there too.
    let deployment = storage::settings::deployment_id(&conn).await.unwrap();
    let counters =
        storage::counters::Counters::for_deployment(&[shard.addr()], &ns.prefix, &deployment)
            .unwrap();
    let now = chrono::Utc::now().naive_utc();
    let mut counted = 0;
    for (_, code) in &links {
        counted += counters.read(code, now).await.total;
    }
    assert_eq!(counted as i64, pushed, "every click counted once");
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

/// apalis-redis is pinned (`=1.0.0`) because our Lua scripts write and read its key layout
/// directly. This fails when an upgrade changes that layout: the key names, the hash that
/// holds a job's payload, the fields of its metadata hash, or where a pushed job waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn apalis_redis_key_layout_is_the_one_our_scripts_write() {
    let ns = Namespace::new();
    let q = ns.queue.as_str();
    let config = jobs::queue::queue_config(q);
    assert_eq!(config.active_jobs_list(), format!("{q}:active"));
    assert_eq!(config.scheduled_jobs_set(), format!("{q}:scheduled"));
    assert_eq!(config.job_data_hash(), format!("{q}:data"));
    assert_eq!(config.job_meta_hash(), format!("{q}:meta"));
    assert_eq!(config.inflight_jobs_set(), format!("{q}:inflight"));
    assert_eq!(config.workers_set(), format!("{q}:workers"));
    assert_eq!(config.dead_jobs_set(), format!("{q}:dead"));
    assert_eq!(config.done_jobs_set(), format!("{q}:done"));
    assert_eq!(config.signal_list(), format!("{q}:signal"));

    let redis = RedisServer::start();
    let links = vec![(1_i64, "abc".to_owned())];
    push_raw(&redis.url(), q, &links, 1).await;
    let queue = jobs::ClickQueue::connect(&redis.url(), Some(q))
        .await
        .unwrap();
    queue
        .push(&ClickBatch::new(vec![click(1, "abc", "ours")]))
        .await
        .unwrap();

    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let theirs: Vec<String> = redis::cmd("ZRANGE")
        .arg(config.scheduled_jobs_set())
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let ours: Vec<String> = redis::cmd("LRANGE")
        .arg(config.active_jobs_list())
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        (theirs.len(), ours.len()),
        (1, 1),
        "apalis pushes to scheduled, we to active"
    );
    let mut fields = Vec::new();
    for id in [&theirs[0], &ours[0]] {
        let payload: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(config.job_data_hash())
            .arg(id)
            .query_async(&mut conn)
            .await
            .unwrap();
        let batch: ClickBatch = serde_json::from_slice(&payload.expect("payload in the data hash"))
            .expect("the payload is the job's JSON");
        assert_eq!(batch.clicks.len(), 1);
        let mut keys: Vec<String> = redis::cmd("HKEYS")
            .arg(format!("{}:{id}", config.job_meta_hash()))
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.sort();
        fields.push(keys);
    }
    assert_eq!(
        fields[0], fields[1],
        "our push writes the metadata fields apalis' own push writes"
    );
    assert_eq!(
        fields[1],
        ["attempts", "idempotency_key", "max_attempts", "status"]
    );
}
