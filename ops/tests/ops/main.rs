//! `curtain-ops import` on SQLite and PostgreSQL with small fixtures in the seed's format.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use entity::prelude::{Event, Url, User};
use ops::import::{Report, import_dir};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, Database, DatabaseConnection, EntityTrait,
    PaginatorTrait,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fresh database: a SQLite file, or a PostgreSQL database created for this test.
async fn fresh_db(postgres: bool) -> (DatabaseConnection, Option<tempfile::TempDir>) {
    fresh_db_named(postgres).await.0
}

async fn fresh_db_named(
    postgres: bool,
) -> (
    (DatabaseConnection, Option<tempfile::TempDir>),
    Option<String>,
) {
    if postgres {
        let admin = std::env::var("CURTAIN_TEST_DATABASE_URL").expect("CURTAIN_TEST_DATABASE_URL");
        let name = format!("curtain_ops_{}", uuid_like());
        let conn = Database::connect(&admin).await.unwrap();
        conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let base = admin.rsplit_once('/').unwrap().0;
        (
            (
                storage::db::connect_db(&format!("{base}/{name}"), 2)
                    .await
                    .unwrap(),
                None,
            ),
            Some(name),
        )
    } else {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("ops.db").display());
        (
            (storage::db::connect_db(&url, 1).await.unwrap(), Some(dir)),
            None,
        )
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}{}", std::process::id())
}

async fn import_twice_then_create(postgres: bool) {
    let ((db, _dir), pg_name) = fresh_db_named(postgres).await;
    let first = import_dir(&db, &fixtures(), false).await.unwrap();
    assert_eq!(
        first,
        Report {
            users: 3,
            urls: 3,
            events: 4
        }
    );
    let second = import_dir(&db, &fixtures(), false).await.unwrap();
    assert_eq!(second, Report::default(), "a second import inserts nothing");
    assert_eq!(User::find().count(&db).await.unwrap(), 3);
    assert_eq!(Url::find().count(&db).await.unwrap(), 3);
    assert_eq!(Event::find().count(&db).await.unwrap(), 4);
    let link = Url::find_by_id(5).one(&db).await.unwrap().unwrap();
    assert_eq!(link.original_url, "https://example.org/パス");
    assert_eq!(link.user_id, None);
    let inactive = Url::find_by_id(2).one(&db).await.unwrap().unwrap();
    assert!(!inactive.is_active);
    assert_eq!(inactive.title, None);

    // Sequences were advanced past the imported ids: a new row gets the next id.
    let user = entity::user::ActiveModel {
        username: Set("new".into()),
        email: Set("new@x.io".into()),
        created_at: Set(domain::now()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    assert_eq!(user.id, 4);
    db.close().await.unwrap();
    if let Some(name) = pg_name {
        let admin = Database::connect(std::env::var("CURTAIN_TEST_DATABASE_URL").unwrap())
            .await
            .unwrap();
        admin
            .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn import_is_idempotent_and_advances_ids_on_sqlite() {
    import_twice_then_create(false).await;
}

#[tokio::test]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn import_is_idempotent_and_advances_ids_on_postgres() {
    import_twice_then_create(true).await;
}

#[tokio::test]
async fn a_bad_row_names_file_and_line_and_inserts_nothing() {
    let (db, dir) = fresh_db(false).await;
    let folder = dir.as_ref().unwrap().path().join("bad");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(
        folder.join("users.csv"),
        "id,username,email,created_at\n1,a,a@x.io,2025-01-01 00:00:00\n2,b,b@x.io,not-a-date\n",
    )
    .unwrap();
    let err = import_dir(&db, &folder, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("users.csv"), "{err}");
    assert!(
        err.contains("CSV row 3: invalid created_at 'not-a-date'"),
        "{err}"
    );
    assert_eq!(User::find().count(&db).await.unwrap(), 0);
}

#[tokio::test]
async fn a_javascript_target_names_file_and_line_and_inserts_nothing() {
    let (db, dir) = fresh_db(false).await;
    let folder = dir.as_ref().unwrap().path().join("xss");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("users.csv"), "id,username,email\n1,a,a@x.io\n").unwrap();
    std::fs::write(
        folder.join("urls.csv"),
        "id,user_id,short_code,original_url,title,is_active\n\
         1,1,aaaaaa,https://example.com/fine,Fine,True\n\
         2,1,bbbbbb,javascript:alert(document.cookie),Evil,True\n",
    )
    .unwrap();
    std::fs::write(folder.join("events.csv"), "id,url_id,user_id,event_type\n").unwrap();
    let err = import_dir(&db, &folder, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("urls.csv"), "{err}");
    assert!(
        err.contains(
            "CSV row 3: original_url 'javascript:alert(document.cookie)' must be an http(s) URL"
        ),
        "{err}"
    );
    assert_eq!(
        Url::find().count(&db).await.unwrap(),
        0,
        "nothing of urls.csv is written"
    );
}

/// `curtain-ops keys`: the key is printed once on stdout and works; only its id and scopes are
/// listed; a revoked key stops working; an unknown scope is refused by name.
#[tokio::test]
async fn keys_create_list_and_revoke_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("keys.db").display());
    let ops = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_curtain-ops"))
            .arg("--database-url")
            .arg(&url)
            .args(args)
            .output()
            .unwrap()
    };
    let created = ops(&[
        "keys",
        "create",
        "--scope",
        "links:write",
        "--scope",
        "analytics:read",
        "--name",
        "ci",
    ]);
    assert!(created.status.success(), "{created:?}");
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    assert!(
        token.starts_with("ck_") && token.len() == 3 + 12 + 1 + 64,
        "{token}"
    );
    let db = Database::connect(&url).await.unwrap();
    let key = storage::api_keys::verify(&db, &token)
        .await
        .unwrap()
        .expect("the printed key works");
    assert_eq!(key.name.as_deref(), Some("ci"));
    assert_eq!(
        key.scopes,
        [
            storage::api_keys::Scope::LinksWrite,
            storage::api_keys::Scope::AnalyticsRead
        ]
    );

    let listed = String::from_utf8(ops(&["keys", "list"]).stdout).unwrap();
    assert!(
        listed.starts_with(&format!("{}\tlinks:write,analytics:read\tci\t", key.id)),
        "{listed}"
    );
    assert!(listed.trim_end().ends_with("active"), "{listed}");
    assert!(!listed.contains(&token[16..]), "the secret is never listed");

    assert!(ops(&["keys", "revoke", &key.id]).status.success());
    assert!(
        storage::api_keys::verify(&db, &token)
            .await
            .unwrap()
            .is_none()
    );
    let again = ops(&["keys", "revoke", &key.id]);
    assert!(!again.status.success());

    let bad = ops(&["keys", "create", "--scope", "links:read"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope \"links:read\""));
}

/// `curtain-ops counters rebuild`: inline it writes what the events hold (totals, uniques) on
/// the shards and says so; without `--inline` it enqueues one job for the workers; a shard
/// that does not exist is refused.
#[tokio::test]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn counters_rebuild_through_the_binary() {
    let ((db, _dir), name) = fresh_db_named(true).await;
    import_dir(&db, &fixtures(), false).await.unwrap();
    // Redirects of d5DnL5 (link 1) by visitors a, a, b, and one of KZ6mAC (link 2).
    for (url_id, visitor) in [(1, "a"), (1, "a"), (1, "b"), (2, "c")] {
        db.execute_unprepared(&format!(
            "INSERT INTO events (url_id, event_type, timestamp, click_id, visitor_hash, batch_id) \
             VALUES ({url_id}, 'redirect', now() at time zone 'utc', '{}', '{visitor}', 'b1')",
            uuid_like() + visitor + &url_id.to_string() + &rand_suffix()
        ))
        .await
        .unwrap();
    }
    let admin = std::env::var("CURTAIN_TEST_DATABASE_URL").unwrap();
    let url = format!("{}/{}", admin.rsplit_once('/').unwrap().0, name.unwrap());
    let redis = std::env::var("CURTAIN_TEST_REDIS_URL").unwrap();
    let prefix = format!("opstest-{}", uuid_like());
    let queue = format!("{prefix}:counters");
    let ops = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_curtain-ops"))
            .arg("--database-url")
            .arg(&url)
            .args(args)
            .env("REDIS_URL", &redis)
            .env("CACHE_PREFIX", &prefix)
            .env("COUNTERS_QUEUE", &queue)
            .env_remove("REDIS_SHARDS")
            .output()
            .unwrap()
    };
    let inline = ops(&["counters", "rebuild", "--inline"]);
    assert!(inline.status.success(), "{inline:?}");
    let said = String::from_utf8(inline.stdout).unwrap();
    assert!(
        said.starts_with("rebuilt: 4 clicks, 2 links, 2 batches marked, 0 stale keys removed"),
        "{said}"
    );
    let deployment = storage::settings::deployment_id(&db).await.unwrap();
    let counters = storage::counters::Counters::for_deployment(
        std::slice::from_ref(&redis),
        &prefix,
        &deployment,
    )
    .unwrap();
    let now = chrono::Utc::now().naive_utc();
    let first = counters.read("d5DnL5", now).await;
    assert_eq!((first.total, first.unique_visitors), (3, 2), "{first:?}");
    assert_eq!(counters.read("KZ6mAC", now).await.total, 1);

    let enqueued = ops(&["counters", "rebuild", "--code", "d5DnL5"]);
    assert!(enqueued.status.success(), "{enqueued:?}");
    assert_eq!(
        String::from_utf8(enqueued.stdout).unwrap().trim(),
        format!("rebuild enqueued on {queue}")
    );
    let depth = jobs::JobQueue::connect(&redis, Some(&queue))
        .await
        .unwrap()
        .depth()
        .await
        .unwrap();
    assert_eq!(depth.ready, 1, "{depth:?}");

    let refused = ops(&["counters", "rebuild", "--inline", "--shard", "5"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("shard 5 does not exist (there are 1)"),
        "{refused:?}"
    );
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst).to_string()
}

/// `curtain-ops webhooks list-dead` and `replay`: a dead delivery listed, made pending by the
/// binary, then delivered by the relay (the one the worker and the embedded api run) to a real
/// receiver; a second replay finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_replay_through_the_binary_delivers_dead_deliveries() {
    use ::webhooks as delivery;
    use storage::webhooks;
    telemetry::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("hooks.db").display()
    );
    let db = storage::db::connect_db(&url, 1).await.unwrap();
    let receiver = delivery::receiver::Receiver::start().await.unwrap();
    let now = chrono::Utc::now().naive_utc();
    let hook = webhooks::create(
        &db,
        &receiver.url,
        &["link.created".to_owned()],
        "ops-test-secret-0123456789",
        now,
    )
    .await
    .unwrap();
    webhooks::record_link_event(&db, "link.created", &serde_json::json!({"id": 7}), now)
        .await
        .unwrap();
    db.execute_unprepared("UPDATE webhook_deliveries SET state = 'dead', attempts = 8, last_status = 500, last_error = 'HTTP 500: down'")
        .await
        .unwrap();
    let ops = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_curtain-ops"))
            .arg("--database-url")
            .arg(&url)
            .args(args)
            .output()
            .unwrap()
    };
    let listed = ops(&["webhooks", "list-dead"]);
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(
        listed.contains(&format!(
            "webhook {}\tlink.created\tattempts 8\tstatus 500\tHTTP 500: down",
            hook.id
        )),
        "{listed}"
    );

    let replayed = ops(&["webhooks", "replay", "--webhook", &hook.id.to_string()]);
    assert!(replayed.status.success(), "{replayed:?}");
    assert_eq!(
        String::from_utf8(replayed.stdout).unwrap().trim(),
        "replayed 1 dead deliveries"
    );

    let metrics = delivery::WebhookMetrics::register(&prometheus::Registry::new());
    let sender = delivery::Sender::new(
        delivery::Policy {
            base: std::time::Duration::ZERO,
            max_attempts: 3,
        },
        metrics.clone(),
    )
    .unwrap();
    let relay = tokio::spawn(delivery::relay_forever(
        db.clone(),
        delivery::Dispatch::in_process(std::sync::Arc::new(sender)),
        std::time::Duration::from_millis(50),
        std::time::Duration::from_hours(24),
        std::sync::Arc::new(tokio::sync::Notify::new()),
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while metrics.get("link.created", "delivered") < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the replayed delivery was not delivered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    relay.abort();
    let got = receiver.delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["data"], serde_json::json!({"id": 7}));
    let delivered =
        webhooks::deliveries(&db, hook.id, Some(webhooks::DeliveryState::Delivered), 10)
            .await
            .unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].attempts, 1);

    let again = ops(&["webhooks", "replay"]);
    assert_eq!(
        String::from_utf8(again.stdout).unwrap().trim(),
        "replayed 0 dead deliveries"
    );
}
