//! Webhooks: `webhooks` (subscriptions: target URL, events, signing secret) and
//! `webhook_deliveries` (one row per event and subscription: the durable outbox the relay
//! delivers from, with attempts, the next attempt's time, the last answer, and the state
//! `pending`, `delivered` or `dead`, and the relay's claim count). Link events write their rows in the link's own
//! transaction; a click batch writes one row per subscription keyed on the batch
//! (`dedup_key`), so a batch ingested twice never makes two deliveries.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, date_time, date_time_null, integer, integer_null, string_len, text,
    text_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhooks")
                    .col(big_pk_auto("id"))
                    .col(string_len("url", 2048))
                    // Comma-separated event names (`link.created,link.clicked`).
                    .col(string_len("events", 255))
                    .col(string_len("secret", 128))
                    .col(date_time("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_deliveries")
                    .col(big_pk_auto("id"))
                    .col(big_integer("webhook_id"))
                    .col(string_len("event", 32))
                    .col(text("payload"))
                    .col(string_len("state", 16))
                    .col(integer("attempts"))
                    // Bumped by each claim of the relay; a job carries the claim it was made
                    // for, so a stale duplicate of an older claim posts nothing.
                    .col(integer("claims").default(0))
                    .col(date_time("next_attempt_at"))
                    .col(integer_null("last_status"))
                    .col(text_null("last_error"))
                    .col(string_len("dedup_key", 128))
                    .col(date_time("created_at"))
                    .col(date_time_null("delivered_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_dedup")
                    .table("webhook_deliveries")
                    .col("webhook_id")
                    .col("dedup_key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_due")
                    .table("webhook_deliveries")
                    .col("state")
                    .col("next_attempt_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("webhook_deliveries").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("webhooks").to_owned())
            .await
    }
}
