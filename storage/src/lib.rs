//! Storage shared by `curtain-api` and `curtain-worker`: the read-through cache, the sharded
//! real-time click counters and their consistent-hash ring, click ingestion into the
//! database, the deployment settings and API keys kept in it, the database connection (with
//! its migrations), the legacy CSV import and cache warming; also the process collector both
//! binaries register ([`process`]).

pub mod api_keys;
pub mod cache;
pub mod config;
pub mod counters;
pub mod db;
pub mod health;
pub mod hll;
pub mod import;
pub mod import_stream;
pub mod ingest;
#[cfg(target_os = "linux")]
pub mod process;
pub mod rebuild;
pub mod ring;
pub mod rollup;
pub mod settings;
pub mod tombstones;
pub mod warm;
pub mod webhooks;
