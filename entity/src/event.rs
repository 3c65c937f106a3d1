//! `events`: the audit and click log. `click_id` is unique so that at-least-once click
//! delivery inserts each click exactly once (`ON CONFLICT (click_id) DO NOTHING`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub url_id: Option<i64>,
    pub user_id: Option<i64>,
    pub event_type: String,
    pub timestamp: DateTime,
    pub details: Option<Json>,
    #[sea_orm(unique)]
    pub click_id: Option<String>,
    pub visitor_hash: Option<String>,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
    /// The click batch a redirect event came in (a counter rebuild marks it as counted).
    pub batch_id: Option<String>,
    /// A redirect by a known bot (user agent) or a HEAD request; false for every other event.
    pub is_bot: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
