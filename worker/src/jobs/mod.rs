//! The worker's jobs: one handler file per job, all registered in [`register`].

/// Registers `$workers` workers of one queue of the worker's own jobs on `$monitor`: payload
/// `$payload` from queue `$queue` (on the click storage's connection), each worker named
/// `$name` and running `$handler` one job at a time. A macro rather than a generic function:
/// the function would have to spell out apalis' `IntoWorkerService` bounds for every
/// handler's signature.
macro_rules! register_queue {
    ($monitor:expr, $state:expr, $clicks:expr, $payload:ty, $queue:expr, $name:expr, $workers:expr, $handler:path $(,)?) => {{
        use apalis::layers::WorkerBuilderExt as _;
        use apalis::prelude::BackendExt as _;
        let conn = $clicks.clone().get_connection().clone();
        let storage: apalis_redis::RedisStorage<$payload> =
            apalis_redis::RedisStorage::new(conn).with_config(::jobs::queue::queue_config($queue));
        let poll = $state.config.poll_interval;
        let state = $state.clone();
        $monitor.register_n($workers, move |index, _restarts| {
            apalis::prelude::WorkerBuilder::new($crate::jobs::unique_name($name, index))
                .backend(storage.clone().poll_with_interval(poll))
                .concurrency(1)
                .data(state.clone())
                .build($handler)
        })
    }};
}

pub mod check_links;
pub mod deliver_alert;
pub mod deliver_webhook;
pub mod rebuild_counters;
pub mod record_clicks;
pub mod warm_cache;

use std::sync::Arc;

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{BackendExt, Monitor, WorkerBuilder};
use apalis_redis::RedisStorage;
use jobs::ClickBatch;

use crate::WorkerState;

/// A process-unique worker name: host, pid and a random part, so a restarted process never
/// collides with its predecessor's registration (apalis-redis refuses the same name for
/// `heartbeat x missed_heartbeats` and its monitor then returns silently).
#[must_use]
pub fn unique_name(job: &str, index: usize) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let random = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{job}-{host}-{}-{random}-{index}", std::process::id())
}

/// Registers every job's worker pool on `monitor`.
pub fn register(
    monitor: Monitor,
    state: &Arc<WorkerState>,
    storage: &RedisStorage<ClickBatch>,
) -> Monitor {
    let monitor = deliver_alert::register(monitor, state, storage);
    let concurrency = state.config.click_concurrency.max(1);
    let poll = state.config.poll_interval;
    let monitor = warm_cache::register(monitor, state, storage);
    let monitor = rebuild_counters::register(monitor, state, storage);
    let monitor = check_links::register(monitor, state, storage);
    let monitor = deliver_webhook::register(monitor, state, storage);
    let state = state.clone();
    let storage = storage.clone();
    monitor.register_n(concurrency, move |index, _restarts| {
        WorkerBuilder::new(unique_name(jobs::RecordClicks::NAME, index))
            .backend(storage.clone().poll_with_interval(poll))
            // One job at a time per worker: without a limit an apalis worker keeps fetching
            // while its jobs run, so a backlog is pulled into memory whole (gigabytes for a
            // million clicks) and every fetched job is orphaned if the process dies.
            .concurrency(1)
            .data(state.clone())
            .build(record_clicks::record_clicks)
    })
}
