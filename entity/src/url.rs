//! `urls`: one short link. `original_url_hash` is a 64-bit hash of `original_url`, indexed so
//! that the idempotent create can find an existing mapping without indexing 2 KiB strings.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "urls")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: Option<i64>,
    #[sea_orm(unique)]
    pub short_code: String,
    pub original_url: String,
    pub original_url_hash: i64,
    pub title: Option<String>,
    pub is_active: bool,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    /// The client chose `short_code` (a custom alias) rather than Curtain deriving it.
    pub custom_code: bool,
    /// Created or changed with any link option (custom alias, redirect status, expiry, tags,
    /// UTM): the contract's idempotent create only returns links without.
    pub has_options: bool,
    /// The redirect's status: 301, 302, 307 or 308; NULL is 302.
    pub redirect_status: Option<i16>,
    /// The redirect's `Cache-Control`; NULL sends none.
    pub cache_control: Option<String>,
    /// From this UTC time on, the link is expired.
    pub expires_at: Option<DateTime>,
    /// The link is expired once it has served this many redirects.
    pub max_clicks: Option<i64>,
    /// Where an expired link redirects; NULL answers 410.
    pub expired_url: Option<String>,
    /// UTM parameters the redirect adds to the target's query string (NULL: not added).
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    /// The argon2id hash (PHC string) of the link's password; NULL: the link is open.
    pub password_hash: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
