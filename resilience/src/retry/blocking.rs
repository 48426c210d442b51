//! The blocking driver: sleeps with the policy's clock.

use std::fmt::Debug;

use super::attempt::{Attempts, Next, View};
use super::hooks::{DefaultHooks, RetryHooks};
use super::policy::RetryPolicy;
use crate::Fault;

impl RetryPolicy {
    /// Calls `op` until it succeeds, retrying **every** error, within the policy's
    /// limits; returns the last error when they run out.
    ///
    /// The first attempt takes no lock and allocates nothing; the clock is read only when
    /// a deadline is set. With a deadline, each attempt runs inside it: the layers below
    /// (rate limiter, bulkhead, timeout) never wait past it.
    pub fn call<T, E, F>(&self, op: F) -> Result<T, E>
    where
        E: Debug,
        F: FnMut() -> Result<T, E>,
    {
        self.call_with(&DefaultHooks, op)
    }

    /// [`call`](Self::call) with hooks deciding which errors (and values) to retry.
    pub fn call_with<T, E, H, F>(&self, hooks: &H, op: F) -> Result<T, E>
    where
        E: Debug,
        H: RetryHooks<T, E> + ?Sized,
        F: FnMut() -> Result<T, E>,
    {
        self.drive(hooks, op, View::of_error)
    }

    /// The layer form, for pipelines: rejections by inner layers are told apart from the
    /// operation's errors.
    ///
    /// * `Fault::Inner(e)`: retried if `hooks.should_retry(&e)`.
    /// * `Fault::Rejected(CircuitOpen | Config)`: returned at once, never retried.
    /// * `Fault::Rejected(RateLimited { retry_after })`: retried after
    ///   `max(computed delay, retry_after)` (waiting less is pointless; if that wait
    ///   would pass the deadline, the rejection is returned). Counts as an attempt and
    ///   against the budget.
    /// * `Fault::Rejected(Timeout | BulkheadFull)`: retried like a transient error.
    ///
    /// The hooks' `should_retry` is not consulted for rejections.
    pub fn run<T, E, H, F>(&self, hooks: &H, op: F) -> Result<T, Fault<E>>
    where
        E: Debug,
        H: RetryHooks<T, E> + ?Sized,
        F: FnMut() -> Result<T, Fault<E>>,
    {
        self.drive(hooks, op, View::of_fault)
    }

    #[inline]
    fn drive<T, X, E, H, F>(
        &self,
        hooks: &H,
        mut op: F,
        view: fn(&X) -> View<'_, E>,
    ) -> Result<T, X>
    where
        E: Debug,
        H: RetryHooks<T, E> + ?Sized,
        F: FnMut() -> Result<T, X>,
    {
        if self.inner.deadline.is_some() {
            return self.drive_within_deadline(hooks, op, view);
        }
        let mut attempts = Attempts::start(&self.inner);
        loop {
            match attempts.next(hooks, op(), view) {
                Next::Done(result) => return result,
                Next::Retry(delay) => self.inner.clock.sleep(delay),
            }
        }
    }

    /// [`drive`](Self::drive) for a policy with a deadline: each attempt runs inside it.
    /// Out of line, so that a call without a deadline keeps its state in registers.
    #[inline(never)]
    fn drive_within_deadline<T, X, E, H, F>(
        &self,
        hooks: &H,
        mut op: F,
        view: fn(&X) -> View<'_, E>,
    ) -> Result<T, X>
    where
        E: Debug,
        H: RetryHooks<T, E> + ?Sized,
        F: FnMut() -> Result<T, X>,
    {
        let mut attempts = Attempts::start(&self.inner);
        loop {
            let result = attempts.run(&mut op);
            match attempts.next(hooks, result, view) {
                Next::Done(result) => return result,
                Next::Retry(delay) => self.inner.clock.sleep(delay),
            }
        }
    }
}
