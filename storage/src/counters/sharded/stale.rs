//! Counter keys a rebuild did not write: a code's keys left on other shards by a failover, and
//! the keys of codes with no event left.

use std::collections::HashSet;

use super::ShardedCounters;
use crate::counters::{CounterError, HOURS};

/// The code a counter key (total, hourly bucket, uniques) belongs to; `None` for any other key
/// (markers, pauses, the epoch, the lock). Codes hold no `:`.
fn code_of<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = key.strip_prefix(prefix)?;
    let code = if let Some(code) = rest.strip_suffix(":total") {
        code
    } else if let Some(code) = rest.strip_suffix(":uv") {
        code
    } else {
        let (code, hour) = rest.rsplit_once(":h:")?;
        hour.parse::<i64>().ok()?;
        code
    };
    (!code.is_empty() && !code.contains(':')).then_some(code)
}

/// `prefix` as a literal SCAN pattern.
fn glob_literal(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('*');
    out
}

impl ShardedCounters {
    /// On every shard, deletes the counter keys of codes owned by one of `owners` unless the
    /// key is on its owner and the code was just rebuilt. Returns the keys deleted.
    pub(super) async fn remove_stale(
        &self,
        owners: &[usize],
        rebuilt: &HashSet<String>,
    ) -> Result<u64, CounterError> {
        let pattern = glob_literal(&self.prefix);
        let mut removed = 0;
        for shard in 0..self.shards.len() {
            let mut conn = self
                .conn(shard)
                .await
                .ok_or(CounterError::Unverifiable(shard))?;
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1_000)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| CounterError::Redis(shard, e))?;
                let stale: Vec<&String> = keys
                    .iter()
                    .filter(|key| {
                        code_of(key, &self.prefix).is_some_and(|code| {
                            let owner = self.ring.owner(code);
                            owner.is_some_and(|o| owners.contains(&o))
                                && (owner != Some(shard) || !rebuilt.contains(code))
                        })
                    })
                    .collect();
                if !stale.is_empty() {
                    removed += redis::cmd("UNLINK")
                        .arg(&stale)
                        .query_async::<u64>(&mut conn)
                        .await
                        .map_err(|e| CounterError::Redis(shard, e))?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(removed)
    }

    /// Deletes `code`'s counter keys on every shard but its owner. Returns the keys deleted.
    pub(super) async fn remove_elsewhere(
        &self,
        code: &str,
        owner: usize,
        current: i64,
    ) -> Result<u64, CounterError> {
        let mut keys: Vec<String> = (current - HOURS..=current + 1)
            .map(|h| format!("{}{code}:h:{h}", self.prefix))
            .collect();
        keys.push(format!("{}{code}:total", self.prefix));
        keys.push(format!("{}{code}:uv", self.prefix));
        let mut removed = 0;
        for shard in (0..self.shards.len()).filter(|s| *s != owner) {
            let mut conn = self
                .conn(shard)
                .await
                .ok_or(CounterError::Unverifiable(shard))?;
            removed += redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<u64>(&mut conn)
                .await
                .map_err(|e| CounterError::Redis(shard, e))?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_keys_name_their_code_and_nothing_else_does() {
        let p = "c:dep:ctr:";
        assert_eq!(code_of("c:dep:ctr:abc:total", p), Some("abc"));
        assert_eq!(code_of("c:dep:ctr:abc:uv", p), Some("abc"));
        assert_eq!(code_of("c:dep:ctr:abc:h:491234", p), Some("abc"));
        assert_eq!(code_of("c:dep:ctr:batch:total", p), Some("batch"));
        assert_eq!(code_of("c:dep:ctr:batch:5f0c:shard1", p), None);
        assert_eq!(code_of("c:dep:ctr:pause:shard0", p), None);
        assert_eq!(code_of("c:dep:ctr:epoch", p), None);
        assert_eq!(code_of("c:dep:ctr:rebuild-lock", p), None);
        assert_eq!(code_of("c:dep:ctr:abc:h:x", p), None);
        assert_eq!(code_of("other:abc:total", p), None);
    }

    #[test]
    fn the_scan_pattern_matches_the_prefix_literally() {
        assert_eq!(glob_literal("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:*");
    }
}
