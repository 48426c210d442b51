//! A retry loop driven one attempt at a time, for the code the attribute macros generate.
//!
//! The generated code runs the attempts itself (an inline `loop` around the user's body,
//! so the body may borrow `&mut self` and the future stays `Send`), and asks this stepper
//! what to do after each one: the same decisions, tracing events and budget accounting as
//! [`RetryPolicy::run`] / [`RetryPolicy::run_async`].

use std::fmt::Debug;
use std::time::Duration;

use super::attempt::{Attempts, Next, View};
use super::hooks::RetryHooks;
use super::policy::RetryPolicy;
use crate::Fault;

/// One call through a policy, decided attempt by attempt.
pub(crate) struct Stepper<'p> {
    policy: &'p RetryPolicy,
    attempts: Attempts<'p>,
}

impl<'p> Stepper<'p> {
    /// Starts a call (deposits in the budget, reads the clock if a deadline is set).
    #[inline]
    pub(crate) fn start(policy: &'p RetryPolicy) -> Self {
        Stepper { policy, attempts: Attempts::start(&policy.inner) }
    }

    /// `Ok(result)`: return it; `Err(delay)`: sleep `delay`, then run another attempt.
    #[inline]
    pub(crate) fn next<T, E, H>(
        &mut self,
        hooks: &H,
        result: Result<T, Fault<E>>,
    ) -> Result<Result<T, Fault<E>>, Duration>
    where
        E: Debug,
        H: RetryHooks<T, E> + ?Sized,
    {
        match self.attempts.next(hooks, result, View::of_fault) {
            Next::Done(result) => Ok(result),
            Next::Retry(delay) => Err(delay),
        }
    }

    /// Runs one blocking attempt inside the call's deadline, if any.
    #[inline]
    pub(crate) fn attempt<R>(&self, f: impl FnOnce() -> R) -> R {
        self.attempts.run(f)
    }

    /// Awaits one attempt inside the call's deadline, if any.
    #[cfg(feature = "tokio")]
    #[inline]
    pub(crate) async fn attempt_async<F: std::future::Future>(
        &self,
        fut: std::pin::Pin<&mut F>,
    ) -> F::Output {
        match self.attempts.deadline() {
            None => fut.await,
            Some(deadline) => crate::deadline::scope_async(deadline, fut).await,
        }
    }

    /// Blocks for `delay` on the policy's clock (the blocking driver's sleep).
    pub(crate) fn sleep_blocking(&self, delay: Duration) {
        self.policy.inner.clock.sleep(delay);
    }
}
