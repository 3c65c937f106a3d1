//! Schema migrations. The same migrations run on PostgreSQL and SQLite; every statement here is
//! built with sea-query or written in the SQL subset both understand.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_init;
mod m20261126_000002_user_email_key;
mod m20261203_000003_deployment_settings;
mod m20261204_000004_rollups;
mod m20261204_000005_counter_tombstones;
mod m20261205_000006_api_keys;
mod m20261205_000007_event_indexes;
mod m20261207_000008_event_batch_id;
mod m20261207_000100_link_options;
mod m20261207_000101_redirect_options;
mod m20261207_000102_link_expiry;
mod m20261207_000103_tags_utm;
mod m20261207_000200_bot_flag;
mod m20261207_000300_link_password;
mod m20261207_000400_webhooks;
mod m20261207_000500_link_health;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_init::Migration),
            Box::new(m20261126_000002_user_email_key::Migration),
            Box::new(m20261203_000003_deployment_settings::Migration),
            Box::new(m20261204_000004_rollups::Migration),
            Box::new(m20261204_000005_counter_tombstones::Migration),
            Box::new(m20261205_000006_api_keys::Migration),
            Box::new(m20261205_000007_event_indexes::Migration),
            Box::new(m20261207_000008_event_batch_id::Migration),
            Box::new(m20261207_000100_link_options::Migration),
            Box::new(m20261207_000101_redirect_options::Migration),
            Box::new(m20261207_000102_link_expiry::Migration),
            Box::new(m20261207_000103_tags_utm::Migration),
            Box::new(m20261207_000200_bot_flag::Migration),
            Box::new(m20261207_000300_link_password::Migration),
            Box::new(m20261207_000400_webhooks::Migration),
            Box::new(m20261207_000500_link_health::Migration),
        ]
    }
}
