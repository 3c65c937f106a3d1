//! A code's figures as a rebuild reads them from the events, and how they are written: the
//! batches marked as counted, then total, hourly buckets and HyperLogLog replaced in one MULTI.

use std::collections::{BTreeMap, HashSet};

use super::ShardedCounters;
use super::write::MARKER_TTL_SECS;
use crate::counters::{CounterError, HOURS};

/// Visitor hashes per PFADD and markers per pipeline.
pub(super) const CHUNK: usize = 1_000;

/// One code's figures as read from the events.
#[derive(Default)]
pub(super) struct CodeFigures {
    pub(super) total: u64,
    pub(super) hours: BTreeMap<i64, u64>,
    pub(super) visitors: Vec<String>,
    /// Visitor hashes already sent to the scratch HyperLogLog.
    pub(super) sketched: bool,
    /// The batches its events came in (recent ones only: older markers have expired anyway).
    pub(super) batches: HashSet<String>,
}

impl ShardedCounters {
    /// Sends the visitor hashes read so far to the code's scratch HyperLogLog.
    pub(super) async fn sketch(
        &self,
        code: &str,
        owner: usize,
        f: &mut CodeFigures,
    ) -> Result<(), CounterError> {
        let mut conn = self.reachable(owner).await?;
        let mut pipe = redis::pipe();
        if !f.sketched {
            pipe.cmd("DEL").arg(self.scratch_key(code)).ignore();
        }
        pipe.cmd("PFADD")
            .arg(self.scratch_key(code))
            .arg(&f.visitors)
            .ignore();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| CounterError::Redis(owner, e))?;
        f.visitors.clear();
        f.sketched = true;
        Ok(())
    }

    /// Marks the batches of `code`'s events as counted, then replaces its counters on its
    /// owning shard with `f`, atomically. Returns the batches marked. Memory stays bounded by
    /// one code's figures: the events are read in code order and each code is written as soon
    /// as its events are read.
    pub(super) async fn write_code(
        &self,
        code: &str,
        owner: usize,
        mut f: CodeFigures,
        current: i64,
    ) -> Result<u64, CounterError> {
        if f.total == 0 {
            return Ok(0);
        }
        let marked = self.mark_counted(&f.batches, owner).await?;
        if !f.visitors.is_empty() {
            self.sketch(code, owner, &mut f).await?;
        }
        let p = &self.prefix;
        let mut conn = self.reachable(owner).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        let old: Vec<String> = (current - HOURS..=current + 1)
            .map(|h| format!("{p}{code}:h:{h}"))
            .chain([format!("{p}{code}:total"), format!("{p}{code}:uv")])
            .collect();
        pipe.cmd("UNLINK").arg(old).ignore();
        pipe.cmd("SET")
            .arg(format!("{p}{code}:total"))
            .arg(f.total)
            .ignore();
        for (hour, count) in &f.hours {
            pipe.cmd("SET")
                .arg(format!("{p}{code}:h:{hour}"))
                .arg(count)
                .arg("EXAT")
                .arg((hour + HOURS + 1) * 3600)
                .ignore();
        }
        pipe.cmd("RENAME")
            .arg(self.scratch_key(code))
            .arg(format!("{p}{code}:uv"))
            .ignore();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| CounterError::Redis(owner, e))?;
        Ok(marked)
    }

    /// Sets, on every shard, the marker of every batch read for a code of `owner`: the batch is
    /// counted there.
    async fn mark_counted(
        &self,
        batches: &HashSet<String>,
        owner: usize,
    ) -> Result<u64, CounterError> {
        let markers: Vec<String> = batches
            .iter()
            .map(|batch| self.marker(batch, owner))
            .collect();
        for chunk in markers.chunks(CHUNK) {
            let mut pipe = redis::pipe();
            for marker in chunk {
                pipe.cmd("SET")
                    .arg(marker)
                    .arg("1")
                    .arg("NX")
                    .arg("EX")
                    .arg(MARKER_TTL_SECS)
                    .ignore();
            }
            self.on_every_shard(&pipe).await?;
        }
        Ok(markers.len() as u64)
    }
}
