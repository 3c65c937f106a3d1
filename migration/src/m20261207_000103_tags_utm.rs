//! Tags and UTM parameters. `url_tags` holds one row per (link, tag), indexed by tag for
//! `GET /urls?tag=`; a link's rows go with it when it is deleted. `urls.utm_*` are the UTM
//! parameters its redirects add to the target's query string (NULL: not added).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string_len, string_len_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

pub const UTM: [&str; 5] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("url_tags")
                    .col(big_integer("url_id"))
                    .col(string_len("tag", 64))
                    .primary_key(Index::create().col("url_id").col("tag"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_url_tags_tag")
                    .table("url_tags")
                    .col("tag")
                    .col("url_id")
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite alters one thing at a time.
        for name in UTM {
            manager
                .alter_table(
                    Table::alter()
                        .table("urls")
                        .add_column(string_len_null(name, 255))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in UTM {
            manager
                .alter_table(Table::alter().table("urls").drop_column(name).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table("url_tags").to_owned())
            .await
    }
}
