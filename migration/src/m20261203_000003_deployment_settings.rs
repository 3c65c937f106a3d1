//! `deployment_settings`: values generated once per deployment and shared by every process
//! through the database (the visitor-hash salt, the short-code secret, the deployment id), so
//! they survive restarts and agree across replicas. The processes insert missing values at
//! start-up (insert-if-absent, then read: race-safe).
//!
//! Short codes are derived from link ids with the short-code secret, which used to default to
//! the public string `curtain`. A database that already holds links was made with that
//! default, so here it is persisted as the secret: existing codes stay consistent with the
//! codes of new links. (A deployment that set `SHORT_CODE_SECRET` keeps overriding it.) A
//! database without links gets a generated secret at the first start-up instead.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_len, text};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("deployment_settings")
                    .col(string_len("key", 64).primary_key())
                    .col(text("value"))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO deployment_settings (\"key\", \"value\") \
                 SELECT 'short_code_secret', 'curtain' WHERE EXISTS (SELECT 1 FROM urls)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("deployment_settings").to_owned())
            .await
    }
}
