//! [`RetryHooks`]: what a retry loop asks about each failure, and what it reports.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::classify::{Classify, RetryAfter};

/// The decisions and notifications of a retry loop. Every method has a default: retry
/// every error, accept every `Ok` value, no server hint, no notification.
pub trait RetryHooks<T, E> {
    /// Whether this error of the operation is worth another attempt (default: `true`).
    /// Not consulted for rejections by inner layers (see
    /// [`RetryPolicy::run`](super::RetryPolicy::run)).
    fn should_retry(&self, error: &E) -> bool {
        let _ = error;
        true
    }

    /// Whether this `Ok` value is a "soft failure" to retry (default: `false`). When the
    /// attempts run out, the last value is returned as `Ok`.
    fn should_retry_result(&self, value: &T) -> bool {
        let _ = value;
        false
    }

    /// The server's "retry after" hint carried by this error (default: none). When the
    /// policy honours hints, it replaces the computed delay, capped by the backoff's
    /// `max_delay`.
    fn retry_after(&self, error: &E) -> Option<Duration> {
        let _ = error;
        None
    }

    /// Called before each retry's sleep.
    fn on_retry(&self, event: &RetryEvent<'_, T, E>) {
        let _ = event;
    }
}

/// Hooks that retry every error and accept every value.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultHooks;

impl<T, E> RetryHooks<T, E> for DefaultHooks {}

/// Hooks for errors that classify themselves: retries [transient](Classify::is_transient)
/// errors and honours their [`RetryAfter`] hint.
///
/// ```
/// use resilience::retry::{Classified, RetryPolicy};
/// use resilience::backoff::Backoff;
/// use std::io::{Error, ErrorKind};
/// use std::time::Duration;
///
/// let policy = RetryPolicy::builder().backoff(Backoff::constant(Duration::ZERO)).build()?;
/// let mut calls = 0;
/// let r: Result<(), Error> = policy.call_with(&Classified, || {
///     calls += 1;
///     Err(ErrorKind::NotFound.into())
/// });
/// assert_eq!(calls, 1, "NotFound is permanent: not retried");
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Classified;

impl<T, E: Classify + RetryAfter> RetryHooks<T, E> for Classified {
    fn should_retry(&self, error: &E) -> bool {
        error.is_transient()
    }

    fn retry_after(&self, error: &E) -> Option<Duration> {
        error.retry_after()
    }
}

/// Closure-based hooks for hand-written code.
///
/// ```
/// use resilience::retry::{Hooks, RetryPolicy, RetryEvent};
/// use resilience::backoff::Backoff;
/// use std::cell::Cell;
/// use std::time::Duration;
///
/// let attempts_seen = Cell::new(Vec::new());
/// let hooks = Hooks::new()
///     .retry_if(|e: &u16| *e >= 500)
///     .on_retry(|ev: &RetryEvent<'_, (), u16>| {
///         let mut v = attempts_seen.take();
///         v.push(ev.attempt);
///         attempts_seen.set(v);
///     });
/// let policy = RetryPolicy::builder()
///     .max_attempts(4)
///     .backoff(Backoff::constant(Duration::ZERO))
///     .build()?;
/// let mut codes = [503, 502, 404, 200].into_iter();
/// let r = policy.call_with(&hooks, || match codes.next() {
///     Some(200) | None => Ok(()),
///     Some(code) => Err(code),
/// });
/// assert_eq!(r, Err(404), "404 is not retried");
/// assert_eq!(attempts_seen.take(), [1, 2]);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
pub struct Hooks<
    T,
    E,
    R = fn(&E) -> bool,
    S = fn(&T) -> bool,
    A = fn(&E) -> Option<Duration>,
    O = fn(&RetryEvent<'_, T, E>),
> {
    retry_if: R,
    retry_on_result: S,
    retry_after: A,
    on_retry: O,
    types: PhantomData<fn(&T, &E)>,
}

impl<T, E> Hooks<T, E> {
    /// Hooks that behave like [`DefaultHooks`] until configured.
    pub fn new() -> Self {
        Hooks {
            retry_if: |_| true,
            retry_on_result: |_| false,
            retry_after: |_| None,
            on_retry: |_| {},
            types: PhantomData,
        }
    }
}

impl<T, E> Default for Hooks<T, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, E, R, S, A, O> Hooks<T, E, R, S, A, O> {
    /// Retry only the errors for which `f` returns `true`.
    pub fn retry_if<F: Fn(&E) -> bool>(self, f: F) -> Hooks<T, E, F, S, A, O> {
        Hooks {
            retry_if: f,
            retry_on_result: self.retry_on_result,
            retry_after: self.retry_after,
            on_retry: self.on_retry,
            types: PhantomData,
        }
    }

    /// Retry the `Ok` values for which `f` returns `true` (soft failures).
    pub fn retry_on_result<F: Fn(&T) -> bool>(self, f: F) -> Hooks<T, E, R, F, A, O> {
        Hooks {
            retry_if: self.retry_if,
            retry_on_result: f,
            retry_after: self.retry_after,
            on_retry: self.on_retry,
            types: PhantomData,
        }
    }

    /// Read a server hint from an error.
    pub fn retry_after<F: Fn(&E) -> Option<Duration>>(self, f: F) -> Hooks<T, E, R, S, F, O> {
        Hooks {
            retry_if: self.retry_if,
            retry_on_result: self.retry_on_result,
            retry_after: f,
            on_retry: self.on_retry,
            types: PhantomData,
        }
    }

    /// Be told about each retry before its sleep.
    pub fn on_retry<F: Fn(&RetryEvent<'_, T, E>)>(self, f: F) -> Hooks<T, E, R, S, A, F> {
        Hooks {
            retry_if: self.retry_if,
            retry_on_result: self.retry_on_result,
            retry_after: self.retry_after,
            on_retry: f,
            types: PhantomData,
        }
    }
}

impl<T, E, R, S, A, O> RetryHooks<T, E> for Hooks<T, E, R, S, A, O>
where
    R: Fn(&E) -> bool,
    S: Fn(&T) -> bool,
    A: Fn(&E) -> Option<Duration>,
    O: Fn(&RetryEvent<'_, T, E>),
{
    fn should_retry(&self, error: &E) -> bool {
        (self.retry_if)(error)
    }

    fn should_retry_result(&self, value: &T) -> bool {
        (self.retry_on_result)(value)
    }

    fn retry_after(&self, error: &E) -> Option<Duration> {
        (self.retry_after)(error)
    }

    fn on_retry(&self, event: &RetryEvent<'_, T, E>) {
        (self.on_retry)(event)
    }
}

impl<T, E, R, S, A, O> fmt::Debug for Hooks<T, E, R, S, A, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

/// One retry about to happen, as told to [`RetryHooks::on_retry`].
#[non_exhaustive]
pub struct RetryEvent<'a, T, E> {
    /// The policy's name, if it has one.
    pub name: Option<&'a str>,
    /// The attempt that just failed, 1-based (the first retry reports `1`).
    pub attempt: u32,
    /// The policy's attempt limit (first call included).
    pub max_attempts: u32,
    /// The sleep before the next attempt.
    pub delay: Duration,
    /// Why the attempt failed.
    pub reason: RetryReason<'a, T, E>,
}

/// Why an attempt is retried.
pub enum RetryReason<'a, T, E> {
    /// The operation returned this error.
    Error(&'a E),
    /// An inner resilience layer rejected the attempt (rate limited, timed out, bulkhead
    /// full).
    Rejected(&'a crate::Error),
    /// The operation returned this value and the hooks asked to retry it.
    Result(&'a T),
}

impl<T, E> Clone for RetryEvent<'_, T, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, E> Copy for RetryEvent<'_, T, E> {}

impl<T, E> Clone for RetryReason<'_, T, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, E> Copy for RetryReason<'_, T, E> {}

impl<T: fmt::Debug, E: fmt::Debug> fmt::Debug for RetryEvent<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryEvent")
            .field("name", &self.name)
            .field("attempt", &self.attempt)
            .field("max_attempts", &self.max_attempts)
            .field("delay", &self.delay)
            .field("reason", &self.reason)
            .finish()
    }
}

impl<T: fmt::Debug, E: fmt::Debug> fmt::Debug for RetryReason<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryReason::Error(e) => f.debug_tuple("Error").field(e).finish(),
            RetryReason::Rejected(e) => f.debug_tuple("Rejected").field(e).finish(),
            RetryReason::Result(v) => f.debug_tuple("Result").field(v).finish(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn default_hooks_retry_errors_and_accept_values() {
        let h = DefaultHooks;
        assert!(RetryHooks::<u8, &str>::should_retry(&h, &"x"));
        assert!(!RetryHooks::<u8, &str>::should_retry_result(&h, &1));
        assert_eq!(RetryHooks::<u8, &str>::retry_after(&h, &"x"), None);
    }

    #[test]
    fn classified_hooks_follow_the_error_class() {
        let h = Classified;
        let reset = Error::from(ErrorKind::ConnectionReset);
        let missing = Error::from(ErrorKind::NotFound);
        assert!(RetryHooks::<(), Error>::should_retry(&h, &reset));
        assert!(!RetryHooks::<(), Error>::should_retry(&h, &missing));
        let limited = crate::Error::rate_limited("r", Duration::from_secs(3));
        assert_eq!(RetryHooks::<(), _>::retry_after(&h, &limited), Some(Duration::from_secs(3)));
    }

    #[test]
    fn closure_hooks_use_each_closure_and_default_the_rest() {
        let h = Hooks::new().retry_if(|e: &i32| *e > 0);
        assert!(RetryHooks::<u8, i32>::should_retry(&h, &1));
        assert!(!RetryHooks::<u8, i32>::should_retry(&h, &-1));
        assert!(!RetryHooks::<u8, i32>::should_retry_result(&h, &0));
        let h = h
            .retry_on_result(|v: &u8| *v == 0)
            .retry_after(|e: &i32| (*e == 429).then_some(Duration::from_secs(1)));
        assert!(h.should_retry_result(&0));
        assert_eq!(RetryHooks::retry_after(&h, &429), Some(Duration::from_secs(1)));
        assert_eq!(RetryHooks::retry_after(&h, &500), None);
    }
}
