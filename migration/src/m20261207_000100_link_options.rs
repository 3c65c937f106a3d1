//! Custom aliases: `urls.custom_code` marks a link whose code the client chose (it then lives
//! in `short_code` like any other, under the same unique index), and `urls.has_options` marks a
//! link created or changed with any link option. The contract's idempotent create only
//! returns links without options: a plain `POST /urls` never hands out someone's alias, an
//! expiring link or a link limited in clicks.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::boolean;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 2] = ["custom_code", "has_options"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for name in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table("urls")
                        .add_column(boolean(name).default(false))
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
