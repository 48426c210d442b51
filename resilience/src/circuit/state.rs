//! The states of a circuit breaker.

use std::fmt;

/// Where a circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum CircuitState {
    /// Calls flow; outcomes are counted.
    Closed,
    /// Calls are rejected until the recovery timeout elapses.
    Open,
    /// A limited number of probe calls test whether the service recovered.
    HalfOpen,
    /// An operator opened the circuit; it stays open until reset.
    ForcedOpen,
    /// An operator disabled the breaker; every call flows and nothing trips it.
    Disabled,
}

impl CircuitState {
    /// The lowercase name used in logs and stats tables (`closed`, `half_open`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
            CircuitState::ForcedOpen => "forced_open",
            CircuitState::Disabled => "disabled",
        }
    }

    /// Whether calls are currently rejected outright (`Open` or `ForcedOpen`).
    pub fn is_open(self) -> bool {
        matches!(self, CircuitState::Open | CircuitState::ForcedOpen)
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
