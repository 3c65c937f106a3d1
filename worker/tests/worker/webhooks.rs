//! Webhooks through the production shape: the api records deliveries in the link's
//! transaction (and the worker's click ingestion, one per batch), the worker's relay enqueues
//! them on `WEBHOOK_QUEUE` and its `deliver_webhook` jobs post them to a real receiving server
//! that fails on command. The embedded relay is tested in api/tests (both backends).

use std::collections::HashSet;
use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use webhooks::receiver::Receiver;

use crate::helpers::*;

const SECRET: &str = "worker-test-secret-0123456789";
const REDIRECTS: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn the_worker_delivers_link_events_and_click_batches_through_its_queue() {
    let db = TestDb::new().await;
    let ns = Namespace::new();
    let redis = RedisServer::start();
    let spool = tempfile::tempdir().unwrap();
    let api = spawn_api(&db, &redis.url(), &[redis.addr()], &ns, spool.path()).await;
    let mut config = worker_config(&db, &redis.url(), &[redis.addr()], &ns);
    config.common.webhook_retry_base_seconds = 0;
    config.common.webhook_max_attempts = 3;
    config.common.webhook_relay_ms = 50;
    let (_stop, _worker) = spawn_worker(config.clone());
    let client = http_client();
    let receiver = Receiver::start().await.unwrap();
    // The first attempt fails: the retry goes through the row's back-off and the queue again.
    receiver.fail_next(1);
    let created: Value = client
        .post(format!("{}/webhooks", api.address))
        .json(&json!({"url": receiver.url, "events": ["link.created", "link.clicked"], "secret": SECRET}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook = created["id"].as_i64().unwrap();

    let (url_id, code) = create_link(&client, &api, "https://example.com/worker-hooked").await;
    // The creation alone first, so the failure on command is its first attempt's.
    eventually(
        Duration::from_secs(30),
        "the link's creation delivered",
        || async {
            receiver
                .delivered()
                .iter()
                .any(|r| r.event == "link.created")
        },
    )
    .await;
    for _ in 0..REDIRECTS {
        let resp = client
            .get(format!("{}/r/{code}", api.address))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
    }
    let clicks = |receiver: &Receiver| -> Vec<Value> {
        receiver
            .delivered()
            .iter()
            .filter(|r| r.event == "link.clicked")
            .flat_map(|r| r.json()["data"]["clicks"].as_array().unwrap().clone())
            .collect()
    };
    eventually(
        Duration::from_secs(30),
        "the link's creation and every click delivered",
        || async {
            clicks(&receiver).len() >= REDIRECTS
                && receiver
                    .delivered()
                    .iter()
                    .any(|r| r.event == "link.created")
        },
    )
    .await;
    let all = clicks(&receiver);
    assert_eq!(all.len(), REDIRECTS);
    let ids: HashSet<&str> = all.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), REDIRECTS, "a click delivered twice");
    assert!(all.iter().all(|c| c["url_id"] == url_id));
    for r in receiver.delivered() {
        let ts: i64 = r.timestamp.parse().unwrap();
        assert_eq!(r.signature, webhooks::signature(SECRET, ts, &r.body));
    }
    let created: Vec<_> = receiver
        .requests()
        .into_iter()
        .filter(|r| r.event == "link.created")
        .collect();
    let statuses: Vec<u16> = created.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [500, 200],
        "one failed attempt, then one delivery"
    );
    assert_eq!(created[0].delivery, created[1].delivery);

    let delivered_id: i64 = created[1].delivery.parse().unwrap();
    duplicates_and_orphans(&db, &redis, &config, &receiver, hook, delivered_id).await;
}

/// The worker counted one failed attempt and one delivery; a duplicate job of a delivered row
/// posts nothing; a pending row that never became a job is delivered by the relay.
async fn duplicates_and_orphans(
    db: &TestDb,
    redis: &RedisServer,
    config: &worker::Config,
    receiver: &Receiver,
    hook: i64,
    delivered_id: i64,
) {
    let metrics = format!("http://{}/metrics", config.listen);
    eventually(Duration::from_secs(10), "the delivery counted", || async {
        metric_where(
            &metrics,
            "curtain_webhook_deliveries_total",
            r#"event="link.created",result="delivered""#,
        )
        .await as u64
            == 1
    })
    .await;
    assert_eq!(
        metric_where(
            &metrics,
            "curtain_webhook_deliveries_total",
            r#"event="link.created",result="failed""#
        )
        .await as u64,
        1
    );

    // A job for a delivery already made posts nothing (a duplicate after a worker kill).
    let conn = db.connect().await;
    let queue = jobs::JobQueue::connect(&redis.url(), Some(&config.common.webhook_queue))
        .await
        .unwrap();
    let before = receiver.requests().len();
    let jobs_before = metric_where(
        &metrics,
        "curtain_queue_jobs_processed_total",
        &format!("queue=\"{}\"", config.common.webhook_queue),
    )
    .await;
    queue
        .push_job(&jobs::WebhookDelivery {
            delivery_id: delivered_id,
            claim: None,
        })
        .await
        .unwrap();
    // Ran: the queue has nothing left to run and counted one more finished job.
    eventually(Duration::from_secs(10), "the duplicate job ran", || async {
        queue.depth().await.unwrap().pending() == 0
            && metric_where(
                &metrics,
                "curtain_queue_jobs_processed_total",
                &format!("queue=\"{}\"", config.common.webhook_queue),
            )
            .await
                > jobs_before
    })
    .await;
    assert_eq!(
        receiver.requests().len(),
        before,
        "a delivered row was posted again"
    );

    // A pending row that never became a job (a crash between commit and hand-over) is found
    // by the relay and delivered.
    conn.execute_unprepared(&format!(
        "INSERT INTO webhook_deliveries (webhook_id, event, payload, state, attempts, \
         next_attempt_at, dedup_key, created_at) VALUES ({hook}, 'link.created', \
         '{{\"orphan\": true}}', 'pending', 0, NOW(), 'orphan', NOW())"
    ))
    .await
    .unwrap();
    eventually(Duration::from_secs(10), "the orphan delivered", || async {
        receiver
            .delivered()
            .iter()
            .any(|r| r.json()["data"] == json!({"orphan": true}))
    })
    .await;
    // The receiver answers before the row is marked: every row ends delivered.
    let not_delivered = format!(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = {hook} AND state <> 'delivered'"
    );
    eventually(
        Duration::from_secs(10),
        "every row marked delivered",
        || async { count(&conn, &not_delivered).await == 0 },
    )
    .await;
}
