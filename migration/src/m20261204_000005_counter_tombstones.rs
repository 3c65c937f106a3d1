//! `counter_tombstones`: the short codes of deleted links whose real-time counters are still to
//! be deleted from the counter shards. Written in the link's delete transaction, so a delete
//! can never leave counters behind for good; the worker (the api in the embedded default)
//! deletes the counters and then the row, retrying while a shard is unreachable.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_pk_auto, date_time, string_len};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("counter_tombstones")
                    .col(big_pk_auto("id"))
                    .col(string_len("short_code", 16))
                    .col(date_time("deleted_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("counter_tombstones").to_owned())
            .await
    }
}
