//! Per-link redirect answer: `urls.redirect_status` (301, 302, 307 or 308; NULL is the
//! contract's 302) and `urls.cache_control` (the redirect's `Cache-Control`; NULL sends none,
//! as redirects always did).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{small_integer_null, string_len_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for mut column in [
            small_integer_null("redirect_status"),
            string_len_null("cache_control", 255),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("urls")
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["redirect_status", "cache_control"] {
            manager
                .alter_table(Table::alter().table("urls").drop_column(name).to_owned())
                .await?;
        }
        Ok(())
    }
}
