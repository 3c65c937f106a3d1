//! The stored keys: creation, listing, revocation and verification of a token.

use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use sha2::{Digest, Sha256};

use super::{CreatedKey, KeyInfo, Scope};

const TABLE: &str = "api_keys";

#[derive(FromQueryResult)]
struct Row {
    id: String,
    name: Option<String>,
    scopes: String,
    secret_hash: String,
    created_at: chrono::NaiveDateTime,
    revoked_at: Option<chrono::NaiveDateTime>,
}

impl Row {
    fn info(self) -> KeyInfo {
        KeyInfo {
            id: self.id,
            name: self.name,
            scopes: parse_scopes(&self.scopes),
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        }
    }
}

pub(super) fn parse_scopes(stored: &str) -> Vec<Scope> {
    stored
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

pub(super) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Equal strings, compared in time independent of where they differ.
pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The id part of `ck_<id>_<secret>`, if `token` has that shape.
pub(super) fn token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix("ck_")?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    (id.len() == 12 && hex(id) && secret.len() == 64 && hex(secret)).then_some(id)
}

fn select() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns([
            "id",
            "name",
            "scopes",
            "secret_hash",
            "created_at",
            "revoked_at",
        ])
        .from(TABLE)
        .to_owned()
}

/// Creates a key with `scopes` (at least one) and returns it with its token.
pub async fn create<C: ConnectionTrait>(
    db: &C,
    name: Option<&str>,
    scopes: &[Scope],
) -> Result<CreatedKey, DbErr> {
    if scopes.is_empty() {
        return Err(DbErr::Custom("a key needs at least one scope".to_owned()));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let token = format!("ck_{id}_{secret}");
    let created_at = chrono::Utc::now().naive_utc().with_nanosecond_zero();
    let joined = scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let insert = Query::insert()
        .into_table(TABLE)
        .columns(["id", "name", "scopes", "secret_hash", "created_at"])
        .values_panic([
            id.clone().into(),
            name.map(str::to_owned).into(),
            joined.into(),
            hash(&token).into(),
            created_at.into(),
        ])
        .to_owned();
    db.execute(&insert).await?;
    Ok(CreatedKey {
        info: KeyInfo {
            id,
            name: name.map(str::to_owned),
            scopes,
            created_at,
            revoked_at: None,
        },
        token,
    })
}

/// Every key, oldest first.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<KeyInfo>, DbErr> {
    let stmt = select()
        .order_by("created_at", Order::Asc)
        .order_by("id", Order::Asc)
        .to_owned();
    let rows = Row::find_by_statement(db.get_database_backend().build(&stmt))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(Row::info).collect())
}

/// Revokes key `id`; false if there is no such key or it was revoked already.
pub async fn revoke<C: ConnectionTrait>(db: &C, id: &str) -> Result<bool, DbErr> {
    let now = chrono::Utc::now().naive_utc().with_nanosecond_zero();
    let update = Query::update()
        .table(TABLE)
        .value("revoked_at", now)
        .and_where(Expr::col("id").eq(id))
        .and_where(Expr::col("revoked_at").is_null())
        .to_owned();
    Ok(db.execute(&update).await?.rows_affected() == 1)
}

/// The live key `token` names, or `None` when it is malformed, unknown, wrong or revoked.
pub async fn verify<C: ConnectionTrait>(db: &C, token: &str) -> Result<Option<KeyInfo>, DbErr> {
    let Some(id) = token_id(token) else {
        return Ok(None);
    };
    let stmt = select().and_where(Expr::col("id").eq(id)).to_owned();
    let row = Row::find_by_statement(db.get_database_backend().build(&stmt))
        .one(db)
        .await?;
    Ok(row
        .filter(|row| row.revoked_at.is_none() && same(&row.secret_hash, &hash(token)))
        .map(Row::info))
}

trait WholeSeconds {
    fn with_nanosecond_zero(self) -> Self;
}

impl WholeSeconds for chrono::NaiveDateTime {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}
