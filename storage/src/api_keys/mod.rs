//! Optional API keys (`curtain-ops keys create`): a key is `ck_<id>_<secret>`, 244 random bits
//! of secret shown once at creation. Only its SHA-256 is stored (a salted slow hash such as
//! argon2 protects guessable passwords; a random 244-bit secret cannot be guessed, so a fast
//! hash loses nothing and keeps verification off the request's critical path).
//!
//! Scopes: `links:write` (create, update and delete users and links, bulk uploads),
//! `analytics:read` (the analytics endpoints, when they are guarded) and `admin` (`/metrics`,
//! `/debug/*`, `/admin/*`; it also grants every other scope).

mod authorize;
mod store;

use std::fmt;
use std::str::FromStr;

pub use authorize::{Refusal, authorize, presented};
pub use store::{create, list, revoke, verify};

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

#[cfg(test)]
mod tests;
