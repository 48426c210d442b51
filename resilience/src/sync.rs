//! The synchronisation primitives of the lock-free state machines, swappable for loom's.
//!
//! Built normally these are `std`'s atomics and `parking_lot`'s mutex. Built with
//! `RUSTFLAGS="--cfg resilience_loom"` they are loom's, so the model checker can explore every
//! interleaving of the breaker's state word, its half-open probe permits and the rate
//! limiter's bucket (the loom tests live beside the code they check).

#[cfg(resilience_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};
#[cfg(not(resilience_loom))]
pub(crate) use parking_lot::Mutex;
#[cfg(not(resilience_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};

/// A busy-wait hint (under loom: a yield, so the model can make progress).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(resilience_loom)]
    loom::thread::yield_now();
    #[cfg(not(resilience_loom))]
    std::hint::spin_loop();
}

/// loom's mutex with `parking_lot`'s signature (`lock` returns the guard).
#[cfg(resilience_loom)]
#[derive(Debug)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(resilience_loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
