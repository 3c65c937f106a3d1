//! The click batch each redirect event came in (`events.batch_id`, NULL for every other event
//! and for events stored before this migration). A counter rebuild reads it to mark, on the
//! shards, every batch whose events it counted, so that the batch's own counter update, if it
//! runs after the rebuild, is skipped instead of counted a second time.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    BatchId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(ColumnDef::new(Events::BatchId).string().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::BatchId)
                    .to_owned(),
            )
            .await
    }
}
