//! `users.email_key`: the email lower-cased by the API (Unicode-aware), so the
//! case-insensitive uniqueness check is exact on every backend (SQLite's `LOWER()` only folds
//! ASCII). Existing rows are backfilled with the database's `LOWER(email)`.

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
                    .table("users")
                    .add_column(string_len_null("email_key", 255))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared("UPDATE users SET email_key = LOWER(email)")
            .await?;
        db.execute_unprepared("DROP INDEX idx_users_email_lower")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_email_key")
                    .table("users")
                    .col("email_key")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_users_email_key")
                    .table("users")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .drop_column("email_key")
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("CREATE INDEX idx_users_email_lower ON users (LOWER(email))")
            .await?;
        Ok(())
    }
}
