//! Token-bucket rate limiters: direct and keyed, with wait, reject and queue policies.
//!
//! A [`RateLimiter`] is one bucket of `burst` permits refilling at a [`Rate`]; a call may
//! cost several permits (e.g. GraphQL cost points). The bucket is GCRA in one
//! `AtomicU64`: a call that finds permits takes them with one compare-and-swap. When the
//! bucket is empty, [`OnLimit`] decides: wait for the next slot (never longer than
//! `max_wait`, 10 s by default, nor past the deadline of the call when a retry sets one:
//! a longer wait is refused at once), reject at once, or
//! queue (at most `max_queue` waiters). Servers' rate-limit headers
//! re-sync the bucket ([`RateLimiter::sync_from_headers`]), and a
//! [`KeyedRateLimiter`] keeps one bucket per key (per host, per shop), dropping idle
//! ones on its own.
//!
//! ```
//! use resilience::clock::ManualClock;
//! use resilience::rate_limit::{RateLimitConfig, RateLimiter};
//! use std::time::Duration;
//!
//! // Shopify's REST bucket: 40 requests, refilling at 2 per second.
//! let clock = ManualClock::new();
//! let config = RateLimitConfig::builder().per_second(2).burst(40).build()?;
//! let shopify = RateLimiter::with_clock("shopify", config, clock.shared());
//!
//! for _ in 0..40 {
//!     shopify.acquire(1)?; // the burst goes through at once
//! }
//! shopify.acquire(1)?; // waits for the next permit: 500 ms
//! assert_eq!(clock.sleeps(), vec![Duration::from_millis(500)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod bucket;
mod config;
pub(crate) mod core;
pub mod graphql;
pub mod headers;
mod keyed;
mod keymap;
mod limiter;
mod rate;
mod shared;
pub(crate) mod stats;

pub use config::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_PAUSE, DEFAULT_MAX_QUEUE, DEFAULT_MAX_WAIT, OnLimit,
    RateLimitConfig, RateLimitConfigBuilder,
};
pub use headers::{CallLimit, HeaderError, SyncReport};
pub use keyed::KeyedRateLimiter;
pub use limiter::RateLimiter;
pub use rate::Rate;
pub use stats::RateLimiterStats;
