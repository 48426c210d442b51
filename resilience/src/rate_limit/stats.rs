//! [`RateLimiterStats`] and the atomic counters behind it.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::striped::StripedCounter;

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

/// Live counters of one bucket (a keyed limiter's key).
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

/// Live counters of a whole limiter. Every granted call counts here, so `granted` is a
/// per-thread [`StripedCounter`] (a plain add, no locked instruction).
#[derive(Debug, Default)]
pub(crate) struct Totals {
    /// `waited`, `waiting` and `rejected` (its `granted` is unused).
    pub(crate) counts: Counters,
    granted: StripedCounter,
}

impl Totals {
    /// Calls granted since creation or the last `reset`.
    pub(crate) fn granted(&self) -> u64 {
        self.granted.sum()
    }

    pub(crate) fn reset(&self) {
        self.counts.reset();
        self.granted.reset();
    }
}

/// The counters a call updates: its key's (keyed limiters), and the limiter's totals.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tally<'a> {
    pub(crate) key: Option<&'a Counters>,
    pub(crate) totals: &'a Totals,
}

impl Tally<'_> {
    #[inline]
    fn each(&self, f: impl Fn(&Counters)) {
        if let Some(k) = self.key {
            f(k);
        }
        f(&self.totals.counts);
    }

    #[inline]
    pub(crate) fn granted(&self) {
        if let Some(k) = self.key {
            k.granted.fetch_add(1, Ordering::Relaxed);
        }
        self.totals.granted.incr();
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

    /// Joins the wait queue unless `limit` callers already wait (per key for a keyed
    /// limiter, per limiter for a direct one).
    pub(crate) fn enter_wait(&self, limit: Option<usize>) -> bool {
        let (local, total) = match self.key {
            Some(k) => (k, Some(&self.totals.counts)),
            None => (&self.totals.counts, None),
        };
        let limit = limit.map_or(u64::MAX, |l| u64::try_from(l).unwrap_or(u64::MAX));
        let entered = local
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| (w < limit).then(|| w + 1))
            .is_ok();
        if let (true, Some(t)) = (entered, total) {
            t.waiting.fetch_add(1, Ordering::Relaxed);
        }
        entered
    }

    /// Callers waiting now (the whole limiter's, for a keyed one).
    pub(crate) fn waiting(&self) -> u64 {
        self.totals.counts.waiting.load(Ordering::Relaxed)
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
        let totals = Totals::default();
        let t = Tally { key: Some(&c), totals: &totals };
        assert!(t.enter_wait(Some(2)));
        assert!(t.enter_wait(Some(2)));
        assert!(!t.enter_wait(Some(2)));
        assert_eq!(totals.counts.waiting.load(Ordering::Relaxed), 2);
        t.leave_wait();
        assert!(t.enter_wait(Some(2)));
        t.leave_wait();
        t.leave_wait();
        t.leave_wait();
        assert_eq!(c.waiting.load(Ordering::Relaxed), 0);
        assert_eq!(totals.counts.waiting.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn totals_count_grants_and_reset_to_zero() {
        let totals = Totals::default();
        let t = Tally { key: None, totals: &totals };
        t.granted();
        t.granted();
        t.rejected();
        assert_eq!((totals.granted(), totals.counts.rejected.load(Ordering::Relaxed)), (2, 1));
        totals.reset();
        assert_eq!((totals.granted(), totals.counts.rejected.load(Ordering::Relaxed)), (0, 0));
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| t.granted());
            }
        });
        assert_eq!(totals.granted(), 3);
    }
}
