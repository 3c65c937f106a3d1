//! Cache-warming payloads: links whose redirect target should be in the shared cache before
//! their first click (after a create or update).

use serde::{Deserialize, Serialize};

/// The links to warm. Idempotent: warming stores what the database holds now, under the
/// version current before it read, so any number of runs (or a run after a later write)
/// never stores old data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmLinks {
    pub url_ids: Vec<i64>,
}

/// The cache-warming job's identity.
pub struct WarmCache;

impl WarmCache {
    pub const NAME: &'static str = "warm_cache";
    pub const QUEUE: &'static str = "curtain:warm";
}
