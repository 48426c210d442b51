//! Make fallible calls (HTTP APIs, databases, object stores, queues) survive the real
//! world: **retries** with backoff and a retry budget, **circuit breakers** kept in a
//! process-global registry of named circuits (per key for multi-tenant APIs:
//! [`KeyedCircuitBreaker`]), token-bucket **rate limiters** (per key,
//! wait / reject / queue, re-synced from server headers), **bulkheads**, **timeouts**, and
//! per-connector **presets** — as plain runtime types, or as attribute macros
//! (`#[retry]`, `#[circuit_breaker]`, `#[rate_limit]`, `#[timeout]`, `#[bulkhead]`,
//! `#[resilient]`) that expand into them.
//!
//! # The convention
//!
//! A protected operation returns `Result<T, E>` where `E: From<resilience::Error>`: an
//! open circuit, a rate limit, a full bulkhead or a timeout reaches the caller through the
//! caller's own error type as `E::from(Error::...)`.
//!
//! ```
//! #[derive(Debug)]
//! enum ShopError {
//!     Http(u16),
//!     Resilience(resilience::Error),
//! }
//!
//! impl From<resilience::Error> for ShopError {
//!     fn from(e: resilience::Error) -> Self {
//!         ShopError::Resilience(e)
//!     }
//! }
//! ```
//!
//! `std::io::Result<T>` follows the convention as is (a rejection becomes an `io::Error`
//! carrying it). An error type of another crate cannot get the impl in yours: wrap it in
//! an error type of your own, as `ShopError` does. Without `retry_if`, a retry classifies
//! errors through [`Classify`] and [`RetryAfter`], detected from the concrete error type;
//! a function generic over its error type `E` must name them in its bounds
//! (`E: Classify + RetryAfter`) or pass `retry_if`, which the attributes enforce.
//!
//! # Retry
//!
//! [`RetryPolicy`]: `max_attempts` counts **every** call, the first
//! included (`max_attempts(3)` = one call and up to two retries). Backoff strategies are
//! iterators of delays ([`backoff`]); a seed makes jitter reproducible.
//!
//! ```
//! use std::time::Duration;
//! use resilience::backoff::{Backoff, Jitter};
//! use resilience::clock::ManualClock;
//! use resilience::retry::RetryPolicy;
//!
//! let clock = ManualClock::new(); // blocking sleeps advance it instantly
//! let policy = RetryPolicy::builder()
//!     .max_attempts(4)
//!     .backoff(Backoff::exponential(Duration::from_millis(100)).with_jitter(Jitter::None))
//!     .clock(clock.shared())
//!     .build()?;
//!
//! let mut calls = 0;
//! let result: Result<u32, String> = policy.call(|| {
//!     calls += 1;
//!     if calls < 3 { Err(format!("flaky #{calls}")) } else { Ok(calls) }
//! });
//! assert_eq!(result, Ok(3));
//! assert_eq!(clock.sleeps(), [Duration::from_millis(100), Duration::from_millis(200)]);
//! # Ok::<(), resilience::ConfigError>(())
//! ```
//!
//! # Circuit breaker
//!
//! ```
//! use std::time::Duration;
//! use resilience::circuit::{CircuitBreakerConfig, CircuitState};
//! use resilience::{registry, Error};
//!
//! let config = CircuitBreakerConfig::builder()
//!     .failure_threshold(2)
//!     .recovery_timeout(Duration::from_secs(30))
//!     .build()?;
//! let breaker = registry().circuit_breakers().get_or_create("docs-payments", config)?;
//!
//! for _ in 0..2 {
//!     let _ = breaker.call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
//! }
//! assert_eq!(breaker.state(), CircuitState::Open);
//! let rejected = breaker.call(|| Ok::<_, Error>("not called"));
//! assert!(matches!(rejected, Err(Error::CircuitOpen { .. })));
//! # Ok::<(), resilience::ConfigError>(())
//! ```
//!
//! # Rate limiter
//!
//! ```
//! use resilience::rate_limit::{OnLimit, RateLimitConfig, RateLimiter};
//!
//! let config = RateLimitConfig::builder().per_second(2).burst(40).on_limit(OnLimit::Reject).build()?;
//! let shopify = RateLimiter::new("docs-shopify", config);
//! shopify.try_acquire(10).expect("a full bucket grants 10 of 40");
//! shopify.sync_from_headers([("X-Shopify-Shop-Api-Call-Limit", "39/40")]);
//! assert_eq!(shopify.available(), 1);
//! # Ok::<(), resilience::ConfigError>(())
//! ```
//!
//! # Everything at once
//!
//! A [`Pipeline`] (or `#[resilient]`) stacks the layers in a fixed order, outermost first:
//! retry → circuit breaker → rate limit → bulkhead → timeout per attempt, with a
//! [fallback](mod@fallback) (`Pipeline::fallback`, `#[fallback]`) outside them all, on the
//! final error. Presets
//! ([`presets`]) give every layer values suited to a connector: `database`, `api`, `file`,
//! `postgres`, `shopify`, `development`.
//!
//! # Multi-tenant APIs: one circuit per tenant
//!
//! Where a service's limits are per tenant (Shopify's are per shop), key the call by
//! tenant: each tenant gets its own rate-limit bucket and its own circuit, so one frozen
//! or throttled shop never opens a healthy shop's circuit. The `shopify` preset requires
//! it (`key = none` says one circuit and one bucket serve every shop):
//!
//! ```
//! use resilience::{Error, registry, resilient};
//! use resilience::circuit::CircuitState;
//!
//! #[derive(Debug)]
//! enum ShopError { PaymentRequired, Resilience(Error) }
//! impl From<Error> for ShopError {
//!     fn from(e: Error) -> Self { ShopError::Resilience(e) }
//! }
//!
//! #[resilient(preset = "shopify", key = shop, retry(max_attempts = 1))]
//! async fn orders(shop: &str) -> Result<u32, ShopError> {
//!     if shop == "frozen.myshopify.com" { Err(ShopError::PaymentRequired) } else { Ok(3) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! for _ in 0..3 {
//!     let _ = orders("frozen.myshopify.com").await;
//! }
//! assert!(matches!(orders("frozen.myshopify.com").await, Err(ShopError::Resilience(Error::CircuitOpen { .. }))));
//! assert!(matches!(orders("healthy.myshopify.com").await, Ok(3)));
//! let per_shop = registry().keyed_circuit_breakers().get(concat!(module_path!(), "::orders")).unwrap();
//! assert_eq!(per_shop.state("frozen.myshopify.com"), CircuitState::Open);
//! # }
//! ```
//!
//! # One limit and one circuit across processes
//!
//! With the `redis` feature, `backend = "redis"` (in an attribute, a TOML table or
//! [`RateLimitConfig::builder().backend(..)`](rate_limit::RateLimitConfigBuilder::backend))
//! keeps a limiter's bucket or a breaker's state in Redis, shared by every process that
//! uses the name; see `redis` for the consistency model and what happens when Redis
//! is unreachable ([`FailMode`]). The breaker and the limiters know Redis only as a
//! [`StateStore`](backend::StateStore): another store plugs in through their
//! `with_store` constructors.
//!
//! # Events, the registry and config files
//!
//! Every layer reports what happens (transitions, rejections, waits, attempts, retries,
//! timeouts, config reloads) to one [event interface](events): subscribe by topic on a
//! [`Registry`](registry::Registry); the `tracing` output is one consumer of it. A
//! registry reaches each kind of instance the same way ([`Instances`](registry::Instances)),
//! and each layer's config is defined once ([`config`]): the attributes, TOML files,
//! `Deserialize` and hot reload all go through it.
//!
//! # Time in tests
//!
//! Every timing decision reads a [`Clock`](clock::Clock). Production builds read the
//! CPU's time-stamp counter ([`QuantaClock`](clock::QuantaClock)), which tokio's paused
//! clock does not drive: tests that use `#[tokio::test(start_paused = true)]` enable the
//! `test-util` feature in their dev-dependencies
//! (`resilience = { version = "0.1", features = ["test-util"] }`), and the default clock
//! then follows tokio's (see [`clock`] for the trade-off). Blocking code takes a
//! [`ManualClock`](clock::ManualClock), whose sleeps return at once and are recorded.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `macros` | yes | the attribute macros |
//! | `tokio` | yes | async drivers, async waits and timeouts |
//! | `serde` | no | `Serialize` on stats snapshots, `Deserialize` on configs ([`config`]) |
//! | `toml` | no | named configs from TOML ([`Registry::load_toml`](registry::Registry)) in the keys of [`config`] |
//! | `watch` | no | `Registry::watch_toml`: a TOML file applied again whenever it changes (implies `toml`) |
//! | `chaos` | no | a seedable fault injector for your own tests (`chaos`) |
//! | `metrics` | no | counters, gauges and histograms of every layer through the `metrics` facade (`metrics`) |
//! | `quanta` | yes | `clock::QuantaClock`, a TSC clock: the default clock in production |
//! | `test-util` | no | the default clock follows tokio's paused clock: for dev-dependencies of tests that pause time (implies `tokio`) |
//! | `redis` | no | shared limiters and circuits on Redis (`redis`; implies `tokio`) |
//! | `admin` | no | an HTTP admin surface on axum (`admin`): JSON stats, operator actions behind a token, an event stream and a live dashboard (implies `serde`, `tokio`) |
//! | `http` | no | `Classify` / `RetryAfter` for `http` status codes and responses, limiter re-sync from a `HeaderMap` (`http`) |
//! | `tower` | no | the layers as tower `Layer`s around any `Service` (`tower`; implies `http` and `tokio`) |
//! | `reqwest` | no | a `reqwest-middleware` middleware over the same configs (`reqwest`; implies `tower`; no TLS backend forced) |
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod setters;

#[cfg(feature = "macros")]
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
#[cfg(feature = "admin")]
pub mod admin;
pub mod backend;
pub mod backoff;
pub mod bulkhead;
#[cfg(feature = "chaos")]
pub mod chaos;
pub mod circuit;
pub mod classify;
pub mod clock;
pub mod config;
mod deadline;
mod error;
pub mod events;
pub mod fallback;
mod fault;
pub mod hedge;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod pipeline;
pub mod presets;
pub mod rate_limit;
#[cfg(feature = "redis")]
pub mod redis;
pub mod registry;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
pub mod retry;
#[cfg(feature = "serde")]
mod secs;
mod striped;
mod sync;
mod telemetry;
#[cfg(test)]
mod test_support;
pub mod timeout;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
#[cfg(feature = "macros")]
mod trace;

pub use backend::{Backend, FailMode};
pub use backoff::{Backoff, Jitter};
pub use bulkhead::{Bulkhead, BulkheadConfig};
pub use circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitState, KeyedCircuitBreaker};
pub use classify::{Classify, ErrorClass, RetryAfter};
pub use error::{ConfigError, Error};
pub use fault::Fault;
pub use pipeline::Pipeline;
pub use presets::{BudgetScope, Preset, ResilienceConfig};
pub use rate_limit::{KeyedRateLimiter, OnLimit, Rate, RateLimitConfig, RateLimiter};
pub use registry::registry;
pub use retry::{RetryBudget, RetryPolicy};

#[cfg(feature = "macros")]
#[doc(inline)]
pub use resilience_macros::{
    bulkhead, circuit_breaker, fallback, hedge, rate_limit, resilient, retry, timeout,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
