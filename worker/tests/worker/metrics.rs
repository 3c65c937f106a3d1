//! The worker's `/metrics`: per-queue job outcomes read from a real failing-then-healed batch,
//! and the label rules (every `curtain_queue_*` series names its queue; no `instance` or `job`
//! label, which Prometheus sets itself).

use std::time::Duration;

use crate::helpers::{
    Namespace, RedisServer, TestDb, click, count, eventually, seed_links, spawn_worker,
    worker_config,
};

/// The value of the integer sample `name{queue="<queue>"}` in an exposition, if present.
fn sample(text: &str, name: &str, queue: &str) -> Option<u64> {
    let prefix = format!("{name}{{queue=\"{queue}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
}

async fn scrape(url: &str) -> String {
    match reqwest::get(url).await {
        Ok(resp) => resp.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn a_batch_that_fails_is_counted_failed_and_retried_then_processed_once_healed() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let conn = db.connect().await;
    let links = seed_links(&conn, 1).await;
    // Ingestion fails while the events table is away.
    sea_orm::ConnectionTrait::execute_unprepared(&conn, "ALTER TABLE events RENAME TO events_away")
        .await
        .unwrap();
    let queue = jobs::ClickQueue::connect(&redis.url(), Some(&ns.queue))
        .await
        .unwrap();
    let (id, code) = &links[0];
    queue
        .push(&jobs::ClickBatch::new(vec![
            click(*id, code, "a"),
            click(*id, code, "b"),
            click(*id, code, "c"),
        ]))
        .await
        .unwrap();
    let config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    let url = format!("http://{}/metrics", config.listen);
    let (_stop, _worker) = spawn_worker(config);

    let name = ns.queue.as_str();
    eventually(Duration::from_secs(20), "a failed execution", || async {
        sample(&scrape(&url).await, "curtain_queue_jobs_failed_total", name).unwrap_or(0) >= 1
    })
    .await;
    let text = scrape(&url).await;
    let failed = sample(&text, "curtain_queue_jobs_failed_total", name).unwrap();
    // Far below the 25 attempts apalis-redis allows: every failure is retried.
    assert_eq!(
        sample(&text, "curtain_queue_jobs_retried_total", name),
        Some(failed)
    );
    assert_eq!(
        sample(&text, "curtain_queue_jobs_processed_total", name),
        Some(0)
    );

    sea_orm::ConnectionTrait::execute_unprepared(&conn, "ALTER TABLE events_away RENAME TO events")
        .await
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "the retried batch processed",
        || async {
            sample(
                &scrape(&url).await,
                "curtain_queue_jobs_processed_total",
                name,
            ) == Some(1)
        },
    )
    .await;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM events").await, 3);
    let text = scrape(&url).await;
    let failed = sample(&text, "curtain_queue_jobs_failed_total", name).unwrap();
    assert!(failed >= 1);
    assert_eq!(
        sample(&text, "curtain_queue_jobs_retried_total", name),
        Some(failed)
    );
    let executions = sample(&text, "curtain_queue_job_duration_seconds_count", name).unwrap();
    assert_eq!(executions, failed + 1, "every execution is timed");
    assert!(
        text.lines()
            .any(|l| l == "curtain_worker_clicks_ingested_total 3"),
        "{text}"
    );
    eventually(
        Duration::from_secs(10),
        "no job dead, workers alive",
        || async {
            let text = scrape(&url).await;
            text.contains(&format!(
                "curtain_queue_jobs{{queue=\"{name}\",state=\"dead\"}} 0"
            )) && sample(&text, "curtain_queue_workers_alive", name) == Some(4)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn every_queue_series_names_its_queue_and_none_carries_instance_or_job() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    let url = format!("http://{}/metrics", config.listen);
    let (_stop, _worker) = spawn_worker(config);
    // The gauges are written by the first upkeep tick; the counters exist from the start.
    eventually(Duration::from_secs(20), "live workers exported", || async {
        sample(
            &scrape(&url).await,
            "curtain_queue_workers_alive",
            &ns.queue,
        ) == Some(4)
    })
    .await;
    let text = scrape(&url).await;
    let queue_label = format!("queue=\"{}\"", ns.queue);
    let mut families = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains("instance=") && !line.contains("job="),
            "{line}"
        );
        if line.starts_with("curtain_queue_") {
            // Every queue the worker consumes (clicks, alerts, warming) has its own series.
            assert!(line.contains("queue=\"wtest-"), "{line}");
            if line.contains(&queue_label) {
                families.insert(line.split(['{', ' ']).next().unwrap().to_owned());
            }
        }
    }
    let expected = [
        "curtain_queue_job_duration_seconds_bucket",
        "curtain_queue_job_duration_seconds_count",
        "curtain_queue_job_duration_seconds_sum",
        "curtain_queue_jobs",
        "curtain_queue_jobs_failed_total",
        "curtain_queue_jobs_processed_total",
        "curtain_queue_jobs_pruned_total",
        "curtain_queue_jobs_retried_total",
        "curtain_queue_oldest_job_age_seconds",
        "curtain_queue_worker_records_pruned_total",
        "curtain_queue_workers_alive",
        "curtain_queue_oldest_ready_age_seconds",
        "curtain_queue_stranded_jobs_recovered_total",
        "curtain_queue_dead_jobs_redriven_total",
    ];
    for family in expected {
        assert!(
            families.contains(family),
            "{family} missing from {families:?}"
        );
    }
    for state in worker::metrics::QUEUE_STATES {
        let series = format!("curtain_queue_jobs{{{queue_label},state=\"{state}\"}} 0");
        assert!(text.contains(&series), "{series}");
    }
}
