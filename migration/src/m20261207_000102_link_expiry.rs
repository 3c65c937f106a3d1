//! Link expiry: `urls.expires_at` (UTC; from then on the link is expired), `urls.max_clicks`
//! (the redirects it serves before it is expired; counted in Redis or in process, never by a
//! write per redirect) and `urls.expired_url` (where an expired link sends visitors; NULL
//! answers 410).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer_null, date_time_null, string_len_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for mut column in [
            date_time_null("expires_at"),
            big_integer_null("max_clicks"),
            string_len_null("expired_url", 2048),
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
        for name in ["expires_at", "max_clicks", "expired_url"] {
            manager
                .alter_table(Table::alter().table("urls").drop_column(name).to_owned())
                .await?;
        }
        Ok(())
    }
}
