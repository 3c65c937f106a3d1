//! Deployment settings: secrets and identity generated once per deployment and kept in the
//! database (`deployment_settings`), so every process of the deployment, and every restart,
//! uses the same values. Without this the visitor-hash salt was random per process (unique
//! visitors inflated across restarts and replicas) and the short-code secret was a public
//! default.
//!
//! Each value is inserted if absent (`ON CONFLICT DO NOTHING`) and then read, so processes
//! starting at once agree on whichever value was inserted first. A value given in the
//! environment overrides the stored one and is not stored.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr};

const TABLE: &str = "deployment_settings";

/// The settings one process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSettings {
    /// Stable id of the deployment (all its processes share it).
    pub deployment_id: String,
    /// Key of the visitor hash (HMAC-SHA256 of the client address).
    pub visitor_hash_salt: String,
    /// Key of the short-code permutation.
    pub short_code_secret: String,
}

/// Values set in the environment, which win over the stored ones.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub visitor_hash_salt: Option<String>,
    pub short_code_secret: Option<String>,
}

/// 256 random bits as hex (two v4 UUIDs: 244 random bits).
fn secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The stored value of `key`, inserting `generated` first if there is none.
pub async fn get_or_insert<C: ConnectionTrait>(
    db: &C,
    key: &str,
    generated: String,
) -> Result<String, DbErr> {
    let insert = Query::insert()
        .into_table(TABLE)
        .columns(["key", "value"])
        .values_panic([key.into(), generated.into()])
        .on_conflict(OnConflict::column("key").do_nothing().to_owned())
        .to_owned();
    db.execute(&insert).await?;
    let select = Query::select()
        .column("value")
        .from(TABLE)
        .and_where(Expr::col("key").eq(key))
        .to_owned();
    db.query_one(&select)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("{TABLE}.{key}")))?
        .try_get::<String>("", "value")
}

/// The deployment's id, generated and stored by whichever process asks first.
pub async fn deployment_id<C: ConnectionTrait>(db: &C) -> Result<String, DbErr> {
    get_or_insert(db, "deployment_id", uuid::Uuid::new_v4().to_string()).await
}

/// Loads the deployment's settings, generating and storing the missing ones.
pub async fn load<C: ConnectionTrait>(
    db: &C,
    overrides: Overrides,
) -> Result<DeploymentSettings, DbErr> {
    let deployment_id = deployment_id(db).await?;
    let visitor_hash_salt = match overrides.visitor_hash_salt {
        Some(salt) => salt,
        None => get_or_insert(db, "visitor_hash_salt", secret()).await?,
    };
    let short_code_secret = match overrides.short_code_secret {
        Some(secret) => secret,
        None => get_or_insert(db, "short_code_secret", secret()).await?,
    };
    Ok(DeploymentSettings {
        deployment_id,
        visitor_hash_salt,
        short_code_secret,
    })
}
