//! The same migrations run up, down and up again on SQLite and PostgreSQL.

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database};

use crate::helpers::{Backend, Storage};

async fn up_down_up(backend: Backend) {
    let storage = Storage::new(backend).await;
    let db = Database::connect(&storage.database_url).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    db.execute_unprepared("INSERT INTO users (username, email, created_at) VALUES ('a', 'a@b.co', '2025-01-01 00:00:00')")
        .await
        .unwrap();
    Migrator::down(&db, None).await.unwrap();
    assert!(
        db.execute_unprepared("SELECT 1 FROM users").await.is_err(),
        "users table should be gone"
    );
    Migrator::up(&db, None).await.unwrap();
    let status = Migrator::get_pending_migrations(&db).await.unwrap();
    assert!(status.is_empty());
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_up_down_up_on_sqlite() {
    up_down_up(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(curtain_services),
    ignore = "needs PostgreSQL and Redis: build with CURTAIN_TEST_DATABASE_URL and CURTAIN_TEST_REDIS_URL set"
)]
async fn migrations_run_up_down_up_on_postgres() {
    up_down_up(Backend::Postgres).await;
}
