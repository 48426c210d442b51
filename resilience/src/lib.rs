//! Make fallible calls (HTTP APIs, databases, object stores, queues) survive the real
//! world: retries with backoff, circuit breakers, rate limiters, bulkheads and timeouts,
//! as plain runtime types or as attribute macros.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backoff;
pub mod bulkhead;
pub mod circuit;
pub mod classify;
pub mod clock;
mod error;
pub mod events;
mod fault;
pub mod rate_limit;
pub mod retry;
pub mod timeout;

pub use backoff::{Backoff, Jitter};
pub use classify::{Classify, ErrorClass, RetryAfter};
pub use error::{ConfigError, Error};
pub use fault::Fault;
pub use retry::{RetryBudget, RetryPolicy};
