//! Alert delivery to Discord, shared by `curtain-worker` (jobs from the Redis queue) and
//! `curtain-api` (the embedded default's in-process queue): the same job body either way.
//!
//! - [`discord`]: an alert group rendered as Discord messages within Discord's limits;
//! - [`client`]: the webhook client (`?wait=true`, 429 / 5xx / 4xx classified);
//! - [`dedup`]: the repeat window and per-delivery markers (Redis or in process);
//! - [`deliver`]: the job body ([`Deliverer::deliver`]);
//! - [`embedded`]: the in-process queue (retries as apalis-redis does them);
//! - [`stand_in`]: a recording Discord stand-in for tests and drills.

pub mod client;
pub mod dedup;
pub mod deliver;
pub mod discord;
pub mod embedded;
pub mod metrics;
pub mod stand_in;

pub use client::install_crypto_provider;
pub use deliver::{Deliverer, DeliveryError, DeliveryReport};
pub use embedded::EmbeddedQueue;
pub use metrics::AlertMetrics;
