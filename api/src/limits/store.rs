//! The budgets and where their state lives: in process, or on Redis shared by every instance.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

use super::gcra::GCRA;
use super::{Class, Decision, gcra};

/// One budget: `limit` requests per minute per client.
pub(super) struct Budget {
    pub(super) class: Class,
    pub(super) limit: u64,
    interval_ms: u64,
}

enum Store {
    Memory {
        started: Instant,
        tats: quick_cache::sync::Cache<(Class, IpAddr), Arc<Mutex<u64>>>,
    },
    Redis {
        conn: ConnectionManager,
        prefix: String,
        script: redis::Script,
    },
}

pub struct RateLimits {
    pub(super) budgets: Vec<Budget>,
    store: Store,
    pub(super) trusted_proxy: Option<IpAddr>,
    pub(super) metrics: crate::metrics::LimitMetrics,
}

/// How long the limiter may wait for Redis before letting the request through.
const REDIS_BUDGET: Duration = Duration::from_millis(200);

impl RateLimits {
    /// `None` when both limits are 0 (off).
    pub async fn build(
        config: &crate::Config,
        metrics: crate::metrics::LimitMetrics,
    ) -> anyhow::Result<Option<Self>> {
        let budgets: Vec<Budget> = [
            (Class::Write, config.rate_limit_writes_per_minute),
            (Class::Bulk, config.rate_limit_bulk_per_minute),
        ]
        .into_iter()
        .filter(|(_, limit)| *limit > 0)
        .map(|(class, limit)| Budget {
            class,
            limit,
            interval_ms: (60_000 / limit).max(1),
        })
        .collect();
        if budgets.is_empty() {
            return Ok(None);
        }
        let redis_url = config
            .rate_limit_redis_url
            .as_ref()
            .or(config.common.cache_redis_url.as_ref())
            .or(config.redis_url.as_ref());
        let store = match redis_url {
            Some(url) => {
                let client = redis::Client::open(url.as_str())?;
                let conn_config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_BUDGET))
                    .set_response_timeout(Some(REDIS_BUDGET))
                    .set_number_of_retries(0);
                Store::Redis {
                    conn: ConnectionManager::new_lazy_with_config(client, conn_config)?,
                    prefix: format!("{}:ratelimit:", config.common.cache_prefix),
                    script: redis::Script::new(GCRA),
                }
            }
            None => Store::Memory {
                started: Instant::now(),
                tats: quick_cache::sync::Cache::new(100_000),
            },
        };
        Ok(Some(Self {
            budgets,
            store,
            trusted_proxy: config.trusted_proxy,
            metrics,
        }))
    }

    pub(super) async fn check(&self, budget: &Budget, client: IpAddr) -> Option<Decision> {
        match &self.store {
            Store::Memory { started, tats } => {
                let now = started.elapsed().as_millis() as u64;
                let cell = tats.get_or_insert_with(&(budget.class, client), || {
                    Ok::<_, std::convert::Infallible>(Arc::new(Mutex::new(0)))
                });
                let Ok(cell) = cell;
                let mut tat = cell
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let stored = (*tat > 0).then_some(*tat);
                let (decision, new_tat) = gcra(stored, now, budget.interval_ms, budget.limit);
                *tat = new_tat;
                Some(decision)
            }
            Store::Redis {
                conn,
                prefix,
                script,
            } => {
                let mut conn = conn.clone();
                let key = format!("{prefix}{}:{client}", budget.class.name());
                let mut invocation = script.key(key);
                invocation.arg(budget.interval_ms).arg(budget.limit);
                let call = invocation.invoke_async::<(u64, u64, u64, u64)>(&mut conn);
                match tokio::time::timeout(REDIS_BUDGET, call).await {
                    Ok(Ok((allowed, remaining, retry_ms, reset_ms))) => Some(Decision {
                        allowed: allowed == 1,
                        remaining,
                        retry_ms,
                        reset_ms,
                    }),
                    outcome => {
                        tracing::warn!(?outcome, "rate limiter unavailable; request let through");
                        self.metrics.unavailable.inc();
                        None
                    }
                }
            }
        }
    }
}
