//! A counting global allocator: heap allocations per thread, live heap bytes per process.
//!
//! A binary opts in with
//! `#[global_allocator] static ALLOC: CountingAllocator = CountingAllocator;`.
//! The per-thread count lets tests that run in parallel each see only their own
//! allocations; the live-bytes total measures the heap a data structure holds.
//!
//! ```
//! use resilience_benches::alloc::{allocations_during, thread_allocations};
//!
//! // Without the allocator installed the counters stay at zero; with it installed,
//! // `allocations_during(|| Box::new(1))` is 1.
//! let (n, value) = allocations_during(|| 2 + 2);
//! assert_eq!((n, value), (0, 4));
//! assert_eq!(thread_allocations(), 0);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    // `const` init and a type without `Drop`: no lazy registration, so reading it never
    // allocates (which would recurse into the allocator).
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting allocations (per thread) and live bytes (per process).
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

fn count_allocation() {
    let _ = THREAD_ALLOCATIONS.try_with(|c| c.set(c.get().saturating_add(1)));
}

#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees are ours; the bookkeeping only touches a thread-local `Cell` and
// an atomic, neither of which allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours (non-zero-size layout, guaranteed by the caller).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        }
        new
    }
}

/// Heap allocations (including reallocations) made by the current thread so far.
pub fn thread_allocations() -> u64 {
    THREAD_ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

/// Run `f` and return how many heap allocations the current thread made meanwhile.
pub fn allocations_during<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = thread_allocations();
    let out = f();
    (thread_allocations().saturating_sub(before), out)
}

/// Bytes currently allocated on the heap by the whole process (through this allocator).
pub fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}
