//! Click limits (`max_clicks`): each redirect of a limited link reserves one click before it
//! answers, atomically across every api instance and without a database write per redirect.
//!
//! With Redis (`CACHE_REDIS_URL`, else `REDIS_URL`) the count of a link lives under
//! `<CACHE_PREFIX>:clicklimit:<id>` and one Lua script compares and increments it, so the
//! counter is exactly the number of redirects served and raising `max_clicks` later lets the
//! link serve the difference. In the embedded default it is an atomic in this process. Either
//! starts, the first time a link is limited (or after Redis lost the key), from the link's
//! `redirect` events, so a restart does not hand out its clicks again. A store that fails
//! refuses the redirect (503): a limit is never exceeded because Redis was away.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;
use tokio::sync::OnceCell;

/// Compare-and-increment. KEYS[1] the counter; ARGV[1] the limit; ARGV[2] the count to start
/// from when the key is missing ('' to ask first). Returns 1 (reserved), 0 (limit reached) or
/// -1 (missing: call again with a starting count).
const RESERVE: &str = r"
local n = redis.call('GET', KEYS[1])
if not n then
  if ARGV[2] == '' then return -1 end
  redis.call('SET', KEYS[1], ARGV[2], 'NX')
  n = redis.call('GET', KEYS[1])
end
if tonumber(n) >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
return 1
";

/// How long a redirect waits for Redis.
const REDIS_BUDGET: Duration = Duration::from_secs(1);

/// Why a click could not be reserved or refused.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("click limit store: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("click limit store did not answer in time")]
    Timeout,
    #[error("counting the link's clicks: {0}")]
    Db(#[from] sea_orm::DbErr),
}

type Slot = Arc<OnceCell<AtomicI64>>;

pub enum ClickLimits {
    Memory {
        db: DatabaseConnection,
        counts: Mutex<HashMap<i64, Slot>>,
    },
    Redis {
        db: DatabaseConnection,
        conn: ConnectionManager,
        prefix: String,
        script: redis::Script,
    },
}

impl ClickLimits {
    /// Redis when the deployment has one (`CACHE_REDIS_URL`, else `REDIS_URL`), else in process.
    pub fn for_config(config: &crate::Config, db: &DatabaseConnection) -> redis::RedisResult<Self> {
        match config
            .common
            .cache_redis_url
            .as_ref()
            .or(config.redis_url.as_ref())
        {
            Some(url) => Self::redis(db.clone(), url, &config.common.cache_prefix),
            None => Ok(Self::memory(db.clone())),
        }
    }

    #[must_use]
    pub fn memory(db: DatabaseConnection) -> Self {
        Self::Memory {
            db,
            counts: Mutex::default(),
        }
    }

    pub fn redis(db: DatabaseConnection, url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_BUDGET))
            .set_response_timeout(Some(REDIS_BUDGET))
            .set_number_of_retries(1);
        Ok(Self::Redis {
            db,
            conn: ConnectionManager::new_lazy_with_config(client, config)?,
            prefix: format!("{prefix}:clicklimit:"),
            script: redis::Script::new(RESERVE),
        })
    }

    /// Reserves one click of link `id` limited to `max`: `true` when it may redirect.
    pub async fn reserve(&self, id: i64, max: i64) -> Result<bool, LimitError> {
        match self {
            Self::Memory { db, counts } => {
                let slot = {
                    let mut counts = counts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    counts.entry(id).or_default().clone()
                };
                let used = slot
                    .get_or_try_init(|| async { served(db, id).await.map(AtomicI64::new) })
                    .await?;
                Ok(used
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < max).then_some(n + 1)
                    })
                    .is_ok())
            }
            Self::Redis {
                db,
                conn,
                prefix,
                script,
            } => {
                let key = format!("{prefix}{id}");
                let run = |start: String| {
                    let mut invocation = script.key(&key);
                    invocation.arg(max).arg(start);
                    let mut conn = conn.clone();
                    async move {
                        tokio::time::timeout(
                            REDIS_BUDGET,
                            invocation.invoke_async::<i64>(&mut conn),
                        )
                        .await
                        .map_err(|_| LimitError::Timeout)?
                        .map_err(LimitError::from)
                    }
                };
                let mut answer = run(String::new()).await?;
                if answer < 0 {
                    answer = run(served(db, id).await?.to_string()).await?;
                }
                Ok(answer == 1)
            }
        }
    }

    /// Forgets the count of a deleted link (an id SQLite may give again starts afresh).
    pub async fn forget(&self, id: i64) {
        match self {
            Self::Memory { counts, .. } => {
                counts
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&id);
            }
            Self::Redis { conn, prefix, .. } => {
                let mut conn = conn.clone();
                let mut cmd = redis::cmd("DEL");
                cmd.arg(format!("{prefix}{id}"));
                let del = cmd.query_async::<i64>(&mut conn);
                if let Err(e) = tokio::time::timeout(REDIS_BUDGET, del)
                    .await
                    .map_err(|_| LimitError::Timeout)
                    .and_then(|r| r.map_err(LimitError::from))
                {
                    tracing::warn!(error = %e, url.id = id, "could not delete a click-limit counter");
                }
            }
        }
    }
}

/// The redirects link `id` has served, from its events (rolled up or raw).
async fn served(db: &DatabaseConnection, id: i64) -> Result<i64, sea_orm::DbErr> {
    let totals = storage::rollup::totals(db, id, domain::now()).await?;
    Ok(totals
        .get("redirect")
        .map_or(0, |t| i64::try_from(t.events).unwrap_or(i64::MAX)))
}
