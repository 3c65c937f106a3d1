//! The embedded default: counters in process, in bounded memory per code.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use chrono::NaiveDateTime;
use jobs::Click;

use super::{HOURS, Realtime, hour_of, hour_start};

#[derive(Default)]
struct CodeCounters {
    total: u64,
    /// The last [`HOURS`] hours only (older buckets are dropped as new ones come, as on Redis).
    hours: BTreeMap<i64, u64>,
    visitors: Visitors,
}

/// Visitors below this many are kept exactly; then a HyperLogLog (16 KiB, 0.81%) takes over.
const EXACT_VISITORS: usize = 1_000;

/// A code's distinct visitors in bounded memory: exact while few, then a sketch.
enum Visitors {
    Exact(HashSet<String>),
    Sketch(Box<crate::hll::Hll>),
}

impl Default for Visitors {
    fn default() -> Self {
        Self::Exact(HashSet::new())
    }
}

impl Visitors {
    fn insert(&mut self, visitor: &str) {
        match self {
            Self::Exact(set) => {
                if set.contains(visitor) {
                    return;
                }
                set.insert(visitor.to_owned());
                if set.len() > EXACT_VISITORS {
                    let mut sketch = crate::hll::Hll::new();
                    for v in set.iter() {
                        sketch.insert(v);
                    }
                    *self = Self::Sketch(Box::new(sketch));
                }
            }
            Self::Sketch(sketch) => sketch.insert(visitor),
        }
    }

    fn count(&self) -> u64 {
        match self {
            Self::Exact(set) => set.len() as u64,
            Self::Sketch(sketch) => sketch.estimate(),
        }
    }
}

impl CodeCounters {
    fn add(&mut self, at: NaiveDateTime, visitor: &str) {
        self.total += 1;
        let hour = hour_of(at);
        *self.hours.entry(hour).or_default() += 1;
        // Keep HOURS buckets back from the newest one.
        if self.hours.len() > HOURS as usize
            && let Some(&newest) = self.hours.keys().next_back()
        {
            self.hours = self.hours.split_off(&(newest - HOURS + 1));
        }
        self.visitors.insert(visitor);
    }
}

/// Counters per code, batch ids already applied, and their order (oldest first, bounded).
type MemoryState = (
    HashMap<String, CodeCounters>,
    HashSet<String>,
    VecDeque<String>,
);

/// In-process counters (embedded default), in bounded memory per code: 72 hourly buckets, and
/// uniques exact up to 1,000 visitors, then a HyperLogLog.
#[derive(Default)]
pub struct MemoryCounters {
    inner: Mutex<MemoryState>,
}

const MEMORY_BATCH_MEMORY: usize = 100_000;

impl MemoryCounters {
    pub(super) fn apply(&self, batch_id: &str, clicks: &[Click]) {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (codes, applied, order) = &mut *guard;
        if !applied.insert(batch_id.to_owned()) {
            return;
        }
        order.push_back(batch_id.to_owned());
        if order.len() > MEMORY_BATCH_MEMORY
            && let Some(old) = order.pop_front()
        {
            applied.remove(&old);
        }
        for click in clicks {
            codes
                .entry(click.short_code.clone())
                .or_default()
                .add(click.at, &click.visitor_hash);
        }
    }

    /// Counts one click of `code` (a rebuild from events); true if `code` was new.
    pub(crate) fn add(&self, code: &str, at: NaiveDateTime, visitor: &str) -> bool {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let new = !guard.0.contains_key(code);
        guard.0.entry(code.to_owned()).or_default().add(at, visitor);
        new
    }

    pub(super) fn forget(&self, code: &str) {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .remove(code);
    }

    pub(super) fn read(&self, code: &str, now: NaiveDateTime) -> Realtime {
        let guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = hour_of(now);
        let c = guard.0.get(code);
        let hourly = (current - HOURS + 1..=current)
            .map(|h| {
                (
                    hour_start(h),
                    c.and_then(|c| c.hours.get(&h)).copied().unwrap_or(0),
                )
            })
            .collect();
        Realtime {
            total: c.map_or(0, |c| c.total),
            unique_visitors: c.map_or(0, |c| c.visitors.count()),
            hourly,
            unavailable_shards: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    fn click(id: &str, code: &str, visitor: &str, at: &str) -> Click {
        Click {
            click_id: id.into(),
            url_id: 1,
            short_code: code.into(),
            at: NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S").unwrap(),
            visitor_hash: visitor.into(),
            user_agent: None,
            referrer: None,
            head: false,
        }
    }

    #[test]
    fn memory_counters_count_a_batch_once_with_hourly_buckets() {
        let m = MemoryCounters::default();
        let clicks = vec![
            click("1", "abc", "v1", "2026-01-01 10:05:00"),
            click("2", "abc", "v1", "2026-01-01 10:55:00"),
            click("3", "abc", "v2", "2026-01-01 11:00:00"),
        ];
        m.apply("b1", &clicks);
        m.apply("b1", &clicks);
        let now =
            NaiveDateTime::parse_from_str("2026-01-01 11:30:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let r = m.read("abc", now);
        assert_eq!(r.total, 3);
        assert_eq!(r.unique_visitors, 2);
        assert_eq!(r.hourly.len(), 72);
        assert_eq!(r.hourly[71].1, 1);
        assert_eq!(r.hourly[70].1, 2);
        assert_eq!(r.hourly[71].0.hour(), 11);
    }

    #[test]
    fn memory_counters_stay_bounded_per_code_and_estimate_many_visitors() {
        let m = MemoryCounters::default();
        let start =
            NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        // 200 hours of clicks, 50,000 distinct visitors.
        for i in 0..50_000i64 {
            let at = start + chrono::Duration::minutes(i * 200 * 60 / 50_000);
            // SplitMix64 of i: uniform like the HMAC visitor hashes.
            let mut z = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            m.add("big", at, &format!("{:016x}", z ^ (z >> 31)));
        }
        let guard = m.inner.lock().unwrap();
        let c = &guard.0["big"];
        assert!(
            c.hours.len() <= HOURS as usize,
            "{} hourly buckets kept",
            c.hours.len()
        );
        assert!(
            matches!(c.visitors, Visitors::Sketch(_)),
            "a sketch past 1,000 visitors"
        );
        let estimate = c.visitors.count() as f64;
        assert!((estimate - 50_000.0).abs() / 50_000.0 < 0.025, "{estimate}");
        assert_eq!(c.total, 50_000);
        drop(guard);
        // Few visitors stay exact.
        for i in 0..999 {
            m.add("small", start, &format!("visitor-{i}"));
            m.add("small", start, &format!("visitor-{i}"));
        }
        assert_eq!(m.read("small", start).unique_visitors, 999);
    }
}
