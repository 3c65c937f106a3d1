//! Every job queue of the deployment read the same way for `/metrics` and `/admin/queues`.
//!
//! One [`QueueMonitor::read`] reads each queue once (Redis: from its keys, see
//! [`jobs::JobQueue::depth`]; in process: the embedded default's click pipeline and alert
//! queue), sets the `curtain_queue_*` gauges from that reading and returns it for the page:
//! the page and the gauges can never disagree on a number. A background task reads every
//! second so the gauges stay current when nobody looks at the page.
//!
//! Throughput is the rise of each queue's completed count (Redis: the counter kept by the
//! workers' prune step plus the done set, [`jobs::JobQueue::completed_total`]; in process: the
//! pipeline's own count) over the last 5 and 15 minutes, from a small ring of samples kept in
//! this process. A process up for less than a window shows the span it really covers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jobs::{JobQueue, QueueDepth};
use serde::Serialize;

use crate::clicks::ClickRecorder;
use crate::metrics::QueueGauges;

/// Where a queue's numbers come from.
pub enum Source {
    /// An apalis-redis queue consumed by `curtain-worker`.
    Redis(Arc<JobQueue>),
    /// The embedded default's click pipeline (counted in clicks).
    Clicks(ClickRecorder),
    /// The embedded default's alert-delivery queue.
    Alerts(alerts::EmbeddedQueue),
    /// No queue: why (the work runs synchronously, or is not configured).
    Off(&'static str),
}

/// One queue of the page.
pub struct Watched {
    /// The queue's name (the `queue` label of the metrics).
    pub name: String,
    /// What it carries: `clicks`, `warming`, `alerts`.
    pub role: &'static str,
    pub source: Source,
}

/// Completed-job windows shown, in minutes.
pub const WINDOWS: [u64; 2] = [5, 15];
/// Samples of the completed count are kept this far apart at least...
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// ...for the longest window.
const KEEP: Duration = Duration::from_mins(15);
/// A queue that does not answer within this is shown as unreadable.
const READ_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the background task reads (and so refreshes the gauges).
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// A queue's depth, as the page shows it (the states of the `curtain_queue_jobs` gauge).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DepthView {
    pub ready: u64,
    pub due: u64,
    pub scheduled: u64,
    pub running: u64,
    pub dead: u64,
    pub done: u64,
    pub oldest_age_seconds: u64,
    pub oldest_ready_age_seconds: u64,
}

impl From<&QueueDepth> for DepthView {
    fn from(d: &QueueDepth) -> Self {
        Self {
            ready: d.ready,
            due: d.due,
            scheduled: d.future,
            running: d.running,
            dead: d.dead,
            done: d.done,
            oldest_age_seconds: d.oldest_age_seconds,
            oldest_ready_age_seconds: d.oldest_ready_age_seconds,
        }
    }
}

/// Jobs completed over one window.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub window_minutes: u64,
    /// Completed within the span.
    pub completed: u64,
    /// Seconds the samples really cover (less than the window after a start-up).
    pub span_seconds: u64,
    /// Whether the span is shorter than the window.
    pub partial: bool,
    /// Completed per minute over the span, one decimal; `None` before a second sample.
    pub per_minute: Option<String>,
}

/// One queue read once.
#[derive(Debug, Clone, Serialize)]
pub struct QueueReading {
    pub name: String,
    pub role: &'static str,
    /// `redis`, `in process` or `off`.
    pub backend: &'static str,
    /// What a count counts: `jobs`, or `clicks` for the in-process click pipeline.
    pub unit: &'static str,
    /// Why there are no numbers (no queue, or the read failed).
    pub note: Option<String>,
    pub depth: Option<DepthView>,
    pub workers_alive: Option<u64>,
    pub throughput: Vec<Throughput>,
}

/// The queues of this process and the samples of their completed counts.
pub struct QueueMonitor {
    queues: Vec<Watched>,
    gauges: QueueGauges,
    samples: Mutex<Vec<History>>,
}

/// Samples of one queue's completed count, and the last count read.
#[derive(Default)]
struct History {
    samples: VecDeque<(Instant, u64)>,
    last: u64,
}

impl QueueMonitor {
    #[must_use]
    pub fn new(queues: Vec<Watched>, gauges: QueueGauges) -> Self {
        let samples = Mutex::new(queues.iter().map(|_| History::default()).collect());
        Self {
            queues,
            gauges,
            samples,
        }
    }

    /// Reads every queue once, sets the gauges from the reading and returns it.
    pub async fn read(&self) -> Vec<QueueReading> {
        let raw = futures_util::future::join_all(self.queues.iter().map(read_source)).await;
        let now = Instant::now();
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        self.queues
            .iter()
            .zip(raw)
            .zip(samples.iter_mut())
            .map(|((queue, raw), ring)| {
                let (backend, unit) = match &queue.source {
                    Source::Redis(_) => ("redis", "jobs"),
                    Source::Clicks(_) => ("in process", "clicks"),
                    Source::Alerts(_) => ("in process", "jobs"),
                    Source::Off(_) => ("off", "jobs"),
                };
                let mut reading = QueueReading {
                    name: queue.name.clone(),
                    role: queue.role,
                    backend,
                    unit,
                    note: None,
                    depth: None,
                    workers_alive: None,
                    throughput: Vec::new(),
                };
                match raw {
                    Raw::Off(why) => reading.note = Some(why.to_owned()),
                    Raw::Failed(why) => {
                        tracing::debug!(queue = %queue.name, error = %why, "reading queue failed");
                        reading.note = Some(format!("not readable: {why}"));
                    }
                    Raw::Read {
                        depth,
                        workers_alive,
                        completed,
                    } => {
                        self.gauges.set(&queue.name, &depth);
                        self.gauges.set_workers_alive(&queue.name, workers_alive);
                        reading.depth = Some(DepthView::from(&depth));
                        reading.workers_alive = Some(workers_alive);
                        reading.throughput = throughput(ring, now, completed);
                    }
                }
                reading
            })
            .collect()
    }

    /// Reads every [`REFRESH_EVERY`] for the life of the process.
    pub fn spawn_refresher(self: &Arc<Self>) {
        let monitor = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let _ = monitor.read().await;
                tokio::time::sleep(REFRESH_EVERY).await;
            }
        });
    }
}

enum Raw {
    Off(&'static str),
    Failed(String),
    Read {
        depth: QueueDepth,
        workers_alive: u64,
        completed: u64,
    },
}

async fn read_source(queue: &Watched) -> Raw {
    match &queue.source {
        Source::Off(why) => Raw::Off(why),
        Source::Clicks(clicks) => Raw::Read {
            depth: clicks.depth(),
            workers_alive: clicks.workers_alive(),
            completed: clicks.completed(),
        },
        Source::Alerts(alerts) => Raw::Read {
            depth: alerts.depth(),
            workers_alive: alerts.workers_alive(),
            completed: alerts.completed(),
        },
        Source::Redis(redis) => {
            let read = async {
                let (depth, workers_alive, completed) = tokio::try_join!(
                    redis.depth(),
                    redis.workers_alive(),
                    redis.completed_total()
                )?;
                Ok::<_, jobs::QueueError>(Raw::Read {
                    depth,
                    workers_alive,
                    completed,
                })
            };
            match tokio::time::timeout(READ_TIMEOUT, read).await {
                Ok(Ok(raw)) => raw,
                Ok(Err(e)) => Raw::Failed(e.to_string()),
                Err(_) => Raw::Failed("timed out".to_owned()),
            }
        }
    }
}

/// Records `completed` at `now` in `history` (at most one sample per [`SAMPLE_EVERY`], the
/// last [`KEEP`] kept, plus one older sample as the base of the longest window) and returns
/// the rise over each of [`WINDOWS`].
fn throughput(history: &mut History, now: Instant, completed: u64) -> Vec<Throughput> {
    // A count that went down (the queue's keys were reset) starts the history over.
    if history.last > completed {
        history.samples.clear();
    }
    history.last = completed;
    let ring = &mut history.samples;
    if ring
        .back()
        .is_none_or(|&(at, _)| now.duration_since(at) >= SAMPLE_EVERY)
    {
        ring.push_back((now, completed));
    }
    while ring.len() > 2
        && ring
            .get(1)
            .is_some_and(|&(at, _)| now.duration_since(at) >= KEEP)
    {
        ring.pop_front();
    }
    WINDOWS
        .iter()
        .map(|&minutes| {
            let window = Duration::from_secs(minutes * 60);
            // The oldest sample within the window (the newest is always within it).
            let (at, base) = ring
                .iter()
                .copied()
                .find(|&(at, _)| now.duration_since(at) <= window)
                .unwrap_or((now, completed));
            let span = now.duration_since(at);
            let count = completed.saturating_sub(base);
            Throughput {
                window_minutes: minutes,
                completed: count,
                span_seconds: span.as_secs(),
                partial: span + SAMPLE_EVERY < window,
                per_minute: (span >= Duration::from_secs(1))
                    .then(|| format!("{:.1}", count as f64 * 60.0 / span.as_secs_f64())),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_is_the_rise_since_the_oldest_sample_within_each_window() {
        let start = Instant::now();
        let mut ring = History::default();
        let first = throughput(&mut ring, start, 100);
        assert_eq!(first[0].completed, 0);
        assert_eq!(first[0].per_minute, None);
        // Every 10 s for 20 minutes, 2 jobs each time: 12 per minute.
        let mut last = Vec::new();
        for i in 1..=120u64 {
            last = throughput(&mut ring, start + Duration::from_secs(10 * i), 100 + 2 * i);
        }
        assert_eq!(last[0].window_minutes, 5);
        assert_eq!(last[0].completed, 60);
        assert_eq!(last[0].per_minute.as_deref(), Some("12.0"));
        assert!(!last[0].partial);
        assert_eq!(last[1].completed, 180);
        assert_eq!(last[1].span_seconds, 900);
        assert!(
            ring.samples.len() <= 92,
            "ring bounded: {}",
            ring.samples.len()
        );
    }

    #[test]
    fn a_young_process_shows_the_span_it_covers_and_a_reset_starts_over() {
        let start = Instant::now();
        let mut ring = History::default();
        throughput(&mut ring, start, 0);
        let t = throughput(&mut ring, start + Duration::from_secs(2), 7);
        assert_eq!(t[0].completed, 7);
        assert_eq!(t[0].span_seconds, 2);
        assert!(t[0].partial);
        assert_eq!(t[0].per_minute.as_deref(), Some("210.0"));
        let after_reset = throughput(&mut ring, start + Duration::from_secs(3), 1);
        assert_eq!(after_reset[0].completed, 0);
        let later = throughput(&mut ring, start + Duration::from_secs(9), 4);
        assert_eq!(later[0].completed, 3);
        assert_eq!(later[0].span_seconds, 6);
    }
}
