//! A breaker whose circuit is shared through a [`StateStore`](crate::backend::StateStore):
//! the drivers that ask the shared circuit beside the local state machine.

#[cfg(feature = "tokio")]
use std::future::Future;
use std::sync::Arc;

use super::breaker::CircuitBreaker;
use super::classifier::CallOutcome;
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
        // An operator's `disable` on this process's breaker lets calls through unasked.
        let ticket = if self.state() == CircuitState::Disabled {
            None
        } else {
            match self.settle(shared, shared.circuit.admit(&call)) {
                Ok(t) => t,
                Err(e) => return Err(rejected(e)),
            }
        };
        let permit = match self.try_acquire() {
            Ok(p) => p,
            Err(e) => {
                // Give back a shared probe slot this call will not use.
                if let Some(ticket) = ticket {
                    shared.circuit.report(&call, ticket, CallOutcome::Ignored);
                }
                return Err(rejected(e));
            }
        };
        let started = self.slow_call_start();
        let result = op();
        let raw = outcome_of(&result);
        permit.record(raw);
        if let Some(ticket) = ticket {
            shared.circuit.report(&call, ticket, self.slow_adjusted(started, raw));
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
        let ticket = if self.state() == CircuitState::Disabled {
            None
        } else {
            match self.settle(shared, shared.circuit.admit_async(call).await) {
                Ok(t) => t,
                Err(e) => return Err(rejected(e)),
            }
        };
        let permit = match self.try_acquire() {
            Ok(p) => p,
            Err(e) => {
                if let Some(ticket) = ticket {
                    shared.circuit.report_async(call, ticket, CallOutcome::Ignored).await;
                }
                return Err(rejected(e));
            }
        };
        let started = self.slow_call_start();
        let result = op().await;
        let raw = outcome_of(&result);
        permit.record(raw);
        if let Some(ticket) = ticket {
            let outcome = self.slow_adjusted(started, raw);
            shared.circuit.report_async(call, ticket, outcome).await;
        }
        result
    }
}
