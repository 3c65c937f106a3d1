//! Deployment settings kept in the database: the visitor-hash salt and the short-code secret
//! are generated once and shared by every api process and restart (unique visitors do not
//! inflate), a database that already had links keeps the old short-code default, and every
//! process sees one deployment id.

use api::short_code::CodeGenerator;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;

use crate::helpers::{Backend, Storage, TestApp};

async fn setting(app: &TestApp, key: &str) -> String {
    let row = app
        .state
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            app.state.db.get_database_backend(),
            format!("SELECT value FROM deployment_settings WHERE key = '{key}'"),
        ))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{key} is stored"));
    row.try_get_by_index(0).unwrap()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let row = app
        .state
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            app.state.db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

/// Counters shared by every process: the test Redis as the one shard (PostgreSQL runs only).
fn shared_counters(storage: &Storage, config: &mut api::Config) {
    if let Some(redis) = &storage.redis_url {
        let addr = redis
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        config.common.redis_shards = vec![addr];
    }
}

/// One visitor (this test's address) follows a link through a first api process, a second one
/// beside it, and a third started after the first stopped: one unique visitor, three clicks.
async fn one_visitor_through_restarts_and_replicas_counts_once(backend: Backend) {
    let storage = Storage::new(backend).await;
    let first = TestApp::spawn_on(backend, storage.clone(), |c| {
        shared_counters(&storage, c);
    })
    .await;
    let url = first.create_url("https://example.com/visitor").await;
    let redirect = format!("/r/{}", url["short_code"].as_str().unwrap());
    assert_eq!(first.get(&redirect).await.status(), 302);
    first.run_pending_jobs().await;

    let second =
        TestApp::spawn_on(backend, storage.clone(), |c| shared_counters(&storage, c)).await;
    assert_eq!(second.get(&redirect).await.status(), 302);
    second.run_pending_jobs().await;
    assert_eq!(first.state.deployment_id, second.state.deployment_id);
    let deployment_id = first.state.deployment_id.clone();
    drop(first);

    let restarted =
        TestApp::spawn_on(backend, storage.clone(), |c| shared_counters(&storage, c)).await;
    assert_eq!(restarted.get(&redirect).await.status(), 302);
    restarted.run_pending_jobs().await;
    assert_eq!(restarted.state.deployment_id, deployment_id);

    assert_eq!(
        count(
            &restarted,
            "SELECT COUNT(*) FROM events WHERE event_type = 'redirect'"
        )
        .await,
        3
    );
    assert_eq!(
        count(
            &restarted,
            "SELECT COUNT(DISTINCT visitor_hash) FROM events WHERE event_type = 'redirect'"
        )
        .await,
        1,
        "one visitor has one hash in every process"
    );
    let hash: String = setting(&restarted, "visitor_hash_salt").await;
    assert_eq!(hash.len(), 64, "a generated 256-bit salt");
    if backend == Backend::Postgres {
        let realtime: Value = restarted
            .get(&format!("/urls/{}/analytics/realtime", url["id"]))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(realtime["total_clicks"], 3, "{realtime}");
        assert_eq!(realtime["unique_visitors"], 1, "{realtime}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_visitor_through_restarts_and_replicas_counts_once_sqlite() {
    one_visitor_through_restarts_and_replicas_counts_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn one_visitor_through_restarts_and_replicas_counts_once_postgres() {
    one_visitor_through_restarts_and_replicas_counts_once(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_gets_a_generated_short_code_secret_and_env_values_win() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let secret = setting(&app, "short_code_secret").await;
    assert_eq!(secret.len(), 64);
    let url = app.create_url("https://example.com/secret").await;
    let id = url["id"].as_u64().unwrap();
    assert_eq!(
        url["short_code"].as_str(),
        CodeGenerator::new(&secret).code_for(id, 0).as_deref()
    );
    assert_ne!(
        url["short_code"].as_str(),
        CodeGenerator::new("curtain").code_for(id, 0).as_deref(),
        "not the public default"
    );

    let overridden = TestApp::spawn_on(Backend::Sqlite, app.storage.clone(), |c| {
        c.short_code_secret = Some("from-env".into());
    })
    .await;
    let url = overridden.create_url("https://example.com/env").await;
    let id = url["id"].as_u64().unwrap();
    assert_eq!(
        url["short_code"].as_str(),
        CodeGenerator::new("from-env").code_for(id, 0).as_deref()
    );
    assert_eq!(
        setting(&overridden, "short_code_secret").await,
        secret,
        "an env value is not stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_had_links_keeps_the_old_short_code_default() {
    let storage = Storage::new(Backend::Sqlite).await;
    let db = Database::connect(&storage.database_url).await.unwrap();
    // The schema as it was before deployment settings existed, with one link.
    Migrator::up(&db, Some(2)).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO urls (short_code, original_url, original_url_hash, is_active, created_at, updated_at) \
         VALUES ('old001', 'https://example.com/old', 1, true, '2025-01-01 00:00:00', '2025-01-01 00:00:00')",
    )
    .await
    .unwrap();
    db.close().await.unwrap();

    let app = TestApp::spawn_on(Backend::Sqlite, storage, |_| {}).await;
    assert_eq!(setting(&app, "short_code_secret").await, "curtain");
    let url = app.create_url("https://example.com/new").await;
    let id = url["id"].as_u64().unwrap();
    assert_eq!(
        url["short_code"].as_str(),
        CodeGenerator::new("curtain").code_for(id, 0).as_deref(),
        "new codes come from the secret the old ones were made with"
    );
}
