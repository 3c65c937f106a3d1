//! Bot flagging of clicks: `events.is_bot` (true for a redirect whose user agent is a known
//! bot's, or a HEAD request; false for every other event and for events stored before), and
//! per rollup row the events of bots among its events (`bot_events`) and, for redirect rows
//! that have any, a HyperLogLog sketch of the visitors that are not bots (`human_visitors`;
//! NULL means the same as `visitors`). Reads that exclude bots subtract and use that sketch,
//! so they are exact before and after a rollup; the default reads do not look at them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, blob_null, boolean};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    IsBot,
}

#[derive(DeriveIden)]
enum EventRollupsHourly {
    Table,
}

#[derive(DeriveIden)]
enum EventRollupsDaily {
    Table,
}

#[derive(DeriveIden)]
enum Rollup {
    BotEvents,
    HumanVisitors,
}

fn rollups() -> [DynIden; 2] {
    [
        EventRollupsHourly::Table.into_iden(),
        EventRollupsDaily::Table.into_iden(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(boolean(Events::IsBot).default(false))
                    .to_owned(),
            )
            .await?;
        for table in rollups() {
            manager
                .alter_table(
                    Table::alter()
                        .table(table.clone())
                        .add_column(big_integer(Rollup::BotEvents).default(0))
                        .to_owned(),
                )
                .await?;
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(blob_null(Rollup::HumanVisitors))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in rollups() {
            for column in [Rollup::BotEvents, Rollup::HumanVisitors] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(table.clone())
                            .drop_column(column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::IsBot)
                    .to_owned(),
            )
            .await
    }
}
