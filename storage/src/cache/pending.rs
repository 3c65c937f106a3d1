//! Invalidations Redis did not take: kept, merged and retried until it does, never dropped.
//! While any is pending this process reads and writes no shared payload (its own reads are
//! misses, so it cannot serve what it failed to invalidate); other processes' copies are
//! bounded by the entry TTL should Redis stay away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use super::Invalidation;

#[derive(Default)]
pub(crate) struct Pending {
    state: Mutex<State>,
    degraded: AtomicBool,
}

#[derive(Default)]
struct State {
    waiting: Option<Invalidation>,
    retrier_running: bool,
}

impl Pending {
    /// True while an invalidation is waiting or being retried.
    pub(crate) fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Queues `inv`; true if the caller must start a retrier (none is running).
    pub(crate) fn add(&self, inv: Invalidation) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.degraded.store(true, Ordering::Release);
        match &mut state.waiting {
            Some(waiting) => waiting.merge(inv),
            None => state.waiting = Some(inv),
        }
        !std::mem::replace(&mut state.retrier_running, true)
    }

    /// What to retry now (the process stays degraded until [`Pending::finish`]).
    pub(crate) fn take(&self) -> Option<Invalidation> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting
            .take()
    }

    /// Puts back an invalidation whose retry failed.
    pub(crate) fn put_back(&self, inv: Invalidation) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut state.waiting {
            Some(waiting) => waiting.merge(inv),
            None => state.waiting = Some(inv),
        }
    }

    /// Ends the retrier if nothing is waiting (then the process is healthy again).
    pub(crate) fn finish(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.waiting.is_some() {
            return false;
        }
        state.retrier_running = false;
        self.degraded.store(false, Ordering::Release);
        true
    }
}
