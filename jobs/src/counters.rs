//! Counter-rebuild payloads: the real-time counters of a link, of a shard's links or of every
//! link recomputed from the events table.

use serde::{Deserialize, Serialize};

/// What to rebuild: one code (`code`), one shard's codes (`shard`), or, with neither, every
/// code. Idempotent: a rebuild writes what the events hold, however often it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuildCounters {
    pub shard: Option<usize>,
    pub code: Option<String>,
    /// Why it was asked for (logged): `curtain-ops`, `scheduled`, `shard 2 restarted empty`.
    pub reason: String,
}

/// The counter-rebuild job's identity.
pub struct CounterRebuild;

impl CounterRebuild {
    pub const NAME: &'static str = "rebuild_counters";
    pub const QUEUE: &'static str = "curtain:counters";
}
