//! Deciding whether a call's error counts against the circuit.

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
    fn closures_classify() {
        let c = |e: &i32| if *e > 0 { CallOutcome::Ignored } else { CallOutcome::Failure };
        assert_eq!(c.classify(&1), CallOutcome::Ignored);
        assert_eq!(c.classify(&0), CallOutcome::Failure);
    }
}
