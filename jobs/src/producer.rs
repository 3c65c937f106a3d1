//! A producer for any queue: pushes jobs straight onto `<q>:active` with the same script as
//! the click queue ([`crate::queue::PUSH`]), so no push ever lands in `<q>:scheduled`, whose
//! promotion wedges apalis-redis above ~8,000 due ids.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;

use crate::queue::{PUSH, QueueError, queue_config};

pub struct Producer {
    conn: ConnectionManager,
    config: apalis_redis::Config,
    push: redis::Script,
}

impl Producer {
    /// Connects to `queue` on `url` with bounded timeouts.
    pub async fn connect(url: &str, queue: &str) -> Result<Self, QueueError> {
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2);
        let conn = redis::Client::open(url)?
            .get_connection_manager_with_config(manager_config)
            .await?;
        Ok(Self {
            conn,
            config: queue_config(queue),
            push: redis::Script::new(PUSH),
        })
    }

    #[must_use]
    pub fn config(&self) -> &apalis_redis::Config {
        &self.config
    }

    /// Enqueues one job; when this returns `Ok` it is in Redis. One round trip.
    pub async fn push<T: Serialize>(&self, job: &T) -> Result<(), QueueError> {
        let payload = serde_json::to_vec(job).map_err(|e| QueueError::Push(e.to_string()))?;
        push_encoded(&self.conn, &self.config, &self.push, &payload).await
    }
}

/// Pushes one encoded job onto `config`'s queue with the [`PUSH`] script.
pub async fn push_encoded(
    conn: &ConnectionManager,
    config: &apalis_redis::Config,
    script: &redis::Script,
    payload: &[u8],
) -> Result<(), QueueError> {
    let mut conn = conn.clone();
    let _: u64 = script
        .key(config.job_data_hash())
        .key(config.active_jobs_list())
        .key(config.signal_list())
        .arg(config.job_meta_hash())
        .arg(ulid::Ulid::generate().to_string())
        .arg(payload)
        .invoke_async(&mut conn)
        .await?;
    Ok(())
}
