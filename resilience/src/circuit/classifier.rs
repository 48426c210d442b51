//! Deciding whether a call's error counts against the circuit.

use std::fmt;
use std::marker::PhantomData;

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

/// The default classifier: every error is a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllErrors;

impl<E> FailureClassifier<E> for AllErrors {
    fn classify(&self, _error: &E) -> CallOutcome {
        CallOutcome::Failure
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
    fn closures_classify() {
        let c = |e: &i32| if *e > 0 { CallOutcome::Ignored } else { CallOutcome::Failure };
        assert_eq!(c.classify(&1), CallOutcome::Ignored);
        assert_eq!(c.classify(&0), CallOutcome::Failure);
    }
}
