//! The deadline of the call in progress, as the layers below a retry see it.
//!
//! A retry policy with a [`deadline`](crate::retry::RetryPolicyBuilder::deadline) runs
//! each attempt inside a scope that holds the deadline: a thread-local for blocking
//! code, set around every poll of the attempt's future for async code. The layers below
//! read it only on their slow paths: a rate limiter about to wait, a bulkhead about to
//! wait, a timeout about to start. Without a deadline nothing is set and nothing is read.
//!
//! The deadline is measured on the retry policy's clock, so every layer below compares
//! its wait with the time left on that one clock.

use std::cell::Cell;
#[cfg(feature = "tokio")]
use std::pin::Pin;
use std::time::Duration;

use crate::clock::SharedClock;

/// An end of the whole call: a reading of `clock` past which nothing may wait.
#[derive(Clone)]
pub(crate) struct Deadline {
    at: Duration,
    clock: SharedClock,
}

thread_local! {
    static CURRENT: Cell<Option<Deadline>> = const { Cell::new(None) };
}

impl Deadline {
    /// The deadline `limit` after `start` (a reading of `clock`), or the enclosing
    /// call's deadline if that one comes first.
    #[cfg(test)]
    pub(crate) fn after(start: Duration, limit: Duration, clock: &SharedClock) -> Deadline {
        Deadline::at(Deadline::end_after(start, limit), clock)
    }

    /// The reading of the clock `limit` after `start`, or sooner if the enclosing call's
    /// deadline comes first.
    pub(crate) fn end_after(start: Duration, limit: Duration) -> Duration {
        let limit = match remaining() {
            Some(outer) => limit.min(outer),
            None => limit,
        };
        start.saturating_add(limit)
    }

    /// The deadline at the reading `end` of `clock`.
    pub(crate) fn at(end: Duration, clock: &SharedClock) -> Deadline {
        Deadline { at: end, clock: clock.clone() }
    }

    /// The time left before the deadline (zero once it has passed).
    pub(crate) fn remaining(&self) -> Duration {
        self.at.saturating_sub(self.clock.now())
    }
}

/// The time left before the deadline of the call in progress on this thread or task, if
/// it has one.
pub(crate) fn remaining() -> Option<Duration> {
    CURRENT.with(|cell| {
        let current = cell.take();
        let left = current.as_ref().map(Deadline::remaining);
        cell.set(current);
        left
    })
}

/// `limit`, or less if the call in progress has less time left.
#[inline]
pub(crate) fn cap(limit: Duration) -> Duration {
    match remaining() {
        Some(left) => limit.min(left),
        None => limit,
    }
}

/// Runs `f` with `deadline` as the deadline of the call in progress.
pub(crate) fn scope<R>(deadline: &Deadline, f: impl FnOnce() -> R) -> R {
    let mut slot = Some(deadline.clone());
    let _entered = Entered::new(&mut slot);
    f()
}

#[cfg(feature = "tokio")]
/// Awaits `fut` with `deadline` as the deadline of the call in progress: the deadline is
/// set around each poll, so it follows the future across threads and never leaks to
/// other tasks. Allocates nothing; the future is pinned by the caller, so that it is
/// stored once, in the caller's state.
pub(crate) async fn scope_async<F: Future>(deadline: Deadline, mut fut: Pin<&mut F>) -> F::Output {
    let mut slot = Some(deadline);
    std::future::poll_fn(move |cx| {
        let _entered = Entered::new(&mut slot);
        fut.as_mut().poll(cx)
    })
    .await
}

/// The deadline moved into the thread-local for a while; moved back out (and the
/// enclosing one restored) on drop, even when the scope unwinds.
struct Entered<'a> {
    slot: &'a mut Option<Deadline>,
    outer: Option<Deadline>,
}

impl<'a> Entered<'a> {
    fn new(slot: &'a mut Option<Deadline>) -> Self {
        let outer = CURRENT.with(|cell| cell.replace(slot.take()));
        Entered { slot, outer }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let outer = self.outer.take();
        *self.slot = CURRENT.with(|cell| cell.replace(outer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn scopes_nest_and_restore() {
        let clock = ManualClock::new();
        let shared = clock.shared();
        assert_eq!(remaining(), None);
        let outer = Deadline::after(shared.now(), Duration::from_secs(10), &shared);
        scope(&outer, || {
            assert_eq!(remaining(), Some(Duration::from_secs(10)));
            clock.advance(Duration::from_secs(4));
            assert_eq!(cap(Duration::from_secs(30)), Duration::from_secs(6));
            // An inner deadline never outlives the outer one.
            let inner = Deadline::after(shared.now(), Duration::from_secs(60), &shared);
            scope(&inner, || assert_eq!(remaining(), Some(Duration::from_secs(6))));
            let short = Deadline::after(shared.now(), Duration::from_secs(1), &shared);
            scope(&short, || assert_eq!(remaining(), Some(Duration::from_secs(1))));
            assert_eq!(remaining(), Some(Duration::from_secs(6)));
        });
        assert_eq!(remaining(), None);
        assert_eq!(cap(Duration::from_secs(3)), Duration::from_secs(3));
    }
}
