//! Circuit breakers: stop calling a failing service, then probe it back to health.
//!
//! A [`CircuitBreaker`] is **closed** while calls flow. It **opens** after
//! `failure_threshold` consecutive failures, or when the failure rate over a sliding
//! [`Window`] (the last N calls, or the last T in buckets) reaches `failure_rate` once the
//! window holds `min_calls` outcomes. Open, it rejects calls with
//! [`Error::CircuitOpen`](crate::Error::CircuitOpen) for `recovery_timeout` (optionally
//! jittered), then turns **half-open** on the next call and lets `half_open_max_calls`
//! probes through at a time: `success_threshold` successes close it, a failure re-opens
//! it. Operators can [`force_open`](CircuitBreaker::force_open),
//! [`disable`](CircuitBreaker::disable) and [`reset`](CircuitBreaker::reset) it. Every
//! transition, rejection and (for subscribers of [`Interest::CALLS`](crate::events::Interest::CALLS))
//! counted call is an [event](crate::events), logged with `tracing`.
//!
//! An [`AdaptiveThrottle`] is the probabilistic alternative: instead of all-or-nothing,
//! it rejects each call with probability `max(0, (requests − k·accepts) / (requests + 1))`
//! over a sliding time window (client-side throttling, from the SRE book's "Handling
//! Overload"), so a partially failing backend keeps getting the traffic it can serve.
//!
//! A [`KeyedCircuitBreaker`] keeps one circuit per key (per tenant, per shop), so that
//! one tenant's failures open that tenant's circuit only, in bounded memory.
//!
//! ```
//! use std::time::Duration;
//! use resilience::Error;
//! use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
//! use resilience::clock::ManualClock;
//!
//! let clock = ManualClock::new();
//! let config = CircuitBreakerConfig::builder()
//!     .failure_threshold(3)
//!     .recovery_timeout(Duration::from_secs(30))
//!     .success_threshold(1)
//!     .build()?;
//! let breaker = CircuitBreaker::with_clock("orders-api", config, clock.shared());
//!
//! let failing = || Err::<(), Error>(Error::timeout(Duration::from_secs(2)));
//! for _ in 0..3 {
//!     let _ = breaker.call(failing);
//! }
//! assert_eq!(breaker.state(), CircuitState::Open);
//! match breaker.call(|| Ok::<_, Error>(())) {
//!     Err(Error::CircuitOpen { retry_after, .. }) => assert_eq!(retry_after, Duration::from_secs(30)),
//!     other => panic!("expected a rejection, got {other:?}"),
//! }
//!
//! clock.advance(Duration::from_secs(30));
//! assert_eq!(breaker.call(|| Ok::<_, Error>("probe ok")), Ok("probe ok"));
//! assert_eq!(breaker.state(), CircuitState::Closed);
//! # Ok::<(), resilience::ConfigError>(())
//! ```

mod breaker;
mod call;
mod classifier;
mod config;
mod keyed;
mod kind;
mod permit;
mod shared;
mod state;
mod stats;
mod throttle;
mod window;
mod word;

pub use breaker::CircuitBreaker;
#[cfg(feature = "tower")]
pub(crate) use call::fault_outcome;
pub use classifier::{
    AllErrors, ByClass, CallOutcome, FailureClassifier, FailureIfOk, Predicates, ResultClassifier,
};
pub use config::{CircuitBreakerConfig, CircuitBreakerConfigBuilder, CircuitMode, Window};
pub use keyed::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_KEYS, KeyBreaker, KeyCircuitStats, KeyedCircuitBreaker,
    KeyedCircuitStats, WORST_KEYS,
};
pub use kind::Circuit;
pub use permit::CallPermit;
#[cfg(feature = "tower")]
pub(crate) use permit::DetachedPermit;
pub use state::CircuitState;
pub use stats::CircuitStats;
pub use throttle::{AdaptiveThrottle, ThrottleConfig, ThrottleConfigBuilder, ThrottleStats};
