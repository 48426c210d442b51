//! [`RateLimiterStats`] and the atomic counters behind it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::striped::{StripedCounter, raw_thread_index, thread_index};
use crate::sync;

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
/// per-thread [`GrantCount`] (a plain add, no locked instruction).
#[derive(Debug, Default)]
pub(crate) struct Totals {
    /// `waited`, `waiting` and `rejected` (its `granted` is unused).
    pub(crate) counts: Counters,
    granted: GrantCount,
}

impl Totals {
    /// Totals whose grant count keeps no inline slot: for a keyed limiter, whose calls
    /// on distinct keys must not write the cache line its shared limits sit on.
    pub(crate) fn without_inline_slot() -> Totals {
        Totals { counts: Counters::default(), granted: GrantCount::without_inline_slot() }
    }

    /// Calls granted since creation or the last `reset`.
    pub(crate) fn granted(&self) -> u64 {
        self.granted.sum()
    }

    pub(crate) fn reset(&self) {
        self.counts.reset();
        self.granted.reset();
    }
}

/// `owner` of a [`GrantCount`] whose inline slot no thread holds yet.
const FREE: u32 = u32::MAX - 8;
/// `owner` of a [`GrantCount`] without an inline slot.
const NOBODY: u32 = u32::MAX - 9;

/// A count of grants that costs 40 bytes until a second thread counts.
///
/// The first thread to count claims the inline slot (`owner` becomes its
/// [thread index](crate::striped::thread_index)) and adds to it with a plain load and
/// store: it is the only writer, and when it exits, its index (and with it the slot)
/// passes to the next thread through a mutex. Every other thread counts in a
/// [`StripedCounter`] allocated when the first of them counts. A limiter used from one
/// thread never allocates its 512 bytes of cache-padded slots.
#[derive(Debug)]
pub(crate) struct GrantCount {
    solo: sync::AtomicU64,
    owner: sync::AtomicU32,
    /// `solo` at the last reset (its owner's stores cannot be overwritten safely).
    solo_base: AtomicU64,
    others: OnceLock<Box<StripedCounter>>,
}

impl Default for GrantCount {
    fn default() -> Self {
        GrantCount::with_owner(FREE)
    }
}

impl GrantCount {
    fn with_owner(owner: u32) -> GrantCount {
        GrantCount {
            solo: sync::AtomicU64::new(0),
            owner: sync::AtomicU32::new(owner),
            solo_base: AtomicU64::new(0),
            others: OnceLock::new(),
        }
    }

    /// A count whose every thread uses the striped slots.
    pub(crate) fn without_inline_slot() -> GrantCount {
        GrantCount::with_owner(NOBODY)
    }

    /// Adds one.
    #[inline(always)]
    pub(crate) fn incr(&self) {
        self.incr_for(raw_thread_index(), thread_index);
    }

    /// Adds one for the thread whose raw index is `raw` (`index` registers it). Split
    /// out for the loom model, whose threads share one OS thread's thread-locals and so
    /// pass indices of their own.
    #[inline(always)]
    fn incr_for(&self, raw: u32, index: fn() -> Option<u32>) {
        if raw == self.owner.load(sync::Ordering::Relaxed) {
            add_owned(&self.solo);
        } else if let Some(others) = self.others.get() {
            others.incr();
        } else {
            self.incr_slow(index());
        }
    }

    #[cold]
    #[inline(never)]
    fn incr_slow(&self, index: Option<u32>) {
        if let Some(index) = index {
            let owner = self.owner.load(sync::Ordering::Relaxed);
            let claimed = owner == index
                || (owner == FREE
                    && self
                        .owner
                        .compare_exchange(
                            FREE,
                            index,
                            sync::Ordering::Relaxed,
                            sync::Ordering::Relaxed,
                        )
                        .is_ok());
            if claimed {
                return add_owned(&self.solo);
            }
        }
        self.others.get_or_init(|| Box::new(StripedCounter::new())).incr();
    }

    /// The count since creation or the last [`reset`](Self::reset).
    pub(crate) fn sum(&self) -> u64 {
        let solo = self
            .solo
            .load(sync::Ordering::Relaxed)
            .wrapping_sub(self.solo_base.load(Ordering::Relaxed));
        solo.wrapping_add(self.others.get().map_or(0, |o| o.sum()))
    }

    /// Starts counting from zero again (additions racing with it may or may not count).
    pub(crate) fn reset(&self) {
        self.solo_base.store(self.solo.load(sync::Ordering::Relaxed), Ordering::Relaxed);
        if let Some(others) = self.others.get() {
            others.reset();
        }
    }
}

/// Adds one to a slot that only the current thread writes: no read-modify-write, so
/// a second writer would lose counts (the loom model checks that none exists).
#[inline(always)]
fn add_owned(slot: &sync::AtomicU64) {
    slot.store(slot.load(sync::Ordering::Relaxed).wrapping_add(1), sync::Ordering::Relaxed);
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
    fn one_thread_counts_inline_without_allocating() {
        let c = GrantCount::default();
        for _ in 0..1000 {
            c.incr();
        }
        assert_eq!(c.sum(), 1000);
        assert!(c.others.get().is_none(), "one thread must not allocate the striped slots");
        c.reset();
        assert_eq!(c.sum(), 0);
        c.incr();
        assert_eq!(c.sum(), 1);
    }

    #[test]
    fn many_threads_count_exactly_and_only_one_owns_the_inline_slot() {
        let c = GrantCount::default();
        c.incr();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        c.incr();
                    }
                });
            }
        });
        assert_eq!(c.sum(), 80_001);
        // This thread counted first and kept the inline slot; the others striped.
        assert_eq!(c.solo.load(Ordering::Relaxed), 1);
        assert!(c.others.get().is_some_and(|o| o.sum() == 80_000));
        c.reset();
        assert_eq!(c.sum(), 0);
    }

    #[test]
    fn a_count_without_inline_slot_stripes_every_thread() {
        let c = GrantCount::without_inline_slot();
        c.incr();
        c.incr();
        assert_eq!(c.sum(), 2);
        assert_eq!(c.solo.load(Ordering::Relaxed), 0);
        assert_eq!(c.owner.load(Ordering::Relaxed), NOBODY);
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

#[cfg(all(test, resilience_loom))]
mod loom_tests {
    use std::sync::Arc;

    use loom::thread;

    use super::*;

    /// Two threads (indices 0 and 1) count twice each, racing to claim the inline slot:
    /// exactly one owns it, and no count is lost (a second writer of the inline slot
    /// would lose one, as it adds with a plain load and store).
    #[test]
    fn loom_grant_count_has_one_inline_owner_and_loses_nothing() {
        loom::model(|| {
            let c = Arc::new(GrantCount::default());
            let other = {
                let c = c.clone();
                thread::spawn(move || {
                    c.incr_for(u32::MAX - 1, || Some(1));
                    c.incr_for(1, || Some(1));
                })
            };
            c.incr_for(u32::MAX - 1, || Some(0));
            c.incr_for(0, || Some(0));
            let _ = other.join();
            assert_eq!(c.sum(), 4);
            let owner = c.owner.load(sync::Ordering::Relaxed);
            assert!(owner == 0 || owner == 1, "owner {owner}");
            assert_eq!(c.solo.load(sync::Ordering::Relaxed), 2);
        });
    }
}
