//! Password links: `urls.password_hash`, the argon2id hash of the link's password in PHC
//! string form (NULL: the link is open). The password itself is never stored.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::string_len_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("urls")
                    .add_column(string_len_null("password_hash", 255))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("urls")
                    .drop_column("password_hash")
                    .to_owned(),
            )
            .await
    }
}
