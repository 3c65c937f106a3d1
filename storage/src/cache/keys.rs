//! Cache keys and invalidations: what a payload is about ([`CacheKey`]) and the version keys
//! and tier keys a write makes stale ([`Invalidation`]).

use std::time::Duration;

use super::ANALYTICS_TTL;

/// What a cached payload is about.
#[derive(Debug, Clone)]
pub enum CacheKey {
    Url(i64),
    /// A link with its `details` (`?expand=details`): shown, and made stale, with its detail.
    UrlDetails(i64),
    UrlList {
        user_id: Option<i64>,
        is_active: Option<bool>,
        limit: u64,
        /// The other query parameters of the list (filters, expansions), in a canonical form;
        /// empty for the contract's parameters alone.
        extra: String,
    },
    Redirect(String),
    Analytics(i64),
}

impl CacheKey {
    /// The key without its version.
    pub(super) fn base(&self) -> String {
        match self {
            Self::Url(id) => format!("url:{id}"),
            Self::UrlDetails(id) => format!("url+details:{id}"),
            Self::UrlList {
                user_id,
                is_active,
                limit,
                extra,
            } if extra.is_empty() => format!("urls:{user_id:?}:{is_active:?}:{limit}"),
            Self::UrlList {
                user_id,
                is_active,
                limit,
                extra,
            } => format!("urls:{user_id:?}:{is_active:?}:{limit}:{extra}"),
            Self::Redirect(code) => format!("redirect:{code}"),
            Self::Analytics(id) => format!("analytics:{id}"),
        }
    }

    pub(super) fn version_key(&self) -> String {
        match self {
            Self::Url(id) | Self::UrlDetails(id) => format!("v:link:{id}"),
            Self::UrlList { .. } => "v:lists".to_owned(),
            Self::Redirect(code) => format!("v:code:{code}"),
            Self::Analytics(id) => format!("v:stats:{id}"),
        }
    }

    /// The key in the in-process tier: a redirect by its bare code (the hot path looks it up
    /// without building a string; codes hold no `:`), a list under the tier's list generation.
    pub(super) fn tier_key(&self, list_generation: u64) -> String {
        match self {
            Self::Redirect(code) => code.clone(),
            Self::UrlList { .. } => format!("{}@{list_generation}", self.base()),
            _ => self.base(),
        }
    }

    pub(super) fn ttl(&self, default: Duration) -> Duration {
        match self {
            Self::Analytics(_) => default.min(ANALYTICS_TTL),
            _ => default,
        }
    }
}

/// What a write made stale: exactly the payloads it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invalidation {
    pub(super) links: Vec<i64>,
    pub(super) codes: Vec<String>,
    pub(super) stats: Vec<i64>,
    pub(super) lists: bool,
}

impl Invalidation {
    /// A create, update or delete of one link: its detail, analytics (the write adds or
    /// removes events) and redirect, and every list (old and new owner's lists alike).
    #[must_use]
    pub fn link(id: i64, code: &str) -> Self {
        Self {
            links: vec![id],
            codes: vec![code.to_owned()],
            stats: vec![id],
            lists: true,
        }
    }

    /// Links whose owner changed (a user deleted): their details and every list. Their
    /// redirects show no owner and stay.
    #[must_use]
    pub fn owner_changed(ids: impl IntoIterator<Item = i64>) -> Self {
        Self {
            links: ids.into_iter().collect(),
            lists: true,
            ..Self::default()
        }
    }

    /// Links whose details changed without their redirect (a health check's time and
    /// error): their details and every list.
    #[must_use]
    pub fn details(ids: impl IntoIterator<Item = i64>) -> Self {
        Self::owner_changed(ids)
    }

    /// New events of these links (clicks, posted events): their analytics only.
    #[must_use]
    pub fn analytics(ids: &[i64]) -> Self {
        Self {
            stats: ids.to_vec(),
            ..Self::default()
        }
    }

    pub(super) fn merge(&mut self, other: Self) {
        self.links.extend(other.links);
        self.codes.extend(other.codes);
        self.stats.extend(other.stats);
        self.lists |= other.lists;
    }

    pub(super) fn version_keys(&self) -> Vec<String> {
        let links = self.links.iter().map(|id| CacheKey::Url(*id));
        let codes = self.codes.iter().map(|c| CacheKey::Redirect(c.clone()));
        let stats = self.stats.iter().map(|id| CacheKey::Analytics(*id));
        let mut keys: Vec<String> = links
            .chain(codes)
            .chain(stats)
            .map(|k| k.version_key())
            .collect();
        if self.lists {
            keys.push("v:lists".to_owned());
        }
        keys.sort();
        keys.dedup();
        keys
    }

    pub(super) fn tier_keys(&self) -> Vec<String> {
        let links = self
            .links
            .iter()
            .flat_map(|id| [CacheKey::Url(*id), CacheKey::UrlDetails(*id)]);
        let stats = self.stats.iter().map(|id| CacheKey::Analytics(*id));
        links
            .chain(stats)
            .map(|k| k.tier_key(0))
            .chain(self.codes.iter().cloned())
            .collect()
    }
}
