//! A statistics counter with one slot per thread, so that counting is a plain load and
//! store (no locked instruction).
//!
//! Every thread that counts takes a small process-wide index, unique among live threads
//! (an exiting thread hands its index back, and the next new thread reuses the lowest
//! free one). A slot is written only by the thread holding its index, so an increment
//! needs no read-modify-write: nothing else writes the slot in between.
//!
//! A counter costs what its use needs. The first thread that counts becomes its owner
//! and counts in one inline slot: a counter only one thread ever counts in (most of
//! them) allocates nothing. When a second thread counts, the counter allocates the
//! slots of the first [`FIRST`] indices, and from then on every thread, the owner
//! included, counts in its own slot (the inline slot keeps what the owner counted
//! before). Indices past those get slots in growing segments allocated on first use;
//! indices past the last segment, and a thread counting while its thread-locals are
//! being torn down, share one slot updated with `fetch_add`.
//!
//! The slots' [`Layout`] is the counter's trade between memory and contention:
//! [`Padded`] gives each slot cache lines of its own (threads counting at once never
//! share a line; 512 bytes for the first four slots), [`Packed`] puts them side by side
//! (32 bytes; threads counting at once move one line between their cores).
//!
//! A read sums the slots. The sum is exact once the additions it should see have
//! happened-before the read (e.g. the counting threads were joined); a read racing with
//! additions sees some of them, as with a single counter. A reset records the sum it
//! starts from (writing the slots could lose the race with their owners' stores).

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::OnceLock;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Slots allocated with the counter: indices `0..FIRST`.
const FIRST: usize = 4;

/// Further segments: segment `s` holds indices `FIRST << s .. FIRST << (s + 1)`, so
/// `FIRST << SEGMENTS` threads (4096) have a slot of their own.
const SEGMENTS: usize = 10;

/// The index of a thread that has not counted yet.
const UNSET: u32 = u32::MAX - 1;
/// The index of a thread whose index was handed back (thread-locals torn down).
const SHARED: u32 = u32::MAX;
/// The owner of a counter no thread has counted in yet (no thread holds this index).
const NO_OWNER: u32 = u32::MAX - 2;

/// How a counter lays out its per-thread slots.
pub(crate) trait Layout: 'static {
    /// One thread's slot.
    type Slot: std::ops::Deref<Target = AtomicU64> + Send + Sync;

    /// A slot at zero.
    fn slot() -> Self::Slot;
}

/// Every slot on cache lines of its own (128 bytes a slot): threads counting at once
/// never touch the same line. For counters whose callers already share nothing else.
pub(crate) struct Padded;

impl Layout for Padded {
    type Slot = CachePadded<AtomicU64>;

    fn slot() -> Self::Slot {
        CachePadded::new(AtomicU64::new(0))
    }
}

/// Slots side by side (8 bytes a slot): threads counting at once share the slots' cache
/// line, which then moves between their cores, but each still counts with a plain load
/// and store. A sixteenth of [`Padded`]'s memory, for counters of objects kept by the
/// million (a circuit breaker's successes).
pub(crate) struct Packed;

/// A slot of a [`Packed`] counter.
pub(crate) struct PackedSlot(AtomicU64);

impl std::ops::Deref for PackedSlot {
    type Target = AtomicU64;

    #[inline(always)]
    fn deref(&self) -> &AtomicU64 {
        &self.0
    }
}

impl Layout for Packed {
    type Slot = PackedSlot;

    fn slot() -> Self::Slot {
        PackedSlot(AtomicU64::new(0))
    }
}

/// A `u64` counter that scales with concurrent writers, its per-thread slots laid out
/// as `L` says.
pub(crate) struct StripedCounter<L: Layout = Padded> {
    /// The index of the thread counting in `own`: the first that counted, `NO_OWNER`
    /// before.
    owner: AtomicU32,
    /// The owner's slot while it is the only thread that has counted.
    own: AtomicU64,
    /// The padded slots of indices `0..FIRST`, allocated when a second thread counts.
    first: OnceLock<Box<[L::Slot; FIRST]>>,
    more: OnceLock<Box<Overflow<L>>>,
    /// The sum of the slots at the last reset.
    base: AtomicU64,
}

/// The slots of indices `FIRST..`, and the shared slot.
struct Overflow<L: Layout> {
    segments: [OnceLock<Box<[L::Slot]>>; SEGMENTS],
    shared: L::Slot,
}

thread_local! {
    /// This thread's index, `UNSET` or `SHARED`. No destructor, so it stays readable
    /// while other thread-locals are torn down.
    static INDEX: Cell<u32> = const { Cell::new(UNSET) };
    /// Hands the index back when the thread exits.
    static RELEASE: Release = const { Release };
}

/// Free indices (lowest first) and the next never-used one.
struct Indices {
    free: BinaryHeap<Reverse<u32>>,
    next: u32,
}

static INDICES: std::sync::Mutex<Indices> =
    std::sync::Mutex::new(Indices { free: BinaryHeap::new(), next: 0 });

fn indices() -> std::sync::MutexGuard<'static, Indices> {
    INDICES.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        let index = INDEX.with(|i| i.replace(SHARED));
        if index < UNSET {
            // The mutex orders this thread's last writes to its slots before the next
            // owner's first read of them.
            indices().free.push(Reverse(index));
        }
    }
}

/// This thread's index, taking one on first use (`SHARED` if that is impossible).
#[cold]
fn register() -> u32 {
    // Registering the destructor first: if it cannot be (the thread is exiting), the
    // index could never be handed back, so this thread uses the shared slot.
    if RELEASE.try_with(|_| ()).is_err() {
        INDEX.with(|i| i.set(SHARED));
        return SHARED;
    }
    let index = {
        let mut ids = indices();
        match ids.free.pop() {
            Some(Reverse(i)) => i,
            None => {
                let i = ids.next;
                ids.next = ids.next.saturating_add(1).min(NO_OWNER - 1);
                i
            }
        }
    };
    INDEX.with(|i| i.set(index));
    index
}

/// The current thread's raw index: `UNSET` before it first counted, `SHARED` once its
/// index was handed back, else an index unique among live threads. One thread-local
/// read, for hot paths that key a slot of their own by it.
#[inline(always)]
pub(crate) fn raw_thread_index() -> u32 {
    INDEX.with(Cell::get)
}

/// The current thread's index, taking one on first use; `None` for a thread without
/// an index of its own (exiting, or past the last index). An index is held by one live
/// thread at a time, and handing it to the next thread goes through a mutex, so a slot
/// keyed by it can be updated with a plain load and store.
pub(crate) fn thread_index() -> Option<u32> {
    let index = match INDEX.with(Cell::get) {
        UNSET => register(),
        index => index,
    };
    (index < UNSET - 1).then_some(index)
}

/// Adds one to a slot that only the current thread writes.
#[inline(always)]
fn add_owned(slot: &AtomicU64) {
    #[cfg(not(resilience_loom))]
    slot.store(slot.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    // loom runs its model threads on one OS thread, so they share thread-locals.
    #[cfg(resilience_loom)]
    slot.fetch_add(1, Ordering::Relaxed);
}

fn slots<L: Layout>(n: usize) -> Box<[L::Slot]> {
    (0..n).map(|_| L::slot()).collect()
}

impl<L: Layout> StripedCounter<L> {
    /// A counter at zero.
    pub(crate) fn new() -> Self {
        StripedCounter {
            owner: AtomicU32::new(NO_OWNER),
            own: AtomicU64::new(0),
            first: OnceLock::new(),
            more: OnceLock::new(),
            base: AtomicU64::new(0),
        }
    }

    /// Adds one (wrapping).
    #[inline(always)]
    pub(crate) fn incr(&self) {
        let index = INDEX.with(Cell::get);
        match self.first.get() {
            // Only its owner has counted so far: one inline slot.
            None => {
                if self.owner.load(Ordering::Relaxed) == index {
                    return add_owned(&self.own);
                }
            }
            Some(first) => {
                if let Some(slot) = first.get(index as usize) {
                    return add_owned(slot);
                }
            }
        }
        self.incr_slow(index);
    }

    #[inline(never)]
    fn incr_slow(&self, index: u32) {
        let index = if index == UNSET { register() } else { index };
        // The first thread to count (with an index of its own) becomes the owner.
        if self.first.get().is_none() && (index as usize) < FIRST << SEGMENTS {
            match self.owner.compare_exchange(NO_OWNER, index, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return add_owned(&self.own),
                Err(owner) if owner == index => return add_owned(&self.own),
                Err(_) => {}
            }
        }
        // A second thread: every thread counts in a slot of its own from now on.
        let first = self.first.get_or_init(|| Box::new(std::array::from_fn(|_| L::slot())));
        if let Some(slot) = first.get(index as usize) {
            return add_owned(slot);
        }
        let more = self.more.get_or_init(|| {
            Box::new(Overflow {
                segments: std::array::from_fn(|_| OnceLock::new()),
                shared: L::slot(),
            })
        });
        // Index i >= FIRST lies in segment s = log2(i / FIRST), at i - (FIRST << s).
        let i = index as usize;
        let s = (i / FIRST).ilog2() as usize;
        match more.segments.get(s) {
            Some(segment) if index != SHARED => {
                let segment = segment.get_or_init(|| slots::<L>(FIRST << s));
                match segment.get(i - (FIRST << s)) {
                    Some(slot) => add_owned(slot),
                    None => {
                        more.shared.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ => {
                more.shared.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The count since creation or the last [`reset`](Self::reset).
    pub(crate) fn sum(&self) -> u64 {
        self.slots_sum().wrapping_sub(self.base.load(Ordering::Relaxed))
    }

    /// Starts counting from zero again (additions racing with it may or may not count).
    pub(crate) fn reset(&self) {
        self.base.store(self.slots_sum(), Ordering::Relaxed);
    }

    fn slots_sum(&self) -> u64 {
        let add = |acc: u64, s: &L::Slot| acc.wrapping_add(s.load(Ordering::Relaxed));
        let mut total = self.own.load(Ordering::Relaxed);
        if let Some(first) = self.first.get() {
            total = first.iter().fold(total, add);
        }
        if let Some(more) = self.more.get() {
            total = add(total, &more.shared);
            for segment in more.segments.iter().filter_map(OnceLock::get) {
                total = segment.iter().fold(total, add);
            }
        }
        total
    }
}

impl<L: Layout> Default for StripedCounter<L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: Layout> fmt::Debug for StripedCounter<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StripedCounter").field(&self.sum()).finish()
    }
}

#[cfg(all(test, not(resilience_loom)))]
mod tests {
    use super::*;

    /// A counter to count in once, and where to say it is done.
    type Job<L> = (std::sync::Arc<StripedCounter<L>>, std::sync::mpsc::Sender<()>);

    #[test]
    fn counts_exactly_across_many_threads() {
        counts_exactly_across_many_threads_in::<Padded>();
        counts_exactly_across_many_threads_in::<Packed>();
    }

    fn counts_exactly_across_many_threads_in<L: Layout + Send + Sync>() {
        let c = StripedCounter::<L>::new();
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
        c.reset();
        assert_eq!(c.sum(), 0);
        c.incr();
        assert_eq!(c.sum(), 1);
    }

    #[test]
    fn one_thread_counts_inline_until_a_second_thread_counts() {
        one_thread_counts_inline_until_a_second_thread_counts_in::<Padded>();
        one_thread_counts_inline_until_a_second_thread_counts_in::<Packed>();
    }

    fn one_thread_counts_inline_until_a_second_thread_counts_in<L: Layout + Send + Sync>() {
        let c = StripedCounter::<L>::new();
        for _ in 0..10 {
            c.incr();
        }
        assert!(c.first.get().is_none(), "one thread: no slots allocated");
        assert_eq!(c.own.load(Ordering::Relaxed), 10);
        std::thread::scope(|s| {
            s.spawn(|| c.incr());
        });
        assert!(c.first.get().is_some(), "a second thread: slots");
        // The owner now counts in its own slot; the inline slot keeps its 10.
        c.incr();
        assert_eq!(c.own.load(Ordering::Relaxed), 10);
        assert_eq!(c.sum(), 12);
    }

    #[test]
    fn owner_and_other_threads_count_exactly_at_the_same_time() {
        owner_and_other_threads_count_exactly_at_the_same_time_in::<Padded>();
        owner_and_other_threads_count_exactly_at_the_same_time_in::<Packed>();
    }

    fn owner_and_other_threads_count_exactly_at_the_same_time_in<L: Layout + Send + Sync>() {
        for _ in 0..20 {
            let c = StripedCounter::<L>::new();
            let barrier = std::sync::Barrier::new(3);
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| {
                        barrier.wait();
                        for _ in 0..2_000 {
                            c.incr();
                        }
                    });
                }
            });
            assert_eq!(c.sum(), 6_000);
        }
    }

    /// Every sequence of up to 6 increments spread over 3 threads, checked step by step
    /// against a reference model: the sum is exact, the first thread counts inline until
    /// a second one counts, and the padded slots exist exactly from then on.
    #[test]
    fn every_short_interleaving_matches_the_reference_model() {
        every_short_interleaving_matches_the_reference_model_in::<Padded>();
        every_short_interleaving_matches_the_reference_model_in::<Packed>();
    }

    fn every_short_interleaving_matches_the_reference_model_in<L: Layout + Send + Sync>() {
        use std::sync::{Arc, mpsc};
        let workers: Vec<mpsc::Sender<Job<L>>> = (0..3)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<Job<L>>();
                std::thread::spawn(move || {
                    for (counter, done) in rx {
                        counter.incr();
                        let _ = done.send(());
                    }
                });
                tx
            })
            .collect();
        let (done_tx, done_rx) = mpsc::channel();
        let mut sequences = 0;
        for len in 1..=6u32 {
            for code in 0..3usize.pow(len) {
                let c = Arc::new(StripedCounter::<L>::new());
                let (mut first_thread, mut inline, mut shared) = (None, 0u64, false);
                let mut rest = code;
                for step in 1..=u64::from(len) {
                    let t = rest % 3;
                    rest /= 3;
                    assert!(workers[t].send((c.clone(), done_tx.clone())).is_ok());
                    assert!(done_rx.recv().is_ok());
                    // The model.
                    let first = *first_thread.get_or_insert(t);
                    shared |= t != first;
                    if !shared {
                        inline += 1;
                    }
                    assert_eq!(c.sum(), step, "sequence {code} of length {len}");
                    assert_eq!(c.own.load(Ordering::Relaxed), inline, "sequence {code}");
                    assert_eq!(c.first.get().is_some(), shared, "sequence {code}");
                }
                sequences += 1;
            }
        }
        assert_eq!(sequences, 3 + 9 + 27 + 81 + 243 + 729);
    }

    #[test]
    fn counts_exactly_with_more_live_threads_than_inline_slots() {
        counts_exactly_with_more_live_threads_than_inline_slots_in::<Padded>();
        counts_exactly_with_more_live_threads_than_inline_slots_in::<Packed>();
    }

    fn counts_exactly_with_more_live_threads_than_inline_slots_in<L: Layout + Send + Sync>() {
        // 40 threads alive at once: indices past the inline slots land in the segments.
        let c = StripedCounter::<L>::new();
        let barrier = std::sync::Barrier::new(40);
        std::thread::scope(|s| {
            for _ in 0..40 {
                s.spawn(|| {
                    c.incr();
                    barrier.wait();
                    for _ in 0..999 {
                        c.incr();
                    }
                });
            }
        });
        assert_eq!(c.sum(), 40_000);
    }

    #[test]
    fn every_index_reaches_a_slot() {
        every_index_reaches_a_slot_in::<Padded>();
        every_index_reaches_a_slot_in::<Packed>();
    }

    fn every_index_reaches_a_slot_in<L: Layout + Send + Sync>() {
        let c = StripedCounter::<L>::new();
        let mut n = 0;
        for index in (0..70).chain([4095, 4096, 1 << 20, UNSET - 1, SHARED]) {
            if index == UNSET {
                continue;
            }
            c.incr_slow(index);
            n += 1;
        }
        assert_eq!(c.sum(), n);
    }

    #[test]
    fn live_threads_hold_distinct_indices_and_exited_ones_hand_them_back() {
        let barrier = std::sync::Barrier::new(3);
        let mut ids = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        StripedCounter::<Padded>::new().incr();
                        let id = INDEX.with(Cell::get);
                        barrier.wait(); // all three alive at once
                        id
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect::<Vec<_>>()
        });
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 3, "distinct while alive: {ids:?}");
        assert!(ids.iter().all(|&i| i < UNSET));
    }

    #[test]
    fn a_thread_past_its_release_counts_in_the_shared_slot() {
        a_thread_past_its_release_counts_in_the_shared_slot_in::<Padded>();
        a_thread_past_its_release_counts_in_the_shared_slot_in::<Packed>();
    }

    fn a_thread_past_its_release_counts_in_the_shared_slot_in<L: Layout + Send + Sync>() {
        let c = StripedCounter::<L>::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                c.incr();
                assert!(INDEX.with(Cell::get) < UNSET);
                drop(Release); // what the thread-local's destructor does at exit
                assert_eq!(INDEX.with(Cell::get), SHARED);
                c.incr();
            });
        });
        assert_eq!(c.sum(), 2);
        assert!(c.more.get().is_some_and(|m| m.shared.load(Ordering::Relaxed) == 1));
    }
}
