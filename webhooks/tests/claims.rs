//! The delivery rows' rules on a real (SQLite) database and a real receiver: one claim at a
//! time, a stale job posts nothing, a delivered row is not posted again, a click batch
//! recorded twice is one delivery.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use storage::webhooks::{self as rows, ClickHooks, DeliveryState, Outcome};
use webhooks::receiver::Receiver;

async fn db() -> (sea_orm::DatabaseConnection, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
    (storage::db::connect_db(&url, 1).await.unwrap(), dir)
}

fn sender() -> webhooks::Sender {
    telemetry::install_crypto_provider();
    let metrics = webhooks::WebhookMetrics::register(&prometheus::Registry::new());
    webhooks::Sender::new(
        webhooks::Policy {
            base: Duration::ZERO,
            max_attempts: 3,
        },
        metrics,
    )
    .unwrap()
}

#[tokio::test]
async fn a_row_is_claimed_once_and_a_stale_or_repeated_job_posts_nothing() {
    let (db, _dir) = db().await;
    let receiver = Receiver::start().await.unwrap();
    let now = chrono::Utc::now().naive_utc();
    rows::create(
        &db,
        &receiver.url,
        &["link.deleted".into()],
        "s3cret-s3cret-s3cret",
        now,
    )
    .await
    .unwrap();
    let written = rows::record_link_event(&db, "link.deleted", &serde_json::json!({"id": 3}), now)
        .await
        .unwrap();
    assert_eq!(written, 1);
    let lease = chrono::Duration::minutes(1);
    let claimed = rows::claim_due(&db, now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let (id, claim) = claimed[0];
    assert_eq!(claim, 1);
    assert!(
        rows::claim_due(&db, now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed twice"
    );

    let sender = sender();
    assert_eq!(
        sender.deliver(&db, id, Some(claim - 1)).await.unwrap(),
        None
    );
    assert!(receiver.requests().is_empty(), "a stale job posted");
    assert_eq!(
        sender.deliver(&db, id, Some(claim)).await.unwrap(),
        Some(Outcome::Delivered)
    );
    assert_eq!(sender.deliver(&db, id, Some(claim)).await.unwrap(), None);
    assert_eq!(
        receiver.requests().len(),
        1,
        "a delivered row was posted again"
    );
    // Past its lease a delivered row is not claimed again.
    let later = now + chrono::Duration::minutes(5);
    assert!(
        rows::claim_due(&db, later, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_click_batch_recorded_twice_is_one_delivery_and_none_without_subscribers() {
    let (db, _dir) = db().await;
    let now = chrono::Utc::now().naive_utc();
    let hooks = ClickHooks::new(Duration::ZERO);
    let click = jobs::Click {
        click_id: "c1".into(),
        url_id: 1,
        short_code: "abc123".into(),
        at: now,
        visitor_hash: "secret-visitor".into(),
        user_agent: Some("Mozilla/5.0".into()),
        referrer: None,
        head: false,
    };
    let batch = [("b1", std::slice::from_ref(&click))];
    assert_eq!(
        rows::record_click_batches(&db, &hooks, &batch, now)
            .await
            .unwrap(),
        0
    );
    let hook = rows::create(
        &db,
        "http://127.0.0.1:9/h",
        &["link.clicked".into()],
        "s3cret-s3cret-s3cret",
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        rows::record_click_batches(&db, &hooks, &batch, now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        rows::record_click_batches(&db, &hooks, &batch, now)
            .await
            .unwrap(),
        0
    );
    let rows = rows::deliveries(&db, hook.id, Some(DeliveryState::Pending), 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0].payload.contains("secret-visitor"),
        "{}",
        rows[0].payload
    );
    let data: serde_json::Value = serde_json::from_str(&rows[0].payload).unwrap();
    assert_eq!(data["batch_id"], "b1");
    assert_eq!(data["clicks"][0]["id"], "c1");
}

#[tokio::test]
async fn delivered_rows_past_their_keep_time_are_pruned_dead_ones_stay() {
    let (db, _dir) = db().await;
    let receiver = Receiver::start().await.unwrap();
    let now = chrono::Utc::now().naive_utc();
    let hook = rows::create(
        &db,
        &receiver.url,
        &["link.created".into()],
        "s3cret-s3cret-s3cret",
        now,
    )
    .await
    .unwrap();
    for _ in 0..2 {
        rows::record_link_event(&db, "link.created", &serde_json::json!({}), now)
            .await
            .unwrap();
    }
    let claimed = rows::claim_due(&db, now, chrono::Duration::minutes(1), 10)
        .await
        .unwrap();
    let (id, claim) = claimed[0];
    assert_eq!(
        sender().deliver(&db, id, Some(claim)).await.unwrap(),
        Some(Outcome::Delivered)
    );
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        &format!(
            "UPDATE webhook_deliveries SET state = 'dead' WHERE id = {}",
            claimed[1].0
        ),
    )
    .await
    .unwrap();
    let soon = chrono::Utc::now().naive_utc() - chrono::Duration::hours(1);
    assert_eq!(rows::prune_delivered(&db, soon).await.unwrap(), 0);
    let later = chrono::Utc::now().naive_utc() + chrono::Duration::hours(1);
    assert_eq!(rows::prune_delivered(&db, later).await.unwrap(), 1);
    let left = rows::deliveries(&db, hook.id, None, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].state, DeliveryState::Dead);
}
