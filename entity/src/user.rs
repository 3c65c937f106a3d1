//! `users`: account owners of links and events. Email uniqueness is enforced by the API
//! (case-insensitive, on `email_key`), not by the schema, because the legacy data set holds
//! one duplicate.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub username: String,
    pub email: String,
    /// `email` lower-cased by the API: the key of the case-insensitive uniqueness check.
    pub email_key: Option<String>,
    pub created_at: DateTime,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
