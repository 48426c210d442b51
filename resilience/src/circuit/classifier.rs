//! Deciding whether a call's error counts against the circuit.
//!
//! A [`FailureClassifier`] decides for errors; a [`ResultClassifier`] for the whole result,
//! `Ok` values included: the classifiers here count every `Ok` as a success, except
//! [`FailureIfOk`], which adds a predicate on `Ok` values.

use std::fmt;
use std::marker::PhantomData;

use crate::classify::Classify;

/// How a finished call counts toward tripping the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// The service worked (including an error that says nothing about its health,
    /// such as a 404, when the classifier says so).
    Success,
    /// The service failed.
    Failure,
    /// Counts as neither: the call is forgotten by the breaker (only stats see it).
    Ignored,
}

/// Classifies a call's error as a success, a failure or neither.
///
/// Closures `Fn(&E) -> CallOutcome` implement it:
///
/// ```
/// use resilience::circuit::{CallOutcome, FailureClassifier};
///
/// let only_5xx = |status: &u16| match status {
///     500..=599 => CallOutcome::Failure,
///     429 => CallOutcome::Ignored,
///     _ => CallOutcome::Success,
/// };
/// assert_eq!(only_5xx.classify(&503), CallOutcome::Failure);
/// assert_eq!(only_5xx.classify(&404), CallOutcome::Success);
/// ```
pub trait FailureClassifier<E> {
    /// How the error `error` counts.
    fn classify(&self, error: &E) -> CallOutcome;
}

/// The classifier for an error type that does not say what went wrong: every error is a
/// failure. [`CircuitBreaker::call`](super::CircuitBreaker::call) uses it, and the
/// attribute macros for an error type without [`Classify`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllErrors;

impl<E> FailureClassifier<E> for AllErrors {
    fn classify(&self, _error: &E) -> CallOutcome {
        CallOutcome::Failure
    }
}

/// The classifier for an error type that implements [`Classify`]: each error counts as
/// its [`Classify::breaker_outcome`] says. By default a transient error is a failure, a
/// permanent one (a 404, a malformed request: the service answered) a success, and a
/// throttled one (a 429) neither.
///
/// The attribute macros, [`Pipeline`](crate::Pipeline)'s `call`, `call_blocking` and
/// `call_async`, and [`CircuitBreaker::call_classified`](super::CircuitBreaker::call_classified)
/// use it when no `failure_if` / `ignore_if` is given.
///
/// ```
/// use resilience::classify::{http_status, Classify, ErrorClass};
/// use resilience::circuit::{ByClass, CallOutcome, FailureClassifier};
///
/// struct Status(u16);
/// impl Classify for Status {
///     fn class(&self) -> ErrorClass {
///         http_status(self.0).unwrap_or(ErrorClass::Permanent)
///     }
/// }
/// assert_eq!(ByClass.classify(&Status(503)), CallOutcome::Failure);
/// assert_eq!(ByClass.classify(&Status(404)), CallOutcome::Success);
/// assert_eq!(ByClass.classify(&Status(429)), CallOutcome::Ignored);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByClass;

impl<E: Classify> FailureClassifier<E> for ByClass {
    #[inline]
    fn classify(&self, error: &E) -> CallOutcome {
        error.breaker_outcome()
    }
}

/// Classifies a call's whole result: its `Ok` value as well as its error.
///
/// The classifiers of this module are all `ResultClassifier`s, and so are closures
/// `Fn(&E) -> CallOutcome` and `dyn FailureClassifier<E>`: those count every `Ok` value
/// as a success. [`FailureIfOk`] counts the `Ok` values its predicate matches as
/// failures. The breaker's `call_with`, `run` and their async forms take any
/// `ResultClassifier`; a type of your own that implements [`FailureClassifier`] passes as
/// `&my_classifier as &dyn FailureClassifier<E>`, or wrapped in a `FailureIfOk`.
pub trait ResultClassifier<T, E> {
    /// How the `Ok` value `value` counts.
    fn classify_ok(&self, value: &T) -> CallOutcome;
    /// How the error `error` counts.
    fn classify_err(&self, error: &E) -> CallOutcome;
}

/// A [`ResultClassifier`] from a [`FailureClassifier`] that counts every `Ok` value as a
/// success.
macro_rules! errors_only {
    ($(impl<$($g:ident),*> for $ty:ty $(where [$($bound:tt)*])?;)*) => {$(
        impl<T, E, $($g),*> ResultClassifier<T, E> for $ty $(where $($bound)*)? {
            #[inline(always)]
            fn classify_ok(&self, _value: &T) -> CallOutcome {
                CallOutcome::Success
            }

            #[inline(always)]
            fn classify_err(&self, error: &E) -> CallOutcome {
                FailureClassifier::classify(self, error)
            }
        }
    )*};
}

errors_only! {
    impl<> for AllErrors;
    impl<> for ByClass where [E: Classify];
    impl<F, I> for Predicates<E, F, I> where [F: Fn(&E) -> bool, I: Fn(&E) -> bool];
    impl<F> for F where [F: Fn(&E) -> CallOutcome];
}

impl<T, E> ResultClassifier<T, E> for dyn FailureClassifier<E> + '_ {
    #[inline]
    fn classify_ok(&self, _value: &T) -> CallOutcome {
        CallOutcome::Success
    }

    #[inline]
    fn classify_err(&self, error: &E) -> CallOutcome {
        self.classify(error)
    }
}

/// A classifier that also counts some `Ok` values as failures, like resilience4j's
/// `recordResult`: an `Ok` value `failure_if_ok` matches counts as a failure (the caller
/// still gets the value), other `Ok` values are successes, and errors go to `errors`.
/// This is what `#[circuit_breaker(failure_if_ok = ..)]` uses.
///
/// ```
/// use resilience::Error;
/// use resilience::circuit::{AllErrors, CircuitBreaker, CircuitBreakerConfig, CircuitState, FailureIfOk};
///
/// struct Reply { status: u16 }
///
/// let config = CircuitBreakerConfig::builder().failure_threshold(2).build()?;
/// let breaker = CircuitBreaker::new("docs-failure-if-ok", config);
/// let degraded = FailureIfOk::new(AllErrors, |r: &Reply| r.status >= 500);
/// for _ in 0..2 {
///     let reply: Result<Reply, Error> = breaker.call_with(&degraded, || Ok(Reply { status: 503 }));
///     assert!(reply.is_ok(), "the value still reaches the caller");
/// }
/// assert_eq!(breaker.state(), CircuitState::Open);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
pub struct FailureIfOk<C, P> {
    errors: C,
    failure_if_ok: P,
}

impl<C, P> FailureIfOk<C, P> {
    /// Errors classified by `errors`; `Ok` values matching `failure_if_ok` are failures.
    pub fn new(errors: C, failure_if_ok: P) -> Self {
        FailureIfOk { errors, failure_if_ok }
    }
}

impl<C: fmt::Debug, P> fmt::Debug for FailureIfOk<C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailureIfOk").field("errors", &self.errors).finish_non_exhaustive()
    }
}

impl<T, E, C, P> ResultClassifier<T, E> for FailureIfOk<C, P>
where
    C: FailureClassifier<E>,
    P: Fn(&T) -> bool,
{
    #[inline]
    fn classify_ok(&self, value: &T) -> CallOutcome {
        if (self.failure_if_ok)(value) { CallOutcome::Failure } else { CallOutcome::Success }
    }

    #[inline]
    fn classify_err(&self, error: &E) -> CallOutcome {
        self.errors.classify(error)
    }
}

/// A classifier from two predicates: an error `ignore_if` matches is ignored, else one
/// `failure_if` matches is a failure, and any other error counts as a success (the
/// service answered). This is what `#[circuit_breaker(failure_if = .., ignore_if = ..)]`
/// uses.
///
/// ```
/// use resilience::circuit::{CallOutcome, FailureClassifier, Predicates};
///
/// let c = Predicates::new(|status: &u16| *status >= 500, |status: &u16| *status == 429);
/// assert_eq!(c.classify(&503), CallOutcome::Failure);
/// assert_eq!(c.classify(&429), CallOutcome::Ignored);
/// assert_eq!(c.classify(&404), CallOutcome::Success);
/// ```
pub struct Predicates<E, F, I> {
    failure_if: F,
    ignore_if: I,
    types: PhantomData<fn(&E)>,
}

impl<E, F, I> Predicates<E, F, I>
where
    F: Fn(&E) -> bool,
    I: Fn(&E) -> bool,
{
    /// The classifier of `failure_if` and `ignore_if`.
    pub fn new(failure_if: F, ignore_if: I) -> Self {
        Predicates { failure_if, ignore_if, types: PhantomData }
    }
}

impl<E, F, I> fmt::Debug for Predicates<E, F, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Predicates").finish_non_exhaustive()
    }
}

impl<E, F, I> FailureClassifier<E> for Predicates<E, F, I>
where
    F: Fn(&E) -> bool,
    I: Fn(&E) -> bool,
{
    #[inline]
    fn classify(&self, error: &E) -> CallOutcome {
        if (self.ignore_if)(error) {
            CallOutcome::Ignored
        } else if (self.failure_if)(error) {
            CallOutcome::Failure
        } else {
            CallOutcome::Success
        }
    }
}

impl<E, F: Fn(&E) -> CallOutcome> FailureClassifier<E> for F {
    fn classify(&self, error: &E) -> CallOutcome {
        self(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_errors_are_failures() {
        assert_eq!(FailureClassifier::<&str>::classify(&AllErrors, &"boom"), CallOutcome::Failure);
    }

    #[test]
    fn predicates_ignore_first_then_fail_then_succeed() {
        let c = Predicates::new(|e: &i32| *e > 0, |e: &i32| *e > 10);
        assert_eq!(c.classify(&11), CallOutcome::Ignored, "ignore_if wins over failure_if");
        assert_eq!(c.classify(&1), CallOutcome::Failure);
        assert_eq!(c.classify(&0), CallOutcome::Success);
        assert_eq!(std::mem::size_of_val(&c), 0, "capture-free predicates are zero-sized");
    }

    #[test]
    fn by_class_counts_transient_only() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(ByClass.classify(&reset), CallOutcome::Failure);
        assert_eq!(ByClass.classify(&missing), CallOutcome::Success);
        let limited = crate::Error::rate_limited("r", std::time::Duration::from_secs(1));
        assert_eq!(ByClass.classify(&limited), CallOutcome::Ignored);
    }

    #[test]
    fn failure_if_ok_counts_matching_values() {
        let c = FailureIfOk::new(AllErrors, |v: &i32| *v < 0);
        assert_eq!(ResultClassifier::<i32, &str>::classify_ok(&c, &-1), CallOutcome::Failure);
        assert_eq!(ResultClassifier::<i32, &str>::classify_ok(&c, &1), CallOutcome::Success);
        assert_eq!(ResultClassifier::<i32, &str>::classify_err(&c, &"x"), CallOutcome::Failure);
        // A plain error classifier counts every value as a success.
        assert_eq!(
            ResultClassifier::<i32, &str>::classify_ok(&AllErrors, &-1),
            CallOutcome::Success
        );
    }

    #[test]
    fn closures_classify() {
        let c = |e: &i32| if *e > 0 { CallOutcome::Ignored } else { CallOutcome::Failure };
        assert_eq!(c.classify(&1), CallOutcome::Ignored);
        assert_eq!(c.classify(&0), CallOutcome::Failure);
    }
}
