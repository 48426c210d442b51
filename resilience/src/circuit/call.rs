//! Running calls through a [`CircuitBreaker`]: blocking and async, user-facing and
//! pipeline (`Fault`) flavours.

#[cfg(feature = "tokio")]
use std::future::Future;

use super::breaker::CircuitBreaker;
use super::classifier::{AllErrors, ByClass, CallOutcome, ResultClassifier};
use crate::classify::Classify;
use crate::{Error, Fault};

/// How a finished call counts, as `classifier` says (shared with the adaptive throttle).
#[inline(always)]
pub(super) fn outcome_of<T, E, C: ResultClassifier<T, E> + ?Sized>(
    result: &Result<T, E>,
    classifier: &C,
) -> CallOutcome {
    match result {
        Ok(value) => classifier.classify_ok(value),
        Err(e) => classifier.classify_err(e),
    }
}

/// How a pipeline error counts: the classifier decides for the operation's own errors,
/// an inner timeout is a failure, other inner rejections say nothing about the service.
#[inline(always)]
pub(crate) fn fault_outcome<T, E, C: ResultClassifier<T, E> + ?Sized>(
    result: &Result<T, Fault<E>>,
    classifier: &C,
) -> CallOutcome {
    match result {
        Ok(value) => classifier.classify_ok(value),
        Err(Fault::Inner(e)) => classifier.classify_err(e),
        Err(Fault::Rejected(Error::Timeout { .. })) => CallOutcome::Failure,
        Err(Fault::Rejected(_)) => CallOutcome::Ignored,
    }
}

impl CircuitBreaker {
    /// Run `op` if the circuit admits it, counting every error as a failure.
    ///
    /// A rejection reaches the caller as `E::from(Error::CircuitOpen { .. })`. For an error
    /// type that implements [`Classify`], [`call_classified`](Self::call_classified)
    /// counts only the errors that are the service's fault.
    #[inline]
    pub fn call<T, E, F>(&self, op: F) -> Result<T, E>
    where
        E: From<Error>,
        F: FnOnce() -> Result<T, E>,
    {
        self.call_with(&AllErrors, op)
    }

    /// Run `op` if the circuit admits it, counting its errors by their [`Classify`] class
    /// ([`ByClass`]): a transient error is a failure, a permanent one (the request was
    /// wrong) a success, a throttled one neither. This is how the attribute macros and
    /// [`Pipeline`](crate::Pipeline) count such errors.
    ///
    /// ```
    /// use resilience::classify::{http_status, Classify, ErrorClass};
    /// use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
    ///
    /// #[derive(Debug)]
    /// enum ApiError { Status(u16), Resilience(resilience::Error) }
    /// impl From<resilience::Error> for ApiError {
    ///     fn from(e: resilience::Error) -> Self { ApiError::Resilience(e) }
    /// }
    /// impl Classify for ApiError {
    ///     fn class(&self) -> ErrorClass {
    ///         match self {
    ///             ApiError::Status(code) => http_status(*code).unwrap_or(ErrorClass::Permanent),
    ///             ApiError::Resilience(e) => e.class(),
    ///         }
    ///     }
    /// }
    ///
    /// let config = CircuitBreakerConfig::builder().failure_threshold(1).build()?;
    /// let breaker = CircuitBreaker::new("docs-call-classified", config);
    /// let _ = breaker.call_classified(|| Err::<(), _>(ApiError::Status(404)));
    /// let _ = breaker.call_classified(|| Err::<(), _>(ApiError::Status(429)));
    /// assert_eq!(breaker.state(), CircuitState::Closed, "the caller's fault, and throttling");
    /// let _ = breaker.call_classified(|| Err::<(), _>(ApiError::Status(503)));
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    #[inline]
    pub fn call_classified<T, E, F>(&self, op: F) -> Result<T, E>
    where
        E: From<Error> + Classify,
        F: FnOnce() -> Result<T, E>,
    {
        self.call_with(&ByClass, op)
    }

    /// Run `op` if the circuit admits it, classifying its result with `classifier`: any
    /// [`FailureClassifier`](super::FailureClassifier) (a closure `Fn(&E) -> CallOutcome`,
    /// [`Predicates`](super::Predicates), [`ByClass`]), or a
    /// [`FailureIfOk`](super::FailureIfOk) that also counts some `Ok` values as failures.
    ///
    /// ```
    /// use resilience::Error;
    /// use resilience::circuit::{CallOutcome, CircuitBreaker, CircuitBreakerConfig};
    ///
    /// #[derive(Debug)]
    /// enum ApiError { NotFound, Server, Resilience(Error) }
    /// impl From<Error> for ApiError {
    ///     fn from(e: Error) -> Self { ApiError::Resilience(e) }
    /// }
    ///
    /// let breaker = CircuitBreaker::new("catalog", CircuitBreakerConfig::default());
    /// let server_errors = |e: &ApiError| match e {
    ///     ApiError::Server => CallOutcome::Failure,
    ///     _ => CallOutcome::Success,
    /// };
    /// let r: Result<(), ApiError> = breaker.call_with(&server_errors, || Err(ApiError::NotFound));
    /// assert!(r.is_err());
    /// assert_eq!(breaker.stats().failures, 0);
    /// ```
    #[inline]
    pub fn call_with<T, E, C, F>(&self, classifier: &C, op: F) -> Result<T, E>
    where
        E: From<Error>,
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Result<T, E>,
    {
        // One local returned on both paths, so the result is built in place.
        let result;
        match self.admit_fast() {
            Some(call) => {
                result = op();
                call.record(outcome_of(&result, classifier));
            }
            None => result = self.call_with_permit(classifier, op),
        }
        result
    }

    /// [`call_with`](Self::call_with) past the closed fast path: with a permit.
    #[inline(never)]
    fn call_with_permit<T, E, C, F>(&self, classifier: &C, op: F) -> Result<T, E>
    where
        E: From<Error>,
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Result<T, E>,
    {
        // A shared breaker always takes this path (its word has the slow bit).
        if let Some(shared) = self.shared() {
            let outcome = |r: &Result<T, E>| outcome_of(r, classifier);
            return self.run_shared(shared, outcome, E::from, op);
        }
        let permit = self.try_acquire_slow().map_err(E::from)?;
        let result = op();
        permit.record(outcome_of(&result, classifier));
        result
    }

    /// Pipeline form of [`call_with`](Self::call_with): a rejection by this breaker is
    /// `Fault::Rejected`; an inner `Fault::Rejected(Error::Timeout { .. })` counts as a
    /// failure, other inner rejections are ignored, `Fault::Inner` goes to `classifier`.
    #[inline]
    pub fn run<T, E, C, F>(&self, classifier: &C, op: F) -> Result<T, Fault<E>>
    where
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        if let Some(call) = self.admit_fast() {
            let result = op();
            call.record(fault_outcome(&result, classifier));
            return result;
        }
        self.run_with_permit(classifier, op)
    }

    /// The closed fast path of [`call_with`](Self::call_with), for a caller that handles
    /// every other case itself: `slow` gets `op` back when the call needs a permit (the
    /// circuit is not closed, the breaker is shared, or an observer wants whole calls).
    #[cfg(feature = "macros")]
    #[inline(always)]
    pub(crate) fn call_fast_or<T, E, C, F, S>(&self, classifier: &C, op: F, slow: S) -> Result<T, E>
    where
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Result<T, E>,
        S: FnOnce(F) -> Result<T, E>,
    {
        let result;
        match self.admit_fast() {
            Some(call) => {
                result = op();
                call.record(outcome_of(&result, classifier));
            }
            None => result = slow(op),
        }
        result
    }

    /// [`run`](Self::run) past the closed fast path: with a permit.
    #[inline(never)]
    fn run_with_permit<T, E, C, F>(&self, classifier: &C, op: F) -> Result<T, Fault<E>>
    where
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        if let Some(shared) = self.shared() {
            let outcome = |r: &Result<T, Fault<E>>| fault_outcome(r, classifier);
            return self.run_shared(shared, outcome, Fault::Rejected, op);
        }
        let permit = self.try_acquire_slow().map_err(Fault::Rejected)?;
        let result = op();
        permit.record(fault_outcome(&result, classifier));
        result
    }

    /// Async [`call`](Self::call): `op` makes the future of one attempt. If the returned
    /// future is dropped before the call finishes, the call counts as ignored and its
    /// half-open probe slot is freed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig};
    ///
    /// let breaker = CircuitBreaker::new("geo-api", CircuitBreakerConfig::default());
    /// let r = breaker.call_async(|| async { Ok::<_, resilience::Error>(42) }).await;
    /// assert_eq!(r, Ok(42));
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn call_async<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        E: From<Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_async_with(&AllErrors, op).await
    }

    /// Async [`call_classified`](Self::call_classified).
    #[cfg(feature = "tokio")]
    pub async fn call_classified_async<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        E: From<Error> + Classify,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_async_with(&ByClass, op).await
    }

    /// Async [`call_with`](Self::call_with).
    #[cfg(feature = "tokio")]
    pub async fn call_async_with<T, E, C, F, Fut>(&self, classifier: &C, op: F) -> Result<T, E>
    where
        E: From<Error>,
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(call) = self.admit_fast() {
            let result = op().await;
            call.record(outcome_of(&result, classifier));
            return result;
        }
        if let Some(shared) = self.shared() {
            let outcome = |r: &Result<T, E>| outcome_of(r, classifier);
            return self.run_shared_async(shared, outcome, E::from, op).await;
        }
        let permit = self.try_acquire_slow().map_err(E::from)?;
        let result = op().await;
        permit.record(outcome_of(&result, classifier));
        result
    }

    /// Async [`run`](Self::run).
    #[cfg(feature = "tokio")]
    pub async fn run_async<T, E, C, F, Fut>(&self, classifier: &C, op: F) -> Result<T, Fault<E>>
    where
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        if let Some(call) = self.admit_fast() {
            let result = op().await;
            call.record(fault_outcome(&result, classifier));
            return result;
        }
        if let Some(shared) = self.shared() {
            let outcome = |r: &Result<T, Fault<E>>| fault_outcome(r, classifier);
            return self.run_shared_async(shared, outcome, Fault::Rejected, op).await;
        }
        let permit = self.try_acquire_slow().map_err(Fault::Rejected)?;
        let result = op().await;
        permit.record(fault_outcome(&result, classifier));
        result
    }
}
