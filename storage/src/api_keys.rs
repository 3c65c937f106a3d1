//! Optional API keys (`curtain-ops keys create`): a key is `ck_<id>_<secret>`, 244 random bits
//! of secret shown once at creation. Only its SHA-256 is stored (a salted slow hash such as
//! argon2 protects guessable passwords; a random 244-bit secret cannot be guessed, so a fast
//! hash loses nothing and keeps verification off the request's critical path).
//!
//! Scopes: `links:write` (create, update and delete users and links, bulk uploads),
//! `analytics:read` (the analytics endpoints, when they are guarded) and `admin` (`/metrics`,
//! `/debug/*`, `/admin/*`; it also grants every other scope).

use std::fmt;
use std::str::FromStr;

use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use sha2::{Digest, Sha256};

const TABLE: &str = "api_keys";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    LinksWrite,
    AnalyticsRead,
    Admin,
}

impl Scope {
    pub const ALL: [Self; 3] = [Self::LinksWrite, Self::AnalyticsRead, Self::Admin];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinksWrite => "links:write",
            Self::AnalyticsRead => "analytics:read",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                format!("unknown scope {s:?}: expected links:write, analytics:read or admin")
            })
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub name: Option<String>,
    pub scopes: Vec<Scope>,
    pub created_at: chrono::NaiveDateTime,
    pub revoked_at: Option<chrono::NaiveDateTime>,
}

impl KeyInfo {
    /// Whether the key grants `scope` (`admin` grants every scope).
    #[must_use]
    pub fn grants(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

/// A key just created: `token` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub info: KeyInfo,
    pub token: String,
}

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

fn parse_scopes(stored: &str) -> Vec<Scope> {
    stored
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn hash(token: &str) -> String {
    use std::fmt::Write;
    Sha256::digest(token.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// Equal strings, compared in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The id part of `ck_<id>_<secret>`, if `token` has that shape.
fn token_id(token: &str) -> Option<&str> {
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

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No key was sent (401).
    Missing(Scope),
    /// Unknown, wrong or revoked (401).
    Invalid,
    /// Valid, without the scope (403).
    Forbidden(Scope),
    /// The keys could not be read (503).
    Unavailable,
}

impl Refusal {
    /// The HTTP status of the refusal.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::Missing(_) | Self::Invalid => 401,
            Self::Forbidden(_) => 403,
            Self::Unavailable => 503,
        }
    }

    /// The message of the error envelope.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::Missing(scope) => format!(
                "API key required (scope {scope}): send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            ),
            Self::Invalid => "Invalid or revoked API key".to_owned(),
            Self::Forbidden(scope) => format!("This API key lacks the {scope} scope"),
            Self::Unavailable => "API keys cannot be checked right now; retry shortly".to_owned(),
        }
    }
}

/// The key sent in `X-API-Key`, else as `Authorization: Bearer`, from header values.
#[must_use]
pub fn presented<'a>(
    x_api_key: Option<&'a str>,
    authorization: Option<&'a str>,
) -> Option<&'a str> {
    x_api_key.map(str::trim).or_else(|| {
        authorization
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
    })
}

/// Checks that `token` names a live key granting `scope`.
pub async fn authorize<C: ConnectionTrait>(
    db: &C,
    token: Option<&str>,
    scope: Scope,
) -> Result<KeyInfo, Refusal> {
    let token = token.ok_or(Refusal::Missing(scope))?;
    let key = match verify(db, token).await {
        Ok(Some(key)) => key,
        Ok(None) => return Err(Refusal::Invalid),
        Err(e) => {
            tracing::error!(error = %e, "API key lookup failed");
            return Err(Refusal::Unavailable);
        }
    };
    if key.grants(scope) {
        Ok(key)
    } else {
        Err(Refusal::Forbidden(scope))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print_the_documented_names() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
        assert!("links:read".parse::<Scope>().is_err());
        assert_eq!(
            parse_scopes("analytics:read,links:write"),
            vec![Scope::AnalyticsRead, Scope::LinksWrite]
        );
    }

    #[test]
    fn admin_grants_every_scope_and_others_only_their_own() {
        let key = |scopes: Vec<Scope>| KeyInfo {
            id: "x".into(),
            name: None,
            scopes,
            created_at: chrono::NaiveDateTime::default(),
            revoked_at: None,
        };
        let admin = key(vec![Scope::Admin]);
        assert!(Scope::ALL.iter().all(|s| admin.grants(*s)));
        let writer = key(vec![Scope::LinksWrite]);
        assert!(writer.grants(Scope::LinksWrite));
        assert!(!writer.grants(Scope::AnalyticsRead));
        assert!(!writer.grants(Scope::Admin));
    }

    #[test]
    fn only_well_formed_tokens_name_an_id() {
        let secret = "a".repeat(64);
        assert_eq!(
            token_id(&format!("ck_0123456789ab_{secret}")),
            Some("0123456789ab")
        );
        assert_eq!(token_id(&format!("ck_0123456789a_{secret}")), None);
        assert_eq!(token_id(&format!("xx_0123456789ab_{secret}")), None);
        assert_eq!(token_id("ck_0123456789ab_zz"), None);
        assert_eq!(token_id(""), None);
    }

    #[test]
    fn the_stored_hash_is_sha256_hex_and_compares_exactly() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(same(&hash("abc"), &hash("abc")));
        assert!(!same(&hash("abc"), &hash("abd")));
        assert!(!same("ab", "abc"));
    }
}
