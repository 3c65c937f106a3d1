//! Storage shared by `curtain-api` and `curtain-worker`: the read-through cache, the sharded
//! real-time click counters and their consistent-hash ring, click ingestion into the
//! database, and the deployment settings kept in it; also the process collector both
//! binaries register ([`process`]).

pub mod cache;
pub mod config;
pub mod counters;
pub mod hll;
pub mod ingest;
#[cfg(target_os = "linux")]
pub mod process;
pub mod rebuild;
pub mod ring;
pub mod rollup;
pub mod settings;
pub mod tombstones;
