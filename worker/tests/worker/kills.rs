//! The worker SIGKILLed again and again, at random moments, under redirect load (issue: clicks
//! missing after the worker is SIGKILLed). Whatever the moment of the kill (fetching, running,
//! acking, promoting, pruning), every 302 the load generator saw must become exactly one event
//! and exactly one count in the real-time counters.
//!
//! `CURTAIN_TEST_KILLS` sets how many kills (default 10, about a minute); the loop that found
//! the defect ran it with hundreds.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::Rng;

use crate::helpers::*;

const REDIRECT_EVENTS: &str = "SELECT COUNT(*) FROM events WHERE event_type = 'redirect'";

/// Where every job of the queue is: printed when the counts do not add up.
async fn queue_report(redis: &str, queue: &str) -> String {
    let client = redis::Client::open(redis).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut out = String::new();
    for (what, cmd, key) in [
        ("active", "LLEN", "active"),
        ("scheduled", "ZCARD", "scheduled"),
        ("dead", "SCARD", "dead"),
        ("done", "SCARD", "done"),
        ("data", "HLEN", "data"),
        ("workers", "ZCARD", "workers"),
    ] {
        let n: u64 = redis::cmd(cmd)
            .arg(format!("{queue}:{key}"))
            .query_async(&mut conn)
            .await
            .unwrap_or(0);
        let _ = write!(out, "{what}={n} ");
    }
    let workers: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(format!("{queue}:workers"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    let _ = write!(out, "\nworkers: {workers:?}");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{queue}:inflight:*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    for key in keys {
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        let _ = write!(out, "\n{key}: {ids:?}");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_worker_sigkilled_at_random_moments_under_load_loses_and_doubles_no_click() {
    let kills: usize = std::env::var("CURTAIN_TEST_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let queue = RedisServer::start();
    let shards = [RedisServer::start(), RedisServer::start()];
    let addrs: Vec<String> = shards.iter().map(RedisServer::addr).collect();
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &queue.url(), &addrs, &ns, spool.path()).await;
    let config = worker_config(&db, &queue.url(), &addrs, &ns);
    let mut worker = worker_process(&config);
    let client = http_client();
    let (id, code) = create_link(&client, &api, "https://example.com/kills").await;
    let conn = db.connect().await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = crate::faults::redirect_load(format!("{}/r/{code}", api.address), 32, stop.clone());
    for i in 0..kills {
        // Random moments: anywhere in fetch, run, ack, promote or prune of whatever is going on.
        let (alive, down) = {
            let mut rng = rand::rng();
            (rng.random_range(200..2_500), rng.random_range(0..1_000))
        };
        tokio::time::sleep(Duration::from_millis(alive)).await;
        worker.kill().unwrap();
        worker.wait().unwrap();
        eprintln!("kill {}/{kills} after {alive} ms, down {down} ms", i + 1);
        tokio::time::sleep(Duration::from_millis(down)).await;
        worker = worker_process(&config);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let (ok, bad) = load.await.unwrap();
    assert_eq!(bad, 0, "every redirect answered 302");
    let expected = ok as i64;
    eprintln!("{ok} redirects answered 302");

    let drained = tokio::time::timeout(Duration::from_secs(90), async {
        while count(&conn, REDIRECT_EVENTS).await < expected {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let events = count(&conn, REDIRECT_EVENTS).await;
    assert!(
        drained.is_ok(),
        "{} of {expected} clicks missing after 90 s; queue: {}",
        expected - events,
        queue_report(&queue.url(), &ns.queue).await
    );
    assert_eq!(events, expected, "no click counted twice in events");
    let realtime_url = format!("{}/urls/{id}/analytics/realtime", api.address);
    eventually(
        Duration::from_secs(10),
        "real-time counters settle",
        || async {
            get_json(&client, &realtime_url).await["total_clicks"].as_i64() == Some(expected)
        },
    )
    .await;
    let realtime = get_json(&client, &realtime_url).await;
    assert_eq!(
        realtime["total_clicks"].as_i64(),
        Some(expected),
        "{realtime}"
    );
    assert_eq!(realtime["unavailable_shards"], 0);
    worker.kill().unwrap();
    worker.wait().unwrap();
}

/// The job states a lost job could be left in, each set up by hand on one pushed job: the
/// worker must find it and ingest its clicks, and count what it recovered.
enum Stranded {
    /// Held by a worker that is no longer in `<q>:workers` (apalis-redis never looks there).
    UnregisteredWorker,
    /// In no list or set at all, only its data stored.
    Nowhere,
    /// Buried by apalis-redis after 25 failed attempts.
    Dead,
}

async fn a_stranded_job_is_run(how: Stranded, metric_name: &str) {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let conn = db.connect().await;
    let links = seed_links(&conn, 1).await;
    let (id, code) = &links[0];
    let queue = jobs::ClickQueue::connect(&redis.url(), Some(&ns.queue))
        .await
        .unwrap();
    let batch = jobs::ClickBatch::new(vec![click(*id, code, "a"), click(*id, code, "b")]);
    queue.push(&batch).await.unwrap();
    let mut r = queue.connection();
    let job: String = redis::cmd("LPOP")
        .arg(format!("{}:active", ns.queue))
        .query_async(&mut r)
        .await
        .unwrap();
    let ghost = format!("{}:inflight:record_clicks-gone-1-deadbeef-0", ns.queue);
    match how {
        Stranded::UnregisteredWorker => {
            let () = redis::cmd("SADD")
                .arg(&ghost)
                .arg(&job)
                .query_async(&mut r)
                .await
                .unwrap();
        }
        Stranded::Nowhere => {}
        Stranded::Dead => {
            let () = redis::cmd("SADD")
                .arg(format!("{}:dead", ns.queue))
                .arg(&job)
                .query_async(&mut r)
                .await
                .unwrap();
            let () = redis::cmd("HSET")
                .arg(format!("{}:meta:{job}", ns.queue))
                .arg("attempts")
                .arg(25)
                .arg("status")
                .arg("Failed")
                .query_async(&mut r)
                .await
                .unwrap();
        }
    }
    let config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    let metrics_url = format!("http://{}/metrics", config.listen);
    let (_stop, _worker) = spawn_worker(config);
    eventually(
        Duration::from_secs(30),
        "the stranded job's clicks ingested",
        || async { count(&conn, REDIRECT_EVENTS).await == 2 },
    )
    .await;
    assert_eq!(
        metric_where(
            &metrics_url,
            metric_name,
            &format!("queue=\"{}\"", ns.queue)
        )
        .await
        .round() as u64,
        1,
        "{metric_name}"
    );
    let held: u64 = redis::cmd("EXISTS")
        .arg(&ghost)
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(held, 0, "the unregistered worker's in-flight set is gone");
    eventually(
        Duration::from_secs(10),
        "the job is finished and pruned",
        || async { queue.depth().await.unwrap() == jobs::queue::QueueDepth::default() },
    )
    .await;
    assert_eq!(count(&conn, REDIRECT_EVENTS).await, 2, "ingested once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_job_held_by_a_worker_no_longer_registered_is_run() {
    a_stranded_job_is_run(
        Stranded::UnregisteredWorker,
        "curtain_queue_stranded_jobs_recovered_total",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_job_found_in_no_list_or_set_is_run() {
    a_stranded_job_is_run(
        Stranded::Nowhere,
        "curtain_queue_stranded_jobs_recovered_total",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_click_job_buried_after_25_attempts_is_run_again() {
    a_stranded_job_is_run(Stranded::Dead, "curtain_queue_dead_jobs_redriven_total").await;
}
