//! Fewer index writes per click. Every redirect is an `events` row with `user_id` NULL and
//! `event_type` 'redirect', yet both columns had full indexes: each click paid two index
//! insertions no query used (a filter on `user_id = X` never matches NULL; a filter on
//! `event_type = 'redirect'` matches most of the table, where a scan wins anyway). They become
//! partial indexes over the rows they serve: events with a user, and the non-click events
//! (`GET /events?event_type=created` adds the literal `event_type <> 'redirect'` so both
//! PostgreSQL and SQLite pick the index).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: [&str; 4] = [
    "DROP INDEX idx_events_user_id",
    "CREATE INDEX idx_events_user_id_not_null ON events (user_id) WHERE user_id IS NOT NULL",
    "DROP INDEX idx_events_event_type",
    "CREATE INDEX idx_events_event_type_not_redirect ON events (event_type) \
     WHERE event_type <> 'redirect'",
];

const DOWN: [&str; 4] = [
    "DROP INDEX idx_events_event_type_not_redirect",
    "CREATE INDEX idx_events_event_type ON events (event_type)",
    "DROP INDEX idx_events_user_id_not_null",
    "CREATE INDEX idx_events_user_id ON events (user_id)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for sql in UP {
            manager.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for sql in DOWN {
            manager.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
