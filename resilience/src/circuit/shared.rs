//! A breaker whose circuit is shared through a [`StateStore`](crate::backend::StateStore):
//! the drivers that ask the shared circuit beside the local state machine.

#[cfg(feature = "tokio")]
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::breaker::CircuitBreaker;
use super::classifier::CallOutcome;
use super::permit::CallPermit;
use super::state::CircuitState;
use crate::backend::{Admission, CircuitCall, SharedCircuit, StoreError, Ticket};
use crate::{Error, FailMode};

/// A breaker's shared circuit and what to do while its store is unreachable.
pub(super) struct Shared {
    pub(super) circuit: Arc<dyn SharedCircuit>,
    pub(super) fail: FailMode,
}

impl CircuitBreaker {
    /// The shared circuit's answer as a ticket (`None`: the store is unreachable and the
    /// breaker fails open, so the local breaker alone decides), or the rejection.
    fn settle(
        &self,
        shared: &Shared,
        answer: Result<Admission, StoreError>,
    ) -> Result<Option<Ticket>, Error> {
        match answer {
            Ok(Admission::Admitted(ticket)) => Ok(Some(ticket)),
            Ok(Admission::Rejected { retry_after }) => Err(self.reject(retry_after)),
            Err(e) => match shared.fail {
                FailMode::Open => Ok(None),
                FailMode::Closed => {
                    self.count_rejection();
                    Err(Error::backend_unavailable(self.name().clone(), e.into_reason()))
                }
            },
        }
    }

    /// Whether a call asks the shared circuit: an operator's `disable` on this process's
    /// breaker lets calls through unasked.
    fn asks_shared(&self) -> bool {
        self.state() != CircuitState::Disabled
    }

    /// The ticket and the local permit of a call, given the shared circuit's `answer`
    /// (`None`: not asked); or the rejection, with a ticket the call will not use (to
    /// give back, so that a shared probe slot is not lost).
    fn admit_shared(
        &self,
        shared: &Shared,
        answer: Option<Result<Admission, StoreError>>,
    ) -> Result<(Option<Ticket>, CallPermit<'_>), (Error, Option<Ticket>)> {
        let ticket = match answer {
            Some(answer) => self.settle(shared, answer).map_err(|e| (e, None))?,
            None => None,
        };
        match self.try_acquire() {
            Ok(permit) => Ok((ticket, permit)),
            Err(e) => Err((e, ticket)),
        }
    }

    /// Records a finished call through its local `permit`; what to report to the shared
    /// circuit for `ticket` (a success slower than the slow-call threshold is a failure).
    fn finish_shared(
        &self,
        permit: CallPermit<'_>,
        ticket: Option<Ticket>,
        started: Option<Duration>,
        raw: CallOutcome,
    ) -> Option<(Ticket, CallOutcome)> {
        permit.record(raw);
        ticket.map(|ticket| (ticket, self.slow_adjusted(started, raw)))
    }

    /// Runs `op` through the shared circuit and the local breaker (both must admit; the
    /// shared circuit first, so that the local slow-call timer starts with the call).
    pub(super) fn run_shared<T, E>(
        &self,
        shared: &Shared,
        outcome_of: impl FnOnce(&Result<T, E>) -> CallOutcome,
        rejected: impl FnOnce(Error) -> E,
        op: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let config = self.config();
        let call = CircuitCall::new(self.name(), &config, self.clock());
        let answer = self.asks_shared().then(|| shared.circuit.admit(&call));
        let (ticket, permit) = match self.admit_shared(shared, answer) {
            Ok(admitted) => admitted,
            Err((e, None)) => return Err(rejected(e)),
            Err((e, Some(unused))) => {
                shared.circuit.report(&call, unused, CallOutcome::Ignored);
                return Err(rejected(e));
            }
        };
        let started = self.slow_call_start();
        let result = op();
        let report = self.finish_shared(permit, ticket, started, outcome_of(&result));
        if let Some((ticket, outcome)) = report {
            shared.circuit.report(&call, ticket, outcome);
        }
        result
    }

    /// Async [`run_shared`](Self::run_shared).
    #[cfg(feature = "tokio")]
    pub(super) async fn run_shared_async<T, E, Fut>(
        &self,
        shared: &Shared,
        outcome_of: impl FnOnce(&Result<T, E>) -> CallOutcome,
        rejected: impl FnOnce(Error) -> E,
        op: impl FnOnce() -> Fut,
    ) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let config = self.config();
        let call = CircuitCall::new(self.name(), &config, self.clock());
        let answer =
            if self.asks_shared() { Some(shared.circuit.admit_async(call).await) } else { None };
        let (ticket, permit) = match self.admit_shared(shared, answer) {
            Ok(admitted) => admitted,
            Err((e, None)) => return Err(rejected(e)),
            Err((e, Some(unused))) => {
                shared.circuit.report_async(call, unused, CallOutcome::Ignored).await;
                return Err(rejected(e));
            }
        };
        let started = self.slow_call_start();
        let result = op().await;
        let report = self.finish_shared(permit, ticket, started, outcome_of(&result));
        if let Some((ticket, outcome)) = report {
            shared.circuit.report_async(call, ticket, outcome).await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BoxFuture, SharedBucket, SharedState, StateStore};
    use crate::circuit::CircuitBreakerConfig;
    use crate::{ConfigError, RateLimitConfig};

    /// A store whose one circuit admits every call.
    #[derive(Debug)]
    struct Open;

    impl SharedCircuit for Open {
        fn admit(&self, _: &CircuitCall<'_>) -> Result<Admission, StoreError> {
            Ok(Admission::Admitted(Ticket { generation: 0, probe: 0 }))
        }
        fn admit_async<'a>(
            &'a self,
            call: CircuitCall<'a>,
        ) -> BoxFuture<'a, Result<Admission, StoreError>> {
            Box::pin(async move { self.admit(&call) })
        }
        fn report(&self, _: &CircuitCall<'_>, _: Ticket, _: CallOutcome) {}
        fn report_async<'a>(
            &'a self,
            _: CircuitCall<'a>,
            _: Ticket,
            _: CallOutcome,
        ) -> BoxFuture<'a, ()> {
            Box::pin(async {})
        }
        fn state(&self, _: &CircuitCall<'_>) -> Result<SharedState, StoreError> {
            Ok(SharedState::Closed)
        }
        fn reset(&self, _: &CircuitCall<'_>) -> Result<(), StoreError> {
            Ok(())
        }
    }

    impl StateStore for Open {
        fn circuit(
            &self,
            _: &str,
            _: &CircuitBreakerConfig,
        ) -> Result<Option<Arc<dyn SharedCircuit>>, ConfigError> {
            Ok(Some(Arc::new(Open)))
        }
        fn bucket(
            &self,
            _: &str,
            _: &RateLimitConfig,
        ) -> Result<Option<Arc<dyn SharedBucket>>, ConfigError> {
            Ok(None)
        }
    }

    #[test]
    fn only_a_shared_breaker_leaves_the_closed_fast_path() {
        let local = CircuitBreaker::new("fast-local", CircuitBreakerConfig::default());
        assert!(local.admit_fast().is_some(), "a local breaker pays nothing for stores");
        let shared =
            CircuitBreaker::with_store("fast-shared", CircuitBreakerConfig::default(), &Open);
        let shared = shared.unwrap_or_else(|e| panic!("{e}"));
        assert!(shared.admit_fast().is_none(), "a shared breaker asks its store");
        // Reconfiguring keeps the shared breaker off the fast path.
        shared.reconfigure(CircuitBreakerConfig::default());
        assert!(shared.admit_fast().is_none());
        assert_eq!(shared.call(|| Ok::<_, Error>(1)), Ok(1));
    }
}
