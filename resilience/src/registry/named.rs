//! [`Named`]: the kinds of instance a registry keeps, and [`Instances`]: the one access
//! path to the instances of a kind (get, create, resolve, configure, stats).

use std::fmt;
use std::sync::Arc;

use super::env::{Env, in_store};
use super::slots::Slots;
use crate::ConfigError;
use crate::bulkhead::{Bulkhead, BulkheadConfig, BulkheadStats};
use crate::circuit::{
    AdaptiveThrottle, CircuitBreaker, CircuitBreakerConfig, CircuitStats, KeyedCircuitBreaker,
    KeyedCircuitStats, ThrottleConfig, ThrottleStats,
};
use crate::hedge::{Hedge, HedgeConfig, HedgeStats};
use crate::rate_limit::{KeyedRateLimiter, RateLimitConfig, RateLimiter, RateLimiterStats};
use crate::retry::{RetryBudget, RetryBudgetConfig, RetryBudgetStats};

mod sealed {
    pub trait Sealed {}
}

/// A kind of named instance a [`Registry`](super::Registry) keeps: [`CircuitBreaker`],
/// [`KeyedCircuitBreaker<String>`](KeyedCircuitBreaker), [`RateLimiter`],
/// [`KeyedRateLimiter<String>`](KeyedRateLimiter), [`AdaptiveThrottle`], [`Bulkhead`],
/// [`RetryBudget`] and [`Hedge`]. Sealed: the registry knows how to create and reconfigure each.
pub trait Named: sealed::Sealed + Send + Sync + Sized + 'static {
    /// The kind's config.
    type Config: Clone + PartialEq + fmt::Debug + Send + Sync + 'static;
    /// The kind's stats.
    type Stats: Clone + fmt::Debug + Send + Sync + 'static;
    /// `"circuit breaker"`, `"rate limiter"`, ... for messages.
    const KIND: &'static str;

    /// A new instance reporting its events to the registry's hub, its shared state (if
    /// any) in the registry's store; it shares `name` with the registry's map (not
    /// public API).
    #[doc(hidden)]
    fn create(name: &Arc<str>, config: Self::Config, env: &Env) -> Self;
    /// The instance's config now (not public API).
    #[doc(hidden)]
    fn current_config(&self) -> Self::Config;
    /// Re-configure the live instance, keeping its state (not public API).
    #[doc(hidden)]
    fn apply(&self, config: Self::Config);
    /// The instance's stats now (not public API: use [`Instances::stats`]).
    #[doc(hidden)]
    fn stats_now(&self) -> Self::Stats;
    /// Back to new, keeping the config (not public API: use
    /// [`Registry::reset_all`](super::Registry::reset_all)).
    #[doc(hidden)]
    fn reset_all(&self);
}

macro_rules! named {
    ($ty:ty, $config:ty, $stats:ty, $kind:literal, $reset:ident, $create:expr) => {
        impl sealed::Sealed for $ty {}
        impl Named for $ty {
            type Config = $config;
            type Stats = $stats;
            const KIND: &'static str = $kind;
            fn create(name: &Arc<str>, config: Self::Config, env: &Env) -> Self {
                let create: fn(&Arc<str>, Self::Config, &Env) -> Self = $create;
                create(name, config, env)
            }
            fn current_config(&self) -> Self::Config {
                self.config()
            }
            fn apply(&self, config: Self::Config) {
                self.reconfigure(config);
            }
            fn stats_now(&self) -> Self::Stats {
                self.stats()
            }
            fn reset_all(&self) {
                self.$reset();
            }
        }
    };
}

named!(
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitStats,
    "circuit breaker",
    renew,
    |n, c, env| {
        let shared = c.backend().is_shared();
        in_store(env, n, c, shared, CircuitBreaker::with_store, CircuitBreaker::new)
            .with_hub(env.hub.clone())
    }
);
named!(
    KeyedCircuitBreaker<String>,
    CircuitBreakerConfig,
    KeyedCircuitStats,
    "keyed circuit breaker",
    renew,
    |n, c, env| KeyedCircuitBreaker::new(n.clone(), c).with_hub(env.hub.clone())
);
named!(RateLimiter, RateLimitConfig, RateLimiterStats, "rate limiter", reset, |n, c, env| {
    let shared = c.backend().is_shared();
    in_store(env, n, c, shared, RateLimiter::with_store, RateLimiter::new).with_hub(env.hub.clone())
});
named!(
    KeyedRateLimiter<String>,
    RateLimitConfig,
    RateLimiterStats,
    "keyed rate limiter",
    reset,
    |n, c, env| {
        let shared = c.backend().is_shared();
        in_store(env, n, c, shared, KeyedRateLimiter::with_store, KeyedRateLimiter::new)
            .with_hub(env.hub.clone())
    }
);
named!(AdaptiveThrottle, ThrottleConfig, ThrottleStats, "adaptive throttle", renew, |n, c, env| {
    AdaptiveThrottle::new(n.clone(), c).with_hub(env.hub.clone())
});
named!(Bulkhead, BulkheadConfig, BulkheadStats, "bulkhead", reset, |n, c, env| {
    Bulkhead::new(n.clone(), c).with_hub(env.hub.clone())
});
named!(RetryBudget, RetryBudgetConfig, RetryBudgetStats, "retry budget", reset, |n, c, _env| {
    RetryBudget::new(n.clone(), c)
});

named!(Hedge, HedgeConfig, HedgeStats, "hedge", reset, |n, c, env| {
    Hedge::new(n.clone(), c).with_hub(env.hub.clone())
});

/// The instances of one kind in a registry: `registry().circuit_breakers()`,
/// `.keyed_circuit_breakers()`, `.rate_limiters()`, `.keyed_rate_limiters()`, `.bulkheads()`, `.retry_budgets()`, `.hedges()`.
///
/// ```
/// use resilience::circuit::{CircuitBreakerConfig, CircuitState};
/// use resilience::registry::Registry;
///
/// let registry = Registry::new();
/// let config = CircuitBreakerConfig::builder().failure_threshold(3).build()?;
/// let breaker = registry.circuit_breakers().get_or_create("inventory", config)?;
/// assert!(registry.circuit_breakers().get("inventory").is_some());
/// assert_eq!(registry.circuit_breakers().stats("inventory").map(|s| s.state), Some(CircuitState::Closed));
/// assert_eq!(registry.circuit_breakers().names(), [std::sync::Arc::<str>::from("inventory")]);
/// # drop(breaker);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
pub struct Instances<'r, T: Named> {
    slots: &'r Slots<T>,
}

impl<'r, T: Named> Instances<'r, T> {
    pub(super) fn new(slots: &'r Slots<T>) -> Self {
        Instances { slots }
    }

    /// The instance `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<T>> {
        self.slots.get(name)
    }

    /// The instance `name`, created with `config` on first use.
    ///
    /// A config set for the name with [`configure`](Self::configure) (or a config file)
    /// wins over `config`. Asking for an existing name with a different config is an
    /// error, never a silent second instance.
    pub fn get_or_create(&self, name: &str, config: T::Config) -> Result<Arc<T>, ConfigError> {
        self.slots.get_or_create(name, config)
    }

    /// The instance `name` for a call site whose own config is `attribute` (evaluated
    /// only when needed): a config set for the name wins; an existing instance is shared
    /// (a differing call-site config logs a warning once).
    pub fn resolve(
        &self,
        name: &str,
        attribute: impl FnOnce() -> Result<T::Config, ConfigError>,
    ) -> Result<Arc<T>, ConfigError> {
        self.slots.resolve(name, attribute)
    }

    /// Set the config of `name`: it wins over attributes and call sites, and a live
    /// instance is re-configured at once, keeping its state.
    pub fn configure(&self, name: &str, config: T::Config) {
        self.slots.configure(name, config);
    }

    /// The config set for `name` with [`configure`](Self::configure), if any.
    pub fn configured(&self, name: &str) -> Option<T::Config> {
        self.slots.configured(name)
    }

    /// Stats of instance `name`.
    pub fn stats(&self, name: &str) -> Option<T::Stats> {
        self.slots.get(name).map(|i| i.stats_now())
    }

    /// Stats of every instance, by name.
    pub fn all_stats(&self) -> Vec<T::Stats> {
        self.slots.all().into_iter().map(|(_, i)| i.stats_now()).collect()
    }

    /// Every instance, by name.
    pub fn all(&self) -> Vec<(Arc<str>, Arc<T>)> {
        self.slots.all()
    }

    /// The names of every instance, sorted.
    pub fn names(&self) -> Vec<Arc<str>> {
        self.slots.all().into_iter().map(|(name, _)| name).collect()
    }

    /// Every instance back to new (see [`Registry::reset_all`](super::Registry::reset_all)).
    pub(super) fn reset_all(&self) {
        for (_, instance) in self.slots.all() {
            instance.reset_all();
        }
    }

    /// An error for an unknown `name`, listing the known ones.
    pub(super) fn unknown(&self, name: &str) -> ConfigError {
        self.slots.unknown(name)
    }
}

impl<T: Named> fmt::Debug for Instances<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instances").field("kind", &T::KIND).field("names", &self.names()).finish()
    }
}
