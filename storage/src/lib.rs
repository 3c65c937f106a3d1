//! Storage shared by `curtain-api` and `curtain-worker`: the read-through cache, the sharded
//! real-time click counters and their consistent-hash ring, and click ingestion into the
//! database.

pub mod cache;
pub mod config;
pub mod counters;
pub mod ingest;
pub mod rebuild;
pub mod ring;
