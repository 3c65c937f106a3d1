//! The contract between `curtain-api` and `curtain-worker`: job payloads, queue names and the
//! enqueue client, plus the queue maintenance that apalis-redis 1.0 lacks.
//!
//! Rules: every job has stable `NAME`/`QUEUE` constants (never a Rust type path); payloads are
//! JSON and carry their own identity (`batch_id`, `click_id`, `delivery_id`) so handlers are idempotent under
//! at-least-once delivery.

pub mod alert;
pub mod click;
pub mod counters;
pub mod health;
pub mod queue;
pub mod warm;
pub mod webhook;

pub use alert::{Alert, AlertDelivery, AlertGroup, AlertStatus, DeliverAlert};
pub use click::{Click, ClickBatch, RecordClicks};
pub use counters::{CounterRebuild, RebuildCounters};
pub use health::{BrokenLink, CheckLinks, LinkHealth};
pub use queue::{ClickQueue, JobQueue, QueueDepth, QueueError};
pub use warm::{WarmCache, WarmLinks};
pub use webhook::{DeliverWebhook, WebhookDelivery};
