//! [`CircuitStats`]: a snapshot of a breaker's counters.

use std::time::Duration;

use super::CircuitState;

/// A snapshot of a [`CircuitBreaker`](super::CircuitBreaker)'s state and counters.
///
/// `calls = successes + failures + ignored` (calls that ran, slow calls included in
/// `failures`); `rejections` are calls refused without running, so `calls + rejections`
/// is every attempt once no permit is outstanding.
///
/// ```
/// use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
///
/// let breaker = CircuitBreaker::new("search", CircuitBreakerConfig::default());
/// let _ = breaker.call(|| Ok::<_, resilience::Error>(()));
/// let stats = breaker.stats();
/// assert_eq!((stats.calls, stats.successes, stats.state), (1, 1, CircuitState::Closed));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CircuitStats {
    /// The breaker's name.
    pub name: String,
    /// Its state.
    pub state: CircuitState,
    /// Calls that ran: `successes + failures + ignored`.
    pub calls: u64,
    /// Calls that succeeded (not counting slow ones).
    pub successes: u64,
    /// Calls that failed, slow calls included.
    pub failures: u64,
    /// Calls whose outcome was ignored (classified so, or permit dropped unused).
    pub ignored: u64,
    /// Calls rejected without running.
    pub rejections: u64,
    /// Successful calls counted as failures for being slower than the threshold.
    pub slow_calls: u64,
    /// Failure rate of the sliding window, when the breaker trips on a rate and the
    /// window holds any outcome.
    pub failure_rate: Option<f64>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Time since the last transition (or since creation); serialized as seconds.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::secs::secs"))]
    pub time_in_state: Duration,
    /// Clock time of the last transition, if any; serialized as seconds.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::secs::opt_secs"))]
    pub last_transition: Option<Duration>,
    /// Number of state transitions so far.
    pub transitions: u64,
}
