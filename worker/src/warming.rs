//! Scheduled cache warming: at start-up and every `WARM_EVERY`, the redirect targets of the
//! `WARM_TOP_N` links with the most redirects in the last hour are stored in the shared cache,
//! so a restart or a cold cache does not send the hottest codes to the database.

use std::sync::Arc;

use crate::WorkerState;

/// Runs for the life of the process (nothing to do if `WARM_EVERY` or `WARM_TOP_N` is 0).
pub async fn run(state: Arc<WorkerState>) {
    let every = state.config.warm_every;
    let n = state.config.warm_top_n;
    if every.is_zero() || n == 0 {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match warm_top(&state, n).await {
            Ok(stored) => tracing::debug!(links = stored, "warmed the most-redirected links"),
            Err(e) => tracing::warn!(error = %e, "scheduled cache warming failed"),
        }
    }
}

/// One pass: returns how many targets were stored.
pub async fn warm_top(state: &WorkerState, n: u64) -> Result<u64, sea_orm::DbErr> {
    let ids = storage::warm::most_redirected(&state.db, n).await?;
    storage::warm::warm_links(&state.db, &state.cache, &ids).await
}
