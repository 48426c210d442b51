//! [`RateLimiterStats`] and the atomic counters behind it.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a limiter's state and counters.
///
/// Counters run from creation or the last `reset()`; `granted`, `waited` and `rejected`
/// count calls (not permits).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RateLimiterStats {
    /// The limiter's name.
    pub name: String,
    /// Permits available now (for a keyed limiter's totals: what a new key gets, the burst).
    pub available: u32,
    /// Bucket capacity (burst).
    pub capacity: u32,
    /// Refill rate in permits per second.
    pub rate_per_second: f64,
    /// Calls granted (at once or after waiting).
    pub granted: u64,
    /// Calls that had to wait for their permits.
    pub waited: u64,
    /// Calls waiting right now.
    pub waiting: u64,
    /// Calls rejected (no permit and `Reject`, wait over `max_wait`, queue full, cost
    /// over the burst).
    pub rejected: u64,
    /// Keys in memory (keyed limiters only).
    pub keys: Option<u64>,
}

/// Live counters of one bucket or of a whole limiter.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) granted: AtomicU64,
    pub(crate) waited: AtomicU64,
    pub(crate) waiting: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

impl Counters {
    pub(crate) fn reset(&self) {
        self.granted.store(0, Ordering::Relaxed);
        self.waited.store(0, Ordering::Relaxed);
        self.rejected.store(0, Ordering::Relaxed);
    }
}

/// The counters a call updates: its bucket's, and the limiter totals when they differ.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tally<'a> {
    pub(crate) local: &'a Counters,
    pub(crate) total: Option<&'a Counters>,
}

impl Tally<'_> {
    #[inline]
    fn each(&self, f: impl Fn(&Counters)) {
        f(self.local);
        if let Some(t) = self.total {
            f(t);
        }
    }

    #[inline]
    pub(crate) fn granted(&self) {
        self.each(|c| {
            c.granted.fetch_add(1, Ordering::Relaxed);
        });
    }

    pub(crate) fn rejected(&self) {
        self.each(|c| {
            c.rejected.fetch_add(1, Ordering::Relaxed);
        });
    }

    pub(crate) fn waited(&self) {
        self.each(|c| {
            c.waited.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// Enters the wait queue; with a `limit`, only while fewer than `limit` wait here.
    pub(crate) fn enter_wait(&self, limit: Option<usize>) -> bool {
        let limit = limit.map_or(u64::MAX, |l| u64::try_from(l).unwrap_or(u64::MAX));
        let entered = self
            .local
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| (w < limit).then(|| w + 1))
            .is_ok();
        if let (true, Some(t)) = (entered, self.total) {
            t.waiting.fetch_add(1, Ordering::Relaxed);
        }
        entered
    }

    pub(crate) fn leave_wait(&self) {
        self.each(|c| {
            let _ =
                c.waiting.fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| w.checked_sub(1));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_queue_respects_its_limit() {
        let c = Counters::default();
        let total = Counters::default();
        let t = Tally { local: &c, total: Some(&total) };
        assert!(t.enter_wait(Some(2)));
        assert!(t.enter_wait(Some(2)));
        assert!(!t.enter_wait(Some(2)));
        assert_eq!(total.waiting.load(Ordering::Relaxed), 2);
        t.leave_wait();
        assert!(t.enter_wait(Some(2)));
        t.leave_wait();
        t.leave_wait();
        t.leave_wait();
        assert_eq!(c.waiting.load(Ordering::Relaxed), 0);
        assert_eq!(total.waiting.load(Ordering::Relaxed), 0);
    }
}
