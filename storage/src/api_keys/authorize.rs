//! Guarding a request: the key it presents, and whether that key grants the scope.

use sea_orm::ConnectionTrait;

use super::{KeyInfo, Scope, verify};

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
