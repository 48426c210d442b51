//! [`Circuit`]: a named circuit as its `mode` builds it.

use std::sync::Arc;

use super::breaker::CircuitBreaker;
use super::state::CircuitState;
use super::throttle::AdaptiveThrottle;

/// A named circuit as its config's [`mode`](super::CircuitBreakerConfig::mode) builds
/// it: a [`CircuitBreaker`] (modes `consecutive` and `rate`) or an [`AdaptiveThrottle`]
/// (mode `adaptive_throttle`). The choice is made once, when the circuit is resolved
/// ([`Registry::resolve_circuit`](crate::registry::Registry::resolve_circuit)), so a
/// breaker's calls pay nothing for the other mode.
///
/// ```
/// use resilience::circuit::{Circuit, CircuitBreakerConfig, CircuitState, ThrottleConfig};
/// use resilience::registry::Registry;
///
/// let registry = Registry::new();
/// let config = CircuitBreakerConfig::builder().adaptive_throttle(ThrottleConfig::default()).build()?;
/// let circuit = registry.resolve_circuit("search", || Ok(config))?;
/// assert!(matches!(circuit, Circuit::Throttle(_)));
/// circuit.force_open();
/// assert_eq!(circuit.state(), CircuitState::ForcedOpen);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub enum Circuit {
    /// All-or-nothing: a circuit breaker.
    Breaker(Arc<CircuitBreaker>),
    /// Probabilistic: client-side adaptive throttling.
    Throttle(Arc<AdaptiveThrottle>),
}

impl Circuit {
    /// The circuit's name.
    pub fn name(&self) -> &str {
        match self {
            Circuit::Breaker(b) => b.name().as_ref(),
            Circuit::Throttle(t) => t.name(),
        }
    }

    /// The breaker's or the throttle's state.
    pub fn state(&self) -> CircuitState {
        match self {
            Circuit::Breaker(b) => b.state(),
            Circuit::Throttle(t) => t.state(),
        }
    }

    /// Reject every call until [`reset`](Self::reset).
    pub fn force_open(&self) {
        match self {
            Circuit::Breaker(b) => b.force_open(),
            Circuit::Throttle(t) => t.force_open(),
        }
    }

    /// Let every call through until [`reset`](Self::reset).
    pub fn disable(&self) {
        match self {
            Circuit::Breaker(b) => b.disable(),
            Circuit::Throttle(t) => t.disable(),
        }
    }

    /// Back to normal operation from a clean window.
    pub fn reset(&self) {
        match self {
            Circuit::Breaker(b) => b.reset(),
            Circuit::Throttle(t) => t.reset(),
        }
    }

    /// The breaker, in modes `consecutive` and `rate`.
    pub fn breaker(&self) -> Option<&Arc<CircuitBreaker>> {
        match self {
            Circuit::Breaker(b) => Some(b),
            Circuit::Throttle(_) => None,
        }
    }

    /// The throttle, in mode `adaptive_throttle`.
    pub fn throttle(&self) -> Option<&Arc<AdaptiveThrottle>> {
        match self {
            Circuit::Throttle(t) => Some(t),
            Circuit::Breaker(_) => None,
        }
    }
}
