//! The queue gauges: depth, ages and live workers of every queue.

use jobs::QueueDepth;
use prometheus::{IntGaugeVec, Opts, Registry};

/// Every queue's depth, ages and live workers, under the names and labels the worker exports;
/// set only from a [`crate::queues::QueueMonitor`] reading, the one the queue page shows.
#[derive(Clone)]
pub struct QueueGauges {
    jobs: IntGaugeVec,
    oldest_age_seconds: IntGaugeVec,
    oldest_ready_age_seconds: IntGaugeVec,
    workers_alive: IntGaugeVec,
}

impl QueueGauges {
    pub(super) fn new(registry: &Registry) -> Self {
        let gauges = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            registry
                .register(Box::new(g.clone()))
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            g
        };
        Self {
            jobs: gauges(
                "curtain_queue_jobs",
                "Jobs in the queue by state (read from the Redis keys; in the embedded default's \
                 in-process click queue, clicks).",
                &["queue", "state"],
            ),
            oldest_age_seconds: gauges(
                "curtain_queue_oldest_job_age_seconds",
                "Age of the oldest due job not yet picked up.",
                &["queue"],
            ),
            oldest_ready_age_seconds: gauges(
                "curtain_queue_oldest_ready_age_seconds",
                "Age of the oldest job ready for a worker (where producers push) not yet picked up.",
                &["queue"],
            ),
            workers_alive: gauges(
                "curtain_queue_workers_alive",
                "Workers of any process whose heartbeat on the queue is recent (in process: the \
                 consuming task).",
                &["queue"],
            ),
        }
    }

    /// Sets the live workers of `queue`.
    pub fn set_workers_alive(&self, queue: &str, n: u64) {
        self.workers_alive.with_label_values(&[queue]).set(n as i64);
    }

    /// Sets every depth gauge of `queue` from one reading.
    pub fn set(&self, queue: &str, d: &QueueDepth) {
        for (state, value) in d.by_state() {
            self.jobs
                .with_label_values(&[queue, state])
                .set(value as i64);
        }
        self.oldest_age_seconds
            .with_label_values(&[queue])
            .set(d.oldest_age_seconds as i64);
        self.oldest_ready_age_seconds
            .with_label_values(&[queue])
            .set(d.oldest_ready_age_seconds as i64);
    }
}
