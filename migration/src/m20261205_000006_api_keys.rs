//! `api_keys`: optional API keys (`curtain-ops keys create`). Only a SHA-256 of each key is
//! kept (the key is 244 random bits, shown once), with its scopes and, once revoked, when.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{date_time, date_time_null, string_len, string_len_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("api_keys")
                    .col(string_len("id", 16).primary_key())
                    .col(string_len_null("name", 200))
                    .col(string_len("scopes", 200))
                    .col(string_len("secret_hash", 64))
                    .col(date_time("created_at"))
                    .col(date_time_null("revoked_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("api_keys").to_owned())
            .await
    }
}
