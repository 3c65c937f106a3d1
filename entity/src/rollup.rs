//! Analytics rollups (see the `m20261204_000004_rollups` migration): per link, UTC hour or
//! day and event type, the number of events, the newest one's time and, for redirects, a
//! HyperLogLog sketch of the visitors with its estimate. `rollup_pending` names the
//! (link, hour) pairs whose events changed since they were rolled up.

pub mod hourly {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_rollups_hourly")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub url_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub hour: DateTime,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_type: String,
        pub events: i64,
        pub latest_at: DateTime,
        pub unique_visitors: i64,
        pub visitors: Option<Vec<u8>>,
        pub raw_pruned: bool,
        /// Events of bots among `events`.
        pub bot_events: i64,
        /// Sketch of the visitors that are not bots; `None`: the same as `visitors`.
        pub human_visitors: Option<Vec<u8>>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod daily {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_rollups_daily")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub url_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: DateTime,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_type: String,
        pub events: i64,
        pub latest_at: DateTime,
        pub unique_visitors: i64,
        pub visitors: Option<Vec<u8>>,
        /// Events of bots among `events`.
        pub bot_events: i64,
        /// Sketch of the visitors that are not bots; `None`: the same as `visitors`.
        pub human_visitors: Option<Vec<u8>>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod pending {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rollup_pending")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub url_id: Option<i64>,
        pub hour: DateTime,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
