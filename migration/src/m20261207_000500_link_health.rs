//! Link health checks: the options `urls.fallback_url` (where redirects go while the target is
//! broken; NULL: none), `urls.fallback_on_broken` (switch to it; default true) and
//! `urls.health_check` (opt-in; default false, so existing links are never probed), and the
//! state the checks keep on the same row: `health_status` (`unknown`, `healthy`, `broken`),
//! consecutive `health_failures`, `health_checked_at`, `health_last_error`,
//! `health_broken_since` (the start of the latest broken spell, kept after recovery for the
//! resolved alert) and `health_notified` (the status whose alert and cache switch were done:
//! a retried check repeats neither).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{boolean, date_time_null, integer, string_len, string_len_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 9] = [
    "fallback_url",
    "fallback_on_broken",
    "health_check",
    "health_status",
    "health_failures",
    "health_checked_at",
    "health_last_error",
    "health_broken_since",
    "health_notified",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for mut column in [
            string_len_null("fallback_url", 2048),
            boolean("fallback_on_broken").default(true).take(),
            boolean("health_check").default(false).take(),
            string_len("health_status", 16).default("unknown").take(),
            integer("health_failures").default(0).take(),
            date_time_null("health_checked_at"),
            string_len_null("health_last_error", 512),
            date_time_null("health_broken_since"),
            string_len_null("health_notified", 16),
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
        for name in COLUMNS {
            manager
                .alter_table(Table::alter().table("urls").drop_column(name).to_owned())
                .await?;
        }
        Ok(())
    }
}
