//! A statistics counter striped over cache-padded slots, so that threads counting at
//! the same time do not fight over one cache line.
//!
//! Each thread adds to the slot of its own stripe (threads get stripes round-robin, in
//! the order they first count); a read sums the slots. The sum is exact once the
//! additions it should see have happened-before the read (e.g. the counting threads were
//! joined); a read racing with additions sees some of them, as with a single counter.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::AtomicUsize;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering};

/// Slots per counter: distinct for the first `STRIPES` threads that count.
const STRIPES: usize = 4;

/// A `u64` counter that scales with concurrent writers.
pub(crate) struct StripedCounter {
    slots: Box<[CachePadded<AtomicU64>; STRIPES]>,
}

/// The stripe of the current thread.
#[inline]
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STRIPES;
                s.set(i);
            }
            i
        })
        // During thread teardown the thread-local may be gone: any slot is correct.
        .unwrap_or(0)
}

impl StripedCounter {
    /// A counter at zero.
    pub(crate) fn new() -> Self {
        StripedCounter {
            slots: Box::new([
                CachePadded::new(AtomicU64::new(0)),
                CachePadded::new(AtomicU64::new(0)),
                CachePadded::new(AtomicU64::new(0)),
                CachePadded::new(AtomicU64::new(0)),
            ]),
        }
    }

    /// Adds one (wrapping, like `fetch_add`).
    #[inline]
    pub(crate) fn incr(&self) {
        if let Some(slot) = self.slots.get(stripe()) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The sum of the slots.
    pub(crate) fn sum(&self) -> u64 {
        self.slots.iter().fold(0u64, |acc, s| acc.wrapping_add(s.load(Ordering::Relaxed)))
    }
}

impl Default for StripedCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StripedCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StripedCounter").field(&self.sum()).finish()
    }
}

#[cfg(all(test, not(resilience_loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_exactly_across_many_threads() {
        let c = StripedCounter::new();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        c.incr();
                    }
                });
            }
        });
        assert_eq!(c.sum(), 80_000);
        c.incr();
        assert_eq!(c.sum(), 80_001);
    }

    #[test]
    fn a_thread_keeps_its_stripe_and_stripes_are_in_range() {
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(stripe).join().unwrap_or(usize::MAX);
            let b = s.spawn(stripe).join().unwrap_or(usize::MAX);
            (a, b)
        });
        assert!(a < STRIPES && b < STRIPES);
        assert_eq!(stripe(), stripe(), "a thread keeps its stripe");
    }
}
