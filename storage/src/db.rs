//! The database connection: connected, tuned (SQLite: WAL, busy timeout, foreign keys) and
//! migrated, with migrations serialised across processes starting at once (PostgreSQL).

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, TransactionTrait,
};

/// Connects to the database and brings its schema up to date.
pub async fn connect_db(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(max_connections).sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    if db.get_database_backend() == DbBackend::Sqlite {
        // WAL lets readers run beside the writer; the busy timeout rides out short locks.
        db.execute_unprepared(
            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;",
        )
        .await?;
    }
    if db.get_database_backend() == DbBackend::Postgres {
        // Several processes (api replicas, workers) may start at once: serialise migrations
        // with a transaction-scoped advisory lock held while they run.
        let lock = db.begin().await?;
        lock.execute_unprepared("SELECT pg_advisory_xact_lock(7261616)")
            .await?;
        Migrator::up(&db, None)
            .await
            .context("running migrations")?;
        lock.commit().await?;
    } else {
        Migrator::up(&db, None)
            .await
            .context("running migrations")?;
    }
    Ok(db)
}

/// The URL without its password, for logs.
#[must_use]
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}
