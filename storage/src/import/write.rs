//! Writing parsed rows: inserts that skip existing ids, and id sequences.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait};

const CHUNK: usize = 500;

/// Inserts rows, skipping ids that exist; returns how many were inserted. Call inside a
/// transaction to make the whole file atomic. `progress` is told after each chunk.
///
/// Rows with an explicit id go first; rows without one are inserted afterwards, with fresh
/// ids from a sequence advanced past every explicit id. (One multi-row `INSERT` cannot mix
/// them: the missing ids would be sent as `NULL`, which PostgreSQL refuses, and a sequence
/// still behind the explicit ids would hand out ids that then clash and are silently skipped.)
pub async fn insert_skipping_existing<E, A, C, P>(
    db: &C,
    rows: Vec<A>,
    mut progress: P,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E> + Send,
    C: ConnectionTrait,
    P: FnMut(u64),
{
    let (with_id, without_id): (Vec<A>, Vec<A>) = rows
        .into_iter()
        .partition(|row| row.get_primary_key_value().is_some());
    let mut inserted = insert_chunks(db, with_id, &mut progress).await?;
    if !without_id.is_empty() {
        advance_sequence(db, E::default().table_name()).await?;
        inserted += insert_chunks(db, without_id, &mut progress).await?;
    }
    Ok(inserted)
}

async fn insert_chunks<E, A, C, P>(db: &C, rows: Vec<A>, progress: &mut P) -> Result<u64, DbErr>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E> + Send,
    C: ConnectionTrait,
    P: FnMut(u64),
{
    let mut inserted = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(CHUNK).collect();
        let n = chunk.len() as u64;
        let pk = E::PrimaryKey::iter().map(sea_orm::PrimaryKeyToColumn::into_column);
        let result = E::insert_many(chunk)
            .on_conflict(OnConflict::columns(pk).do_nothing().to_owned())
            .exec_without_returning(db)
            .await?;
        inserted += result;
        progress(n);
    }
    Ok(inserted)
}

/// Moves a PostgreSQL id sequence past the largest id (SQLite's AUTOINCREMENT does this itself).
/// It only ever moves forward, like AUTOINCREMENT: ids handed out before (even of rows deleted
/// since) are never handed out again, and an empty table still starts at 1.
pub async fn advance_sequence<C: ConnectionTrait>(db: &C, table: &str) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared(&format!(
            "WITH s AS (SELECT pg_get_serial_sequence('{table}', 'id') AS seq), \
                  m AS (SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), \
                                        COALESCE(pg_sequence_last_value((SELECT seq FROM s)::regclass), 0)) AS v) \
             SELECT setval((SELECT seq FROM s), GREATEST((SELECT v FROM m), 1), (SELECT v FROM m) > 0)"
        ))
        .await?;
    }
    Ok(())
}

use sea_orm::Iterable;
