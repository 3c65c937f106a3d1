//! Issue 11, webhooks: subscriptions by API, link events and click batches delivered to a real
//! receiving server (`webhooks::receiver`, failing on command) with a valid HMAC-SHA256
//! signature, retried with back-off, dead after the last attempt, replayed. Embedded relay
//! on both backends (SQLite, PostgreSQL); the worker's relay is in worker/tests.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use webhooks::receiver::{Received, Receiver};

use crate::helpers::{Backend, TestApp, parts};

const SECRET: &str = "a-test-secret-of-some-length";
const MAX_ATTEMPTS: u32 = 3;
const REDIRECTS: usize = 37;

/// The app with fast retries: back-off base 0 (due again at the next relay pass), 3 attempts,
/// a relay pass every 50 ms.
async fn app(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.common.webhook_retry_base_seconds = 0;
        c.common.webhook_max_attempts = MAX_ATTEMPTS;
        c.common.webhook_relay_ms = 50;
    })
    .await
}

macro_rules! webhook_test {
    (async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            use super::*;

            async fn body($app: TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body(app(Backend::Sqlite).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(curtain_services), ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set")]
            async fn postgres() {
                body(app(Backend::Postgres).await).await;
            }
        }
    };
}

async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The signature the test computes itself: `sha256=` hex HMAC-SHA256 of `<ts>.<body>`.
fn expected_signature(secret: &str, r: &Received) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.{}", r.timestamp, r.body).as_bytes());
    let hex = hex::encode(mac.finalize().into_bytes());
    format!("sha256={hex}")
}

async fn subscribe(app: &TestApp, receiver: &Receiver, events: &[&str]) -> i64 {
    let (status, _, body) = parts(
        app.post(
            "/webhooks",
            &json!({ "url": receiver.url, "events": events, "secret": SECRET }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

async fn deliveries(app: &TestApp, hook: i64, state: &str) -> Vec<Value> {
    let (status, _, body) = parts(
        app.get(&format!("/webhooks/{hook}/deliveries?state={state}"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

crate::backend_test!(
    async fn webhooks_api_validates_input_and_shows_the_secret_only_on_create(app) {
        let bad = [
            (json!([]), "JSON body must be an object"),
            (json!({"events": ["link.created"]}), "Field 'url' is required"),
            (json!({"url": 5, "events": ["link.created"]}), "Field 'url' must be a string"),
            (
                json!({"url": "ftp://example.com/x", "events": ["link.created"]}),
                "Field 'url' must be a valid http or https URL",
            ),
            (
                json!({"url": "http://exa mple.com/", "events": ["link.created"]}),
                "Field 'url' must be a valid http or https URL",
            ),
            (json!({"url": "http://example.com/"}), "Field 'events' is required"),
            (
                json!({"url": "http://example.com/", "events": []}),
                "Field 'events' must be a non-empty list of event names",
            ),
            (
                json!({"url": "http://example.com/", "events": ["link.exploded"]}),
                "Field 'events' has an unknown event 'link.exploded' (known: link.created, link.updated, link.deleted, link.clicked)",
            ),
            (
                json!({"url": "http://example.com/", "events": ["link.created"], "secret": "short"}),
                "Field 'secret' must be 16 to 128 printable ASCII characters",
            ),
        ];
        for (body, message) in bad {
            let (status, _, answer) = parts(app.post("/webhooks", &body).await).await;
            assert_eq!((status, answer), (400, json!({ "error": message })), "{body}");
        }

        let (status, _, created) = parts(
            app.post(
                "/webhooks",
                &json!({"url": "http://127.0.0.1:9/hook", "events": ["link.deleted", "link.created", "link.created"]}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 201);
        let secret = created["secret"].as_str().unwrap();
        assert_eq!(secret.len(), 64);
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(created["events"], json!(["link.created", "link.deleted"]));
        let id = created["id"].as_i64().unwrap();

        let (status, _, list) = parts(app.get("/webhooks").await).await;
        assert_eq!(status, 200);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert!(list[0].get("secret").is_none(), "{list}");
        let (status, _, one) = parts(app.get(&format!("/webhooks/{id}")).await).await;
        assert_eq!(status, 200);
        assert!(one.get("secret").is_none());
        assert_eq!(one["url"], "http://127.0.0.1:9/hook");

        for (path, message) in [
            ("/webhooks/999999", "Webhook not found"),
            ("/webhooks/99999999999999999999", "Webhook not found"),
            ("/webhooks/abc", "Not found"),
            ("/webhooks/999999/deliveries", "Webhook not found"),
        ] {
            let (status, _, body) = parts(app.get(path).await).await;
            assert_eq!((status, body), (404, json!({ "error": message })), "{path}");
        }
        let (status, _, body) =
            parts(app.get(&format!("/webhooks/{id}/deliveries?state=lost")).await).await;
        assert_eq!(
            (status, body),
            (400, json!({"error": "Query parameter 'state' must be pending, delivered or dead"}))
        );

        assert_eq!(app.delete(&format!("/webhooks/{id}")).await.status(), 204);
        let (status, _, body) = parts(app.delete(&format!("/webhooks/{id}")).await).await;
        assert_eq!((status, body), (404, json!({"error": "Webhook not found"})));
    }
);

webhook_test!(
    async fn link_events_are_each_delivered_once_with_a_valid_signature(app) {
        let receiver = Receiver::start().await.unwrap();
        let hook = subscribe(&app, &receiver, &["link.created", "link.updated", "link.deleted"]).await;
        let link = app.create_url("https://example.com/hooked").await;
        let id = link["id"].as_i64().unwrap();
        assert_eq!(app.put(&format!("/urls/{id}"), &json!({"title": "New"})).await.status(), 200);
        assert_eq!(app.delete(&format!("/urls/{id}")).await.status(), 204);

        eventually("three deliveries marked", async || {
            deliveries(&app, hook, "delivered").await.len() >= 3
        })
        .await;
        assert_eq!(deliveries(&app, hook, "delivered").await.len(), 3);
        let got = receiver.delivered();
        let events: Vec<&str> = got.iter().map(|r| r.event.as_str()).collect();
        let mut sorted = events.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, ["link.created", "link.deleted", "link.updated"]);
        for r in &got {
            assert_eq!(r.signature, expected_signature(SECRET, r), "{}", r.body);
            // A receiver with the wrong secret sees the mismatch.
            assert_ne!(r.signature, expected_signature("not-the-secret-at-all", r));
            let body = r.json();
            assert_eq!(body["event"], r.event.as_str());
            assert_eq!(body["id"].to_string(), r.delivery);
            assert_eq!(body["data"]["id"], id);
            assert_eq!(body["data"]["short_code"], link["short_code"]);
            let age = chrono::Utc::now().timestamp() - r.timestamp.parse::<i64>().unwrap();
            assert!((0..60).contains(&age), "timestamp {}", r.timestamp);
        }
        let updated = got.iter().find(|r| r.event == "link.updated").unwrap().json();
        assert_eq!(updated["data"]["title"], "New");
        // Nothing else arrives: every event once.
        assert_eq!(receiver.requests().len(), 3);
        // Counted just after the row is marked.
        let metrics = &app.state.metrics.webhooks;
        eventually("counted", async || metrics.get("link.deleted", "delivered") == 1).await;
        eventually("counted", async || metrics.get("link.created", "delivered") == 1).await;
        assert_eq!(metrics.get("link.created", "failed"), 0);
    }
);

webhook_test!(
    async fn clicks_are_delivered_in_batches_totalling_the_redirects(app) {
        let receiver = Receiver::start().await.unwrap();
        let hook = subscribe(&app, &receiver, &["link.clicked"]).await;
        let link = app.create_url("https://example.com/clicked").await;
        let code = link["short_code"].as_str().unwrap();
        for _ in 0..REDIRECTS {
            assert_eq!(app.get(&format!("/r/{code}")).await.status(), 302);
        }
        app.run_pending_jobs().await;
        let clicks = |got: &[Received]| -> Vec<Value> {
            got.iter()
                .flat_map(|r| r.json()["data"]["clicks"].as_array().unwrap().clone())
                .collect()
        };
        eventually("every click delivered", async || {
            clicks(&receiver.delivered()).len() >= REDIRECTS
        })
        .await;
        let got = receiver.delivered();
        let all = clicks(&got);
        assert_eq!(all.len(), REDIRECTS);
        let ids: HashSet<&str> = all.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), REDIRECTS, "a click delivered twice");
        for r in &got {
            assert_eq!(r.event, "link.clicked");
            assert_eq!(r.signature, expected_signature(SECRET, r));
            assert!(r.json()["data"]["batch_id"].is_string());
        }
        for c in &all {
            assert_eq!(c["url_id"], link["id"]);
            assert_eq!(c["short_code"], code);
            assert_eq!(c["is_bot"], false);
            let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["at", "id", "is_bot", "short_code", "url_id"]);
        }
        let per_delivery: BTreeMap<&str, usize> =
            got.iter().map(|r| (r.delivery.as_str(), 1)).collect();
        assert_eq!(per_delivery.len(), got.len(), "a delivery posted twice");
        // The receiver answers before the row is marked: wait for the marks, then compare.
        eventually("every delivery marked", async || {
            deliveries(&app, hook, "pending").await.is_empty()
        })
        .await;
        assert_eq!(deliveries(&app, hook, "delivered").await.len(), got.len());
        assert_eq!(receiver.requests().len(), got.len());
    }
);

webhook_test!(
    async fn a_failing_receiver_gets_retries_until_it_heals_then_one_delivery(app) {
        let receiver = Receiver::start().await.unwrap();
        receiver.fail_next(2);
        let hook = subscribe(&app, &receiver, &["link.created"]).await;
        app.create_url("https://example.com/flaky").await;
        eventually("delivered after two failures", async || {
            !deliveries(&app, hook, "delivered").await.is_empty()
        })
        .await;
        let requests = receiver.requests();
        let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [500, 500, 200]);
        assert!(requests.iter().all(|r| r.delivery == requests[0].delivery));
        assert!(requests.iter().all(|r| r.body == requests[0].body), "the body changed between attempts");
        let rows = deliveries(&app, hook, "delivered").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["attempts"], 3);
        assert_eq!(rows[0]["last_status"], 200);
        assert_eq!(rows[0]["last_error"], Value::Null);
        let metrics = &app.state.metrics.webhooks;
        eventually("counted", async || metrics.get("link.created", "delivered") == 1).await;
        assert_eq!(metrics.get("link.created", "failed"), 2);
        assert_eq!(metrics.get("link.created", "dead"), 0);
    }
);

webhook_test!(
    async fn a_delivery_failing_every_attempt_is_dead_listed_and_replayed(app) {
        let receiver = Receiver::start().await.unwrap();
        receiver.set_failing(true);
        let hook = subscribe(&app, &receiver, &["link.created"]).await;
        app.create_url("https://example.com/down").await;
        let mut dead = Vec::new();
        eventually("the delivery dead", async || {
            dead = deliveries(&app, hook, "dead").await;
            !dead.is_empty()
        })
        .await;
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0]["attempts"], MAX_ATTEMPTS);
        assert_eq!(dead[0]["last_status"], 500);
        assert!(dead[0]["last_error"].as_str().unwrap().starts_with("HTTP 500"));
        assert_eq!(receiver.requests().len(), MAX_ATTEMPTS as usize);
        let metrics = &app.state.metrics.webhooks;
        eventually("counted", async || metrics.get("link.created", "dead") == 1).await;
        assert_eq!(metrics.get("link.created", "failed"), u64::from(MAX_ATTEMPTS));
        assert!(deliveries(&app, hook, "pending").await.is_empty());

        // The replay `curtain-ops webhooks replay` runs (the binary: ops/tests).
        receiver.set_failing(false);
        let replayed = storage::webhooks::replay(
            &app.state.db,
            Some(hook),
            None,
            chrono::Utc::now().naive_utc(),
        )
        .await
        .unwrap();
        assert_eq!(replayed, 1);
        eventually("the replayed delivery marked", async || {
            !deliveries(&app, hook, "delivered").await.is_empty()
        })
        .await;
        assert_eq!(receiver.delivered().len(), 1);
        assert!(deliveries(&app, hook, "dead").await.is_empty());
        let delivered = deliveries(&app, hook, "delivered").await;
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0]["id"], dead[0]["id"]);
        assert_eq!(delivered[0]["attempts"], 1);
    }
);

webhook_test!(
    async fn a_pending_delivery_whose_handover_was_lost_is_delivered_by_the_relay(app) {
        let receiver = Receiver::start().await.unwrap();
        let hook = subscribe(&app, &receiver, &["link.updated"]).await;
        // A row as a crash right after the commit leaves it: pending, never handed over.
        app.state
            .db
            .execute_unprepared(&format!(
                "INSERT INTO webhook_deliveries (webhook_id, event, payload, state, attempts, \
                 next_attempt_at, dedup_key, created_at) VALUES ({hook}, 'link.updated', \
                 '{{\"id\": 1}}', 'pending', 0, '2026-01-01 00:00:00', 'orphan', '2026-01-01 00:00:00')"
            ))
            .await
            .unwrap();
        eventually("the orphan delivered", async || {
            !receiver.delivered().is_empty()
        })
        .await;
        let got = receiver.delivered();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].json()["data"], json!({"id": 1}));
        assert_eq!(got[0].signature, expected_signature(SECRET, &got[0]));
    }
);
