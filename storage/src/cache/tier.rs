//! The in-process tier: a size-weighted, bounded map (`quick_cache`: CLOCK-Pro eviction, so a
//! full tier drops its coldest entries, never everything) with a per-entry expiry.
//!
//! Race-freedom: a reader notes the tier's `epoch` before it loads the data it will store;
//! every invalidation bumps the epoch, removes its keys and logs them under the write side of
//! `gate`, and a store checks the log under the read side: it is refused if an invalidation
//! since the reader's epoch named its key (or the log no longer reaches back that far). So a
//! reader that loaded data before an invalidation can never store it after the invalidation
//! removed the key, while invalidations of other keys refuse nothing.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use quick_cache::Weighter;

/// Bytes an entry costs beyond its key and payload (entry, `Arc`, bookkeeping): a rough figure
/// that keeps many tiny payloads from escaping the bound.
const ENTRY_OVERHEAD: u64 = 96;
/// Invalidations remembered for in-flight stores; a reader older than these is refused.
const LOG_LEN: usize = 4096;

/// One invalidation: its epoch, the keys it named, whether it dropped every list.
struct Invalidated {
    epoch: u64,
    keys: Vec<String>,
    lists: bool,
}

/// A payload held in process, with a decoded form built once by its first reader (the
/// redirect hot path keeps a ready-made response there).
pub struct Cached {
    pub(crate) payload: String,
    decoded: OnceLock<Option<Box<dyn Any + Send + Sync>>>,
}

impl Cached {
    /// The decoded form, made by `decode` on first use; `None` if it does not decode (or was
    /// decoded as another type).
    pub fn decoded<T: Any + Send + Sync>(
        &self,
        decode: impl FnOnce(&str) -> Option<T>,
    ) -> Option<&T> {
        self.decoded
            .get_or_init(|| {
                decode(&self.payload).map(|v| Box::new(v) as Box<dyn Any + Send + Sync>)
            })
            .as_ref()?
            .downcast_ref()
    }
}

#[derive(Clone)]
struct Entry {
    expires: Instant,
    cached: Arc<Cached>,
}

#[derive(Clone)]
struct Weight;

impl Weighter<String, Entry> for Weight {
    fn weight(&self, key: &String, entry: &Entry) -> u64 {
        (key.len() + entry.cached.payload.len()) as u64 + ENTRY_OVERHEAD
    }
}

pub(crate) struct Tier {
    entries: quick_cache::sync::Cache<String, Entry, Weight>,
    gate: RwLock<VecDeque<Invalidated>>,
    epoch: AtomicU64,
    /// Part of every list key: bumping it drops every cached list at once.
    list_generation: AtomicU64,
    enabled: AtomicBool,
}

impl Tier {
    /// A tier holding at most `max_bytes` (weighed as key + payload + overhead).
    pub(crate) fn new(max_bytes: u64, enabled: bool) -> Self {
        let estimated_items = (max_bytes / 512).max(16) as usize;
        Self {
            entries: quick_cache::sync::Cache::with_weighter(estimated_items, max_bytes, Weight),
            gate: RwLock::new(VecDeque::new()),
            epoch: AtomicU64::new(0),
            list_generation: AtomicU64::new(0),
            enabled: AtomicBool::new(enabled),
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub(crate) fn list_generation(&self) -> u64 {
        self.list_generation.load(Ordering::Acquire)
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    pub(crate) fn get(&self, key: &str) -> Option<Arc<Cached>> {
        if !self.enabled() {
            return None;
        }
        let entry = self.entries.get(key)?;
        (entry.expires > Instant::now()).then_some(entry.cached)
    }

    /// Stores `payload` unless an invalidation happened since the reader saw `epoch_seen`.
    pub(crate) fn put(&self, key: String, payload: &str, ttl: Duration, epoch_seen: u64) {
        if !self.enabled() {
            return;
        }
        let log = self.gate.read().unwrap_or_else(PoisonError::into_inner);
        if self.epoch() != epoch_seen {
            let reaches = log
                .front()
                .is_some_and(|first| first.epoch <= epoch_seen + 1);
            let is_list = key.starts_with("urls:");
            let touched = log
                .iter()
                .filter(|inv| inv.epoch > epoch_seen)
                .any(|inv| (inv.lists && is_list) || inv.keys.contains(&key));
            if !reaches || touched {
                return;
            }
        }
        let cached = Arc::new(Cached {
            payload: payload.to_owned(),
            decoded: OnceLock::new(),
        });
        self.entries.insert(
            key,
            Entry {
                expires: Instant::now() + ttl,
                cached,
            },
        );
    }

    /// Removes `keys` (and every list if `lists`); in-flight readers cannot store.
    pub(crate) fn invalidate(&self, keys: &[String], lists: bool) {
        let mut log = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        if lists {
            self.list_generation.fetch_add(1, Ordering::AcqRel);
        }
        for key in keys {
            self.entries.remove(key.as_str());
        }
        if log.len() == LOG_LEN {
            log.pop_front();
        }
        log.push_back(Invalidated {
            epoch,
            keys: keys.to_vec(),
            lists,
        });
    }

    pub(crate) fn clear(&self) {
        let mut log = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        // Nothing loaded before a clear may be stored: the log restarts after it.
        log.clear();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.list_generation.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
    }

    pub(crate) fn set_enabled(&self, on: bool) {
        self.clear();
        self.enabled.store(on, Ordering::Release);
    }

    #[cfg(test)]
    pub(crate) fn weight(&self) -> u64 {
        self.entries.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_after_an_invalidation_is_refused() {
        let tier = Tier::new(1 << 20, true);
        let seen = tier.epoch();
        tier.invalidate(&["a".into()], false);
        tier.put("a".into(), "old", Duration::from_mins(1), seen);
        assert!(tier.get("a").is_none());
        tier.put("a".into(), "new", Duration::from_mins(1), tier.epoch());
        assert_eq!(
            tier.get("a").map(|c| c.payload.clone()).as_deref(),
            Some("new")
        );
    }

    #[test]
    fn an_invalidation_of_another_key_refuses_nothing() {
        let tier = Tier::new(1 << 20, true);
        let seen = tier.epoch();
        tier.invalidate(&["b".into()], false);
        tier.put("a".into(), "v", Duration::from_mins(1), seen);
        assert!(tier.get("a").is_some());
        tier.invalidate(&[], true);
        tier.put("urls:x@0".into(), "v", Duration::from_mins(1), seen);
        assert!(
            tier.get("urls:x@0").is_none(),
            "a list store after a lists bump is refused"
        );
        tier.clear();
        tier.put("a".into(), "v", Duration::from_mins(1), seen);
        assert!(
            tier.get("a").is_none(),
            "a store from before a clear is refused"
        );
    }

    #[test]
    fn a_full_tier_evicts_some_entries_and_stays_within_its_bytes() {
        let tier = Tier::new(64 * 1024, true);
        for i in 0..10_000 {
            tier.put(format!("k{i}"), &"x".repeat(100), Duration::from_mins(1), 0);
        }
        assert!(tier.weight() <= 64 * 1024, "{}", tier.weight());
        let kept = (0..10_000)
            .filter(|i| tier.get(&format!("k{i}")).is_some())
            .count();
        assert!(
            kept > 100,
            "a full tier keeps most of its capacity, kept {kept}"
        );
    }

    #[test]
    fn an_expired_entry_is_a_miss() {
        let tier = Tier::new(1 << 20, true);
        tier.put("a".into(), "v", Duration::ZERO, 0);
        assert!(tier.get("a").is_none());
    }
}
