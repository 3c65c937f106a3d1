//! Analytics rollups: per link, event type and UTC hour (and day), the number of events, the
//! newest event's time and, for redirects, a HyperLogLog sketch of the visitors, so analytics
//! costs the same for a link with a million clicks as for one with ten.
//!
//! `rollup_pending` names the (link, hour) pairs whose events changed since they were rolled
//! up. A trigger on `events` writes it in the same transaction as the events, whichever path
//! inserted them (click ingestion, `POST /events`, link writes, imports, hand-written SQL), so
//! no event can reach the table without its hour being marked. The rollup job recomputes a
//! marked hour from the events and deletes only the marks it read: a mark written while it
//! ran stays for the next run. Existing events are marked here, so the first run rolls up
//! history.
//!
//! The `(url_id, event_type)` index becomes `(url_id, timestamp)`: the open hour and the
//! recomputation of one marked hour read a link's events by time.

use sea_orm::DatabaseBackend;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, blob_null, boolean, date_time, string_len,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn rollup_table(name: &'static str, bucket: &'static str) -> TableCreateStatement {
    let mut table = Table::create();
    if bucket == "hour" {
        // The raw redirect events this row summarises were deleted (`EVENT_RETENTION_DAYS`):
        // late events of its hour are added to it instead of recomputing it.
        table.col(boolean("raw_pruned").default(false));
    }
    table
        .table(name)
        .col(big_integer("url_id"))
        .col(date_time(bucket))
        .col(string_len("event_type", 64))
        .col(big_integer("events"))
        .col(date_time("latest_at"))
        .col(big_integer("unique_visitors"))
        .col(blob_null("visitors"))
        .primary_key(Index::create().col("url_id").col(bucket).col("event_type"))
        .foreign_key(
            ForeignKey::create()
                .name(format!("fk_{name}_url_id"))
                .from(name, "url_id")
                .to("urls", "id")
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

const PG_TRIGGER: &str = r"
CREATE FUNCTION curtain_mark_rollup_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rollup_pending (url_id, hour)
  SELECT DISTINCT url_id, date_trunc('hour', timestamp) FROM new_events WHERE url_id IS NOT NULL;
  RETURN NULL;
END $$;
CREATE TRIGGER events_mark_rollup_pending AFTER INSERT ON events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION curtain_mark_rollup_pending();
INSERT INTO rollup_pending (url_id, hour)
  SELECT DISTINCT url_id, date_trunc('hour', timestamp) FROM events WHERE url_id IS NOT NULL;
";

// SQLite has row triggers only: one mark per event (the rollup job deletes them each run).
const SQLITE_TRIGGER: &str = r"
CREATE TRIGGER events_mark_rollup_pending AFTER INSERT ON events
  WHEN NEW.url_id IS NOT NULL
BEGIN
  INSERT INTO rollup_pending (url_id, hour)
  VALUES (NEW.url_id, strftime('%Y-%m-%d %H:00:00', NEW.timestamp));
END;
INSERT INTO rollup_pending (url_id, hour)
  SELECT DISTINCT url_id, strftime('%Y-%m-%d %H:00:00', timestamp) FROM events
  WHERE url_id IS NOT NULL;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(rollup_table("event_rollups_hourly", "hour"))
            .await?;
        manager
            .create_table(rollup_table("event_rollups_daily", "day"))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("rollup_pending")
                    .col(big_pk_auto("id"))
                    .col(big_integer_null("url_id"))
                    .col(date_time("hour"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rollup_pending_url_id_hour")
                    .table("rollup_pending")
                    .col("url_id")
                    .col("hour")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rollup_pending_hour")
                    .table("rollup_pending")
                    .col("hour")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_url_id_timestamp")
                    .table("events")
                    .col("url_id")
                    .col("timestamp")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_events_url_id_event_type")
                    .table("events")
                    .to_owned(),
            )
            .await?;
        let sql = match manager.get_database_backend() {
            DatabaseBackend::Sqlite => SQLITE_TRIGGER,
            _ => PG_TRIGGER,
        };
        manager.get_connection().execute_unprepared(sql).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Sqlite => {
                db.execute_unprepared("DROP TRIGGER events_mark_rollup_pending")
                    .await?;
            }
            _ => {
                db.execute_unprepared(
                    "DROP TRIGGER events_mark_rollup_pending ON events; \
                     DROP FUNCTION curtain_mark_rollup_pending();",
                )
                .await?;
            }
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_events_url_id_event_type")
                    .table("events")
                    .col("url_id")
                    .col("event_type")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_events_url_id_timestamp")
                    .table("events")
                    .to_owned(),
            )
            .await?;
        for table in [
            "rollup_pending",
            "event_rollups_daily",
            "event_rollups_hourly",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
