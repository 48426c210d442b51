//! Retry policies, the retry budget, and the blocking and async retry drivers.
//!
//! A [`RetryPolicy`] calls an operation again when it fails, waiting the delays of its
//! [`Backoff`](crate::backoff::Backoff) in between, until it succeeds or a limit is
//! reached: `max_attempts` (**the first call included**: 3 means up to two retries),
//! the `deadline` of the whole call (no sleep that would end past it; the layers below
//! never wait past it either), or a shared [`RetryBudget`]. When a limit is reached the
//! last error (or, for soft failures, the last value) is returned.
//!
//! A policy built from a preset draws on a retry budget of its own named instance (the
//! call site's name); `budget = "name"` makes call sites share one budget.
//!
//! [`RetryHooks`] decide what is retried and are told about each retry:
//! [`DefaultHooks`] retries every error, [`Classified`] retries
//! [transient](crate::classify::Classify) errors and honours their server hints, and
//! [`Hooks`] takes closures.
//!
//! ```
//! use resilience::backoff::Backoff;
//! use resilience::clock::ManualClock;
//! use resilience::retry::{Hooks, RetryPolicy};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new(); // sleeps return at once and are recorded
//! let policy = RetryPolicy::builder()
//!     .name("fetch-orders")
//!     .max_attempts(4)
//!     .backoff(Backoff::exponential(Duration::from_millis(100)))
//!     .clock(clock.shared())
//!     .build()?;
//!
//! // Retry 5xx only.
//! let hooks = Hooks::new().retry_if(|status: &u16| *status >= 500);
//! let mut responses = [503, 502, 200].into_iter();
//! let r = policy.call_with(&hooks, || match responses.next() {
//!     Some(200) | None => Ok("orders"),
//!     Some(status) => Err(status),
//! });
//! assert_eq!(r, Ok("orders"));
//! assert_eq!(clock.sleeps(), [Duration::from_millis(100), Duration::from_millis(200)]);
//! # Ok::<(), resilience::ConfigError>(())
//! ```

#[cfg(feature = "tokio")]
mod async_driver;
mod attempt;
mod blocking;
mod budget;
mod hooks;
mod policy;
#[cfg(feature = "macros")]
mod stepper;

pub use budget::{RetryBudget, RetryBudgetConfig, RetryBudgetConfigBuilder, RetryBudgetStats};
pub use hooks::{Classified, DefaultHooks, Hooks, RetryEvent, RetryHooks, RetryReason};
pub use policy::{RetryPolicy, RetryPolicyBuilder};
#[cfg(feature = "macros")]
pub(crate) use stepper::Stepper;

#[cfg(test)]
mod tests;
