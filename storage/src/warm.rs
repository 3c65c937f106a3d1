//! Cache warming: the redirect targets of given links stored in the cache before their first
//! click. One code path for the api's in-process warm step (no `REDIS_URL`), the worker's
//! `warm_cache` job and its scheduled pass over the most-redirected links.
//!
//! Never old data: codes never change, so the codes are read first, then the versions of
//! their redirect entries, then the current rows; a write after the versions were read bumps
//! them, so what this stored is never read.

use chrono::Utc;
use entity::{event, url};
use sea_orm::sea_query::{Expr, Func, Order};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};

use crate::cache::{Cache, CacheKey};
use domain::{to_location, with_query_params};

/// The link's UTM parameters, in the usual order.
fn utm(row: &url::Model) -> Vec<(&'static str, &str)> {
    [
        ("utm_source", &row.utm_source),
        ("utm_medium", &row.utm_medium),
        ("utm_campaign", &row.utm_campaign),
        ("utm_term", &row.utm_term),
        ("utm_content", &row.utm_content),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    .collect()
}

/// What the redirect cache holds for an active code. The link options are left out of the
/// payload when they are the defaults, so a plain link's entry is what it always was. The
/// `location` carries the link's UTM parameters.
#[derive(Debug, Serialize, Deserialize)]
pub struct RedirectTarget {
    pub id: i64,
    pub location: String,
    /// The redirect's status when not 302.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The redirect's `Cache-Control`, if the link has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// Expiry, as Unix seconds: the link redirects before it, never from it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The redirects the link may serve (each one reserved before it answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_clicks: Option<i64>,
    /// Where the expired link redirects (as a valid `Location`); without it, 410.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_location: Option<String>,
    /// The argon2id hash of a password link's password: no redirect without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

impl RedirectTarget {
    #[must_use]
    pub fn of(row: &url::Model) -> Self {
        Self {
            id: row.id,
            location: with_query_params(&to_location(&row.original_url), &utm(row)),
            status: row
                .redirect_status
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| *s != 302),
            cache_control: row.cache_control.clone(),
            expires_at: row.expires_at.map(|t| t.and_utc().timestamp()),
            max_clicks: row.max_clicks,
            expired_location: row.expired_url.as_deref().map(to_location),
            password_hash: row.password_hash.clone(),
        }
    }

    /// True when the link may expire (by time or clicks): every redirect must check it, so
    /// it is never answered from a prepared response.
    #[must_use]
    pub fn may_expire(&self) -> bool {
        self.expires_at.is_some() || self.max_clicks.is_some()
    }

    /// True when each redirect needs more than the cached answer: a link that may expire, or
    /// one behind a password.
    #[must_use]
    pub fn needs_full_path(&self) -> bool {
        self.may_expire() || self.password_hash.is_some()
    }
}

/// Stores the redirect targets of the active links among `ids`; returns how many. Counts one
/// warm run in `curtain_cache_warm_jobs_total`.
pub async fn warm_links(db: &DatabaseConnection, cache: &Cache, ids: &[i64]) -> Result<u64, DbErr> {
    cache.metrics().warm_jobs.inc();
    if ids.is_empty() {
        return Ok(0);
    }
    let codes: Vec<(i64, String)> = url::Entity::find()
        .select_only()
        .column(url::Column::Id)
        .column(url::Column::ShortCode)
        .filter(url::Column::Id.is_in(ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    let keys: Vec<CacheKey> = codes
        .iter()
        .map(|(_, code)| CacheKey::Redirect(code.clone()))
        .collect();
    let Some(snapshots) = cache.snapshots(&keys).await else {
        return Ok(0);
    };
    let rows = url::Entity::find()
        .filter(url::Column::Id.is_in(codes.iter().map(|(id, _)| *id)))
        .filter(url::Column::IsActive.eq(true))
        .all(db)
        .await?;
    let mut stored = 0;
    for row in rows {
        let Some(at) = codes.iter().position(|(id, _)| *id == row.id) else {
            continue;
        };
        let Ok(payload) = serde_json::to_string(&RedirectTarget::of(&row)) else {
            continue;
        };
        cache.put(&snapshots[at], &keys[at], &payload).await;
        stored += 1;
    }
    cache.metrics().warmed_links.inc_by(stored);
    Ok(stored)
}

/// The `n` links with the most redirects in the last hour, most first.
pub async fn most_redirected(db: &DatabaseConnection, n: u64) -> Result<Vec<i64>, DbErr> {
    let since = (Utc::now() - chrono::Duration::hours(1)).naive_utc();
    let ids: Vec<Option<i64>> = event::Entity::find()
        .select_only()
        .column(event::Column::UrlId)
        .filter(event::Column::EventType.eq("redirect"))
        .filter(event::Column::Timestamp.gte(since))
        .filter(event::Column::UrlId.is_not_null())
        .group_by(event::Column::UrlId)
        .order_by(Func::count(Expr::col(event::Column::Id)), Order::Desc)
        .limit(n)
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().flatten().collect())
}

/// How this process warms after a write.
pub enum Warmer {
    /// `CACHE_WARM_ON_WRITE=false`.
    Off,
    /// No job queue (embedded default): warm in process before the write answers.
    InProcess,
    /// A `warm_cache` job for `curtain-worker`; in process if the queue refuses it.
    Queue(std::sync::Arc<jobs::JobQueue>),
}

impl Warmer {
    /// Warms the redirect of link `id` after a create or update; never fails the write.
    pub async fn after_write(&self, db: &DatabaseConnection, cache: &Cache, id: i64) {
        match self {
            Self::Off => {}
            Self::Queue(queue) => {
                let job = jobs::WarmLinks { url_ids: vec![id] };
                if let Err(e) = queue.push_job(&job).await {
                    tracing::warn!(error = %e, url.id = id, "warm_cache push failed; warming in process");
                    warm_in_process(db, cache, id).await;
                }
            }
            Self::InProcess => warm_in_process(db, cache, id).await,
        }
    }
}

async fn warm_in_process(db: &DatabaseConnection, cache: &Cache, id: i64) {
    if let Err(e) = warm_links(db, cache, &[id]).await {
        tracing::warn!(error = %e, url.id = id, "cache warming failed");
    }
}
