//! Password links: the argon2id hash a link stores, the check of a presented password, and the
//! limit on wrong attempts per (client, link).
//!
//! Rules:
//! - Only the hash is stored (argon2id with the crate's defaults, the OWASP minimum: 19 MiB,
//!   2 passes), as a PHC string that carries its own salt and parameters.
//! - Hashing and verifying run on the blocking pool, at most [`VERIFY_SLOTS`] per CPU at once,
//!   so a flood of attempts queues instead of taking every runtime thread.
//! - Each attempt first takes one of the client's `LINK_PASSWORD_ATTEMPTS` for the link in the
//!   current window (`LINK_PASSWORD_WINDOW_SECONDS`), atomically, before the hash is checked: a
//!   spent budget answers 429 whatever the password, and parallel guesses cannot slip past it.
//!   A right password gives the budget back. The budget lives in Redis when the deployment has
//!   one (shared by every api instance), else in process; a Redis that fails falls back to the
//!   process' own budget rather than lifting the limit or locking everybody out.
//! - Clients are told apart by the visitor hash (a keyed hash of the address), never the raw
//!   address.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use prometheus::{IntCounterVec, Opts, Registry};
use redis::aio::ConnectionManager;
use tokio::sync::Semaphore;

/// Concurrent hash computations per CPU.
pub const VERIFY_SLOTS: usize = 2;
/// Longest password, in characters.
pub const MAX_PASSWORD: usize = 128;
/// How long an attempt waits for the Redis budget before it uses the process' own.
const REDIS_BUDGET: Duration = Duration::from_millis(300);

/// Takes one attempt: KEYS[1] the budget; ARGV[1] the attempts per window; ARGV[2] the window
/// in ms. Returns the attempts used (taken), or minus the ms left in the window (spent).
const TAKE: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then
  local left = redis.call('PTTL', KEYS[1])
  if left < 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    left = tonumber(ARGV[2])
  end
  return -left
end
return n
";

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Wrong,
    /// The client spent its attempts at this link: retry after this many seconds.
    Limited(u64),
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Wrong => "wrong",
            Self::Limited(_) => "limited",
        }
    }
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("password hashing task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The argon2id PHC string of `password`, computed on the blocking pool.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await?
}

/// Checks presented passwords against link hashes, within each client's attempt budget.
pub struct LinkPasswords {
    slots: Arc<Semaphore>,
    budget: AttemptBudget,
    attempts: IntCounterVec,
}

impl LinkPasswords {
    /// `redis`: the deployment's Redis for shared budgets (`CACHE_REDIS_URL`, else `REDIS_URL`).
    pub fn new(
        redis: Option<(&str, &str)>,
        attempts: u32,
        window: Duration,
        registry: &Registry,
    ) -> redis::RedisResult<Self> {
        let shared = match redis {
            Some((url, prefix)) => {
                let client = redis::Client::open(url)?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_BUDGET))
                    .set_response_timeout(Some(REDIS_BUDGET))
                    .set_number_of_retries(1);
                Some(SharedBudget {
                    conn: ConnectionManager::new_lazy_with_config(client, config)?,
                    prefix: format!("{prefix}:pwattempts:"),
                    script: redis::Script::new(TAKE),
                })
            }
            None => None,
        };
        let counter = IntCounterVec::new(
            Opts::new(
                "curtain_link_password_attempts_total",
                "Passwords presented to password links, by result (accepted, wrong, limited: \
                 the client had spent its attempts).",
            ),
            &["result"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        registry
            .register(Box::new(counter.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        for result in ["accepted", "wrong", "limited"] {
            counter.with_label_values(&[result]);
        }
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Ok(Self {
            slots: Arc::new(Semaphore::new(cpus * VERIFY_SLOTS)),
            budget: AttemptBudget {
                attempts: attempts.max(1),
                window: window.max(Duration::from_secs(1)),
                local: quick_cache::sync::Cache::new(100_000),
                shared,
            },
            attempts: counter,
        })
    }

    /// One attempt of `client` at link `id` (whose hash is `phc`) with `presented`.
    pub async fn check(
        &self,
        id: i64,
        client: &str,
        phc: &str,
        presented: &str,
    ) -> Result<Verdict, PasswordError> {
        let verdict = match self.budget.take(id, client).await {
            Err(retry_after) => Verdict::Limited(retry_after),
            Ok(()) => {
                if self.verify(phc, presented).await? {
                    self.budget.give_back(id, client).await;
                    Verdict::Accepted
                } else {
                    Verdict::Wrong
                }
            }
        };
        self.attempts.with_label_values(&[verdict.label()]).inc();
        Ok(verdict)
    }

    async fn verify(&self, phc: &str, presented: &str) -> Result<bool, PasswordError> {
        let _slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        let (phc, presented) = (phc.to_owned(), presented.to_owned());
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&phc).map_err(|e| PasswordError::Hash(e.to_string()))?;
            Ok(Argon2::default()
                .verify_password(presented.as_bytes(), &parsed)
                .is_ok())
        })
        .await?
    }
}

/// (link, client) → (window start, attempts used): in process, bounded (CLOCK-Pro evicts the
/// coldest when full).
type LocalBudgets = quick_cache::sync::Cache<(i64, String), Arc<Mutex<(Instant, u32)>>>;

/// The attempts a client has left at a link in the current window.
struct AttemptBudget {
    attempts: u32,
    window: Duration,
    local: LocalBudgets,
    shared: Option<SharedBudget>,
}

struct SharedBudget {
    conn: ConnectionManager,
    prefix: String,
    script: redis::Script,
}

impl AttemptBudget {
    /// Takes one attempt; `Err(seconds)` when the budget is spent.
    async fn take(&self, id: i64, client: &str) -> Result<(), u64> {
        if let Some(shared) = &self.shared {
            let key = format!("{}{id}:{client}", shared.prefix);
            let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
            let mut invocation = shared.script.key(&key);
            invocation.arg(self.attempts).arg(window_ms);
            let mut conn = shared.conn.clone();
            match tokio::time::timeout(REDIS_BUDGET, invocation.invoke_async::<i64>(&mut conn))
                .await
            {
                Ok(Ok(n)) if n > 0 => return Ok(()),
                Ok(Ok(n)) => return Err(n.unsigned_abs().div_ceil(1000).max(1)),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "password attempt budget: Redis failed; using this process' budget");
                }
                Err(_) => {
                    tracing::warn!(
                        "password attempt budget: Redis did not answer; using this process' budget"
                    );
                }
            }
        }
        self.take_local(id, client)
    }

    fn take_local(&self, id: i64, client: &str) -> Result<(), u64> {
        let slot = self
            .local
            .get_or_insert_with(&(id, client.to_owned()), || {
                Ok::<_, std::convert::Infallible>(Arc::new(Mutex::new((Instant::now(), 0))))
            })
            .unwrap_or_else(|never| match never {});
        let mut used = slot.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if now.duration_since(used.0) >= self.window {
            *used = (now, 0);
        }
        if used.1 >= self.attempts {
            let left = self.window.saturating_sub(now.duration_since(used.0));
            return Err(left
                .as_millis()
                .div_ceil(1000)
                .max(1)
                .try_into()
                .unwrap_or(u64::MAX));
        }
        used.1 += 1;
        Ok(())
    }

    /// A right password: the client's failures at the link are forgotten.
    async fn give_back(&self, id: i64, client: &str) {
        self.local.remove(&(id, client.to_owned()));
        if let Some(shared) = &self.shared {
            let mut conn = shared.conn.clone();
            let mut del = redis::cmd("DEL");
            del.arg(format!("{}{id}:{client}", shared.prefix));
            if let Ok(Err(e)) =
                tokio::time::timeout(REDIS_BUDGET, del.query_async::<i64>(&mut conn)).await
            {
                tracing::warn!(error = %e, "password attempt budget: reset failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passwords(attempts: u32, window: Duration) -> LinkPasswords {
        LinkPasswords::new(None, attempts, window, &Registry::new()).unwrap()
    }

    #[tokio::test]
    async fn a_hash_accepts_its_password_only() {
        let phc = hash("s3cret pass".to_owned()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("s3cret"));
        let p = passwords(10, Duration::from_mins(1));
        assert_eq!(
            p.check(1, "c", &phc, "s3cret pass").await.unwrap(),
            Verdict::Accepted
        );
        assert_eq!(
            p.check(1, "c", &phc, "s3cret Pass").await.unwrap(),
            Verdict::Wrong
        );
        assert_eq!(p.check(1, "c", &phc, "").await.unwrap(), Verdict::Wrong);
    }

    #[tokio::test]
    async fn spent_attempts_refuse_even_the_right_password_per_client_and_link() {
        let phc = hash("right".to_owned()).await.unwrap();
        let p = passwords(3, Duration::from_mins(1));
        for _ in 0..3 {
            assert_eq!(
                p.check(7, "a", &phc, "wrong").await.unwrap(),
                Verdict::Wrong
            );
        }
        assert!(matches!(
            p.check(7, "a", &phc, "right").await.unwrap(),
            Verdict::Limited(s) if (1..=60).contains(&s)
        ));
        // Another client, or the same client at another link, has its own budget.
        assert_eq!(
            p.check(7, "b", &phc, "right").await.unwrap(),
            Verdict::Accepted
        );
        assert_eq!(
            p.check(8, "a", &phc, "right").await.unwrap(),
            Verdict::Accepted
        );
    }

    #[tokio::test]
    async fn the_right_password_gives_the_budget_back() {
        let phc = hash("right".to_owned()).await.unwrap();
        let p = passwords(2, Duration::from_mins(1));
        assert_eq!(
            p.check(1, "a", &phc, "wrong").await.unwrap(),
            Verdict::Wrong
        );
        assert_eq!(
            p.check(1, "a", &phc, "right").await.unwrap(),
            Verdict::Accepted
        );
        assert_eq!(
            p.check(1, "a", &phc, "wrong").await.unwrap(),
            Verdict::Wrong
        );
        assert_eq!(
            p.check(1, "a", &phc, "wrong").await.unwrap(),
            Verdict::Wrong
        );
        assert!(matches!(
            p.check(1, "a", &phc, "right").await.unwrap(),
            Verdict::Limited(_)
        ));
    }

    #[tokio::test]
    async fn a_window_that_ends_gives_the_attempts_back() {
        let phc = hash("right".to_owned()).await.unwrap();
        let p = passwords(1, Duration::from_secs(1));
        assert_eq!(
            p.check(1, "a", &phc, "wrong").await.unwrap(),
            Verdict::Wrong
        );
        assert!(matches!(
            p.check(1, "a", &phc, "right").await.unwrap(),
            Verdict::Limited(1)
        ));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(
            p.check(1, "a", &phc, "right").await.unwrap(),
            Verdict::Accepted
        );
    }
}
