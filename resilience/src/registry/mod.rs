//! The process-global registry of named circuit breakers, rate limiters, bulkheads and
//! retry budgets, with stats queries and operator actions.
//!
//! A name identifies one shared instance: every call site (attribute or hand-written
//! code) that asks for circuit `"shopify"` gets the same breaker, so one dead dependency
//! opens one circuit for the whole process.
//!
//! **Precedence** of configs for a name, highest first: a config the registry holds for
//! the name (set with `configure_*` or loaded from a TOML file) > the config passed by the
//! call site (an attribute's literals over its `preset`) > the preset > the defaults.
//! Asking for an existing name with a *different* config through
//! [`Registry::circuit_breaker`] (and the other `get-or-create` methods) is an error, never
//! a silent second instance; the attribute macros share the first instance and log a
//! warning once instead.
//!
//! ```
//! use resilience::circuit::{CircuitBreakerConfig, CircuitState};
//! use resilience::registry;
//!
//! let config = CircuitBreakerConfig::builder().failure_threshold(3).build()?;
//! let breaker = registry().circuit_breaker("docs-inventory", config.clone())?;
//! let same = registry().circuit_breaker("docs-inventory", config)?;
//! assert!(std::sync::Arc::ptr_eq(&breaker, &same));
//!
//! // Operator actions by name.
//! registry().force_open("docs-inventory")?;
//! assert_eq!(registry().circuit_stats("docs-inventory").map(|s| s.state), Some(CircuitState::ForcedOpen));
//! registry().reset("docs-inventory")?;
//!
//! // A stats table of everything in the registry.
//! println!("{}", registry().snapshot());
//! # Ok::<(), resilience::ConfigError>(())
//! ```

mod slots;
mod snapshot;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::ConfigError;
use crate::bulkhead::{Bulkhead, BulkheadConfig, BulkheadStats};
use crate::circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitStats};
use crate::events::{self, StateTransition, Subscription};
use crate::presets::{Preset, ResilienceConfig};
use crate::rate_limit::{KeyedRateLimiter, RateLimitConfig, RateLimiter, RateLimiterStats};
use crate::retry::{RetryBudget, RetryBudgetConfig, RetryBudgetStats, RetryPolicy};

use slots::{Named, Slots};
pub use snapshot::RegistrySnapshot;

/// The process-global registry.
pub fn registry() -> &'static Registry {
    static GLOBAL: OnceLock<Registry> = OnceLock::new();
    GLOBAL.get_or_init(Registry::new)
}

/// Named instances and the configs operators set for names.
///
/// Use the global one, [`registry()`]; a separate `Registry::new()` is handy in tests.
#[derive(Default)]
pub struct Registry {
    circuits: Slots<CircuitBreaker>,
    limiters: Slots<RateLimiter>,
    keyed: Slots<KeyedRateLimiter<String>>,
    bulkheads: Slots<Bulkhead>,
    budgets: RwLock<HashMap<Arc<str>, Arc<RetryBudget>>>,
    budget_configs: RwLock<HashMap<Arc<str>, RetryBudgetConfig>>,
    retries: RwLock<HashMap<Arc<str>, RetryPolicy>>,
    presets: RwLock<HashMap<Arc<str>, ResilienceConfig>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("circuit_breakers", &self.circuits.all().len())
            .field("rate_limiters", &(self.limiters.all().len() + self.keyed.all().len()))
            .field("bulkheads", &self.bulkheads.all().len())
            .finish_non_exhaustive()
    }
}

impl Named for CircuitBreaker {
    type Config = CircuitBreakerConfig;
    const KIND: &'static str = "circuit breaker";
    fn create(name: &str, config: Self::Config) -> Self {
        CircuitBreaker::new(name, config)
    }
    fn current_config(&self) -> Self::Config {
        self.config()
    }
    fn apply(&self, config: Self::Config) {
        self.reconfigure(config);
    }
}

impl Named for RateLimiter {
    type Config = RateLimitConfig;
    const KIND: &'static str = "rate limiter";
    fn create(name: &str, config: Self::Config) -> Self {
        RateLimiter::new(name, config)
    }
    fn current_config(&self) -> Self::Config {
        self.config()
    }
    fn apply(&self, config: Self::Config) {
        self.reconfigure(config);
    }
}

impl Named for KeyedRateLimiter<String> {
    type Config = RateLimitConfig;
    const KIND: &'static str = "keyed rate limiter";
    fn create(name: &str, config: Self::Config) -> Self {
        KeyedRateLimiter::new(name, config)
    }
    fn current_config(&self) -> Self::Config {
        self.config()
    }
    fn apply(&self, config: Self::Config) {
        self.reconfigure(config);
    }
}

impl Named for Bulkhead {
    type Config = BulkheadConfig;
    const KIND: &'static str = "bulkhead";
    fn create(name: &str, config: Self::Config) -> Self {
        Bulkhead::new(name, config)
    }
    fn current_config(&self) -> Self::Config {
        self.config()
    }
    fn apply(&self, config: Self::Config) {
        self.reconfigure(config);
    }
}

impl Registry {
    /// An empty registry (most code wants the global [`registry()`]).
    pub fn new() -> Self {
        Self::default()
    }

    // ----- get or create -------------------------------------------------------------

    /// The circuit breaker `name`, created with `config` on first use.
    ///
    /// A config set for the name with [`configure_circuit_breaker`](Self::configure_circuit_breaker)
    /// (or a config file) wins over `config`. Asking for an existing name with a different
    /// config is an error.
    pub fn circuit_breaker(
        &self,
        name: &str,
        config: CircuitBreakerConfig,
    ) -> Result<Arc<CircuitBreaker>, ConfigError> {
        self.circuits.get_or_create(name, config)
    }

    /// The rate limiter `name`, created with `config` on first use (same rules as
    /// [`circuit_breaker`](Self::circuit_breaker)).
    pub fn rate_limiter(
        &self,
        name: &str,
        config: RateLimitConfig,
    ) -> Result<Arc<RateLimiter>, ConfigError> {
        self.limiters.get_or_create(name, config)
    }

    /// The keyed rate limiter `name` (one bucket per key), created with `config` on first use.
    pub fn keyed_rate_limiter(
        &self,
        name: &str,
        config: RateLimitConfig,
    ) -> Result<Arc<KeyedRateLimiter<String>>, ConfigError> {
        self.keyed.get_or_create(name, config)
    }

    /// The bulkhead `name`, created with `config` on first use.
    pub fn bulkhead(
        &self,
        name: &str,
        config: BulkheadConfig,
    ) -> Result<Arc<Bulkhead>, ConfigError> {
        self.bulkheads.get_or_create(name, config)
    }

    /// The retry budget `name`, created on first use with the config set for the name
    /// (see [`configure_retry_budget`](Self::configure_retry_budget)) or the default
    /// (10 % of recent calls, floor 10 retries per second, 10 s window).
    pub fn retry_budget(&self, name: &str) -> Arc<RetryBudget> {
        if let Some(b) = self.budgets.read().get(name) {
            return b.clone();
        }
        let config = self.budget_configs.read().get(name).cloned().unwrap_or_default();
        self.budgets
            .write()
            .entry(Arc::from(name))
            .or_insert_with(|| Arc::new(RetryBudget::new(name, config)))
            .clone()
    }

    /// The circuit breaker `name`, if it exists.
    pub fn get_circuit_breaker(&self, name: &str) -> Option<Arc<CircuitBreaker>> {
        self.circuits.get(name)
    }

    /// The rate limiter `name`, if it exists.
    pub fn get_rate_limiter(&self, name: &str) -> Option<Arc<RateLimiter>> {
        self.limiters.get(name)
    }

    /// The keyed rate limiter `name`, if it exists.
    pub fn get_keyed_rate_limiter(&self, name: &str) -> Option<Arc<KeyedRateLimiter<String>>> {
        self.keyed.get(name)
    }

    /// The bulkhead `name`, if it exists.
    pub fn get_bulkhead(&self, name: &str) -> Option<Arc<Bulkhead>> {
        self.bulkheads.get(name)
    }

    // ----- resolution for generated code ---------------------------------------------

    /// The circuit breaker `name` for a call site whose own config is `attribute`
    /// (evaluated only when needed). Registry config > attribute; an existing instance is
    /// shared (a differing attribute config logs a warning once).
    pub fn resolve_circuit_breaker(
        &self,
        name: &str,
        attribute: impl FnOnce() -> Result<CircuitBreakerConfig, ConfigError>,
    ) -> Result<Arc<CircuitBreaker>, ConfigError> {
        self.circuits.resolve(name, attribute)
    }

    /// Like [`resolve_circuit_breaker`](Self::resolve_circuit_breaker), for a rate limiter.
    pub fn resolve_rate_limiter(
        &self,
        name: &str,
        attribute: impl FnOnce() -> Result<RateLimitConfig, ConfigError>,
    ) -> Result<Arc<RateLimiter>, ConfigError> {
        self.limiters.resolve(name, attribute)
    }

    /// Like [`resolve_circuit_breaker`](Self::resolve_circuit_breaker), for a keyed rate limiter.
    pub fn resolve_keyed_rate_limiter(
        &self,
        name: &str,
        attribute: impl FnOnce() -> Result<RateLimitConfig, ConfigError>,
    ) -> Result<Arc<KeyedRateLimiter<String>>, ConfigError> {
        self.keyed.resolve(name, attribute)
    }

    /// Like [`resolve_circuit_breaker`](Self::resolve_circuit_breaker), for a bulkhead.
    pub fn resolve_bulkhead(
        &self,
        name: &str,
        attribute: impl FnOnce() -> Result<BulkheadConfig, ConfigError>,
    ) -> Result<Arc<Bulkhead>, ConfigError> {
        self.bulkheads.resolve(name, attribute)
    }

    /// The retry policy for operation `name`: the one set with
    /// [`configure_retry`](Self::configure_retry) (or a config file) if any, else `attribute`'s.
    pub fn resolve_retry(
        &self,
        name: &str,
        attribute: impl FnOnce() -> Result<RetryPolicy, ConfigError>,
    ) -> Result<RetryPolicy, ConfigError> {
        if let Some(p) = self.retries.read().get(name) {
            return Ok(p.clone());
        }
        attribute()
    }

    // ----- configs set by operators --------------------------------------------------

    /// Set the config of circuit `name`: it wins over attributes and call sites, and a live
    /// breaker is re-configured at once, keeping its counters.
    pub fn configure_circuit_breaker(&self, name: &str, config: CircuitBreakerConfig) {
        self.circuits.configure(name, config);
    }

    /// Set the config of rate limiter `name` (direct and keyed), as
    /// [`configure_circuit_breaker`](Self::configure_circuit_breaker) does.
    pub fn configure_rate_limiter(&self, name: &str, config: RateLimitConfig) {
        self.limiters.configure(name, config.clone());
        self.keyed.configure(name, config);
    }

    /// Set the config of bulkhead `name`.
    pub fn configure_bulkhead(&self, name: &str, config: BulkheadConfig) {
        self.bulkheads.configure(name, config);
    }

    /// Set the retry policy of operation `name` (wins over `#[retry]` literals from the next
    /// call site resolution on; call sites resolve once, so set it at startup).
    pub fn configure_retry(&self, name: &str, policy: RetryPolicy) {
        self.retries.write().insert(Arc::from(name), policy);
    }

    /// Set the config of retry budget `name`; a live budget is re-configured.
    pub fn configure_retry_budget(&self, name: &str, config: RetryBudgetConfig) {
        self.budget_configs.write().insert(Arc::from(name), config.clone());
        if let Some(b) = self.budgets.read().get(name) {
            b.reconfigure(config);
        }
    }

    /// Register (or replace) a named preset usable as `preset = "name"` in attributes and
    /// as `base = "name"` in config files. Registered names shadow built-in ones.
    pub fn register_preset(&self, name: &str, config: ResilienceConfig) {
        self.presets.write().insert(Arc::from(name), config);
    }

    /// The preset `name`: a registered one, else a built-in ([`Preset`]).
    pub fn preset(&self, name: &str) -> Option<ResilienceConfig> {
        if let Some(c) = self.presets.read().get(name) {
            return Some(c.clone());
        }
        Preset::from_name(name).map(Preset::config)
    }

    /// Apply a whole bundle to `name`: circuit breaker, rate limiter, bulkhead and retry
    /// policy called `name` take the bundle's layers, and the bundle becomes preset `name`.
    pub fn configure(&self, name: &str, config: ResilienceConfig) {
        if let Some(c) = &config.circuit_breaker {
            self.configure_circuit_breaker(name, c.clone());
        }
        if let Some(c) = &config.rate_limit {
            self.configure_rate_limiter(name, c.clone());
        }
        if let Some(c) = &config.bulkhead {
            self.configure_bulkhead(name, c.clone());
        }
        if let Some(r) = &config.retry {
            self.configure_retry(name, r.clone());
        }
        self.register_preset(name, config);
    }

    // ----- operator actions ----------------------------------------------------------
    //
    // They act on this process's breaker; a shared breaker's circuit in its store is
    // reset with `CircuitBreaker::reset_shared` (see `get_circuit_breaker`).

    /// Close circuit `name` and clear its window (this process's breaker only; see
    /// [`CircuitBreaker::reset_shared`] for a shared one).
    pub fn reset(&self, name: &str) -> Result<(), ConfigError> {
        self.circuits.get(name).ok_or_else(|| self.circuits.unknown(name))?.reset();
        Ok(())
    }

    /// Force circuit `name` open: every call is rejected until [`reset`](Self::reset).
    pub fn force_open(&self, name: &str) -> Result<(), ConfigError> {
        self.circuits.get(name).ok_or_else(|| self.circuits.unknown(name))?.force_open();
        Ok(())
    }

    /// Disable circuit `name`: every call flows, nothing trips it, until [`reset`](Self::reset).
    pub fn disable(&self, name: &str) -> Result<(), ConfigError> {
        self.circuits.get(name).ok_or_else(|| self.circuits.unknown(name))?.disable();
        Ok(())
    }

    /// Call `f` on every circuit state transition (see the [`events`](mod@crate::events) module).
    pub fn subscribe(&self, f: impl Fn(&StateTransition) + Send + Sync + 'static) -> Subscription {
        events::subscribe(f)
    }

    // ----- stats ---------------------------------------------------------------------

    /// Stats of circuit `name`.
    pub fn circuit_stats(&self, name: &str) -> Option<CircuitStats> {
        self.circuits.get(name).map(|c| c.stats())
    }

    /// Stats of every circuit, by name.
    pub fn all_circuit_stats(&self) -> Vec<CircuitStats> {
        self.circuits.all().into_iter().map(|(_, c)| c.stats()).collect()
    }

    /// Stats of rate limiter `name` (direct, else keyed).
    pub fn rate_limiter_stats(&self, name: &str) -> Option<RateLimiterStats> {
        self.limiters
            .get(name)
            .map(|l| l.stats())
            .or_else(|| self.keyed.get(name).map(|l| l.stats()))
    }

    /// Stats of every rate limiter (direct and keyed), by name.
    pub fn all_rate_limiter_stats(&self) -> Vec<RateLimiterStats> {
        let mut v: Vec<RateLimiterStats> =
            self.limiters.all().into_iter().map(|(_, l)| l.stats()).collect();
        v.extend(self.keyed.all().into_iter().map(|(_, l)| l.stats()));
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Stats of bulkhead `name`.
    pub fn bulkhead_stats(&self, name: &str) -> Option<BulkheadStats> {
        self.bulkheads.get(name).map(|b| b.stats())
    }

    /// Stats of every bulkhead, by name.
    pub fn all_bulkhead_stats(&self) -> Vec<BulkheadStats> {
        self.bulkheads.all().into_iter().map(|(_, b)| b.stats()).collect()
    }

    /// Stats of every retry budget, by name.
    pub fn all_retry_budget_stats(&self) -> Vec<RetryBudgetStats> {
        let mut v: Vec<RetryBudgetStats> =
            self.budgets.read().values().map(|b| b.stats()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// A snapshot of everything; its `Display` is a stats table.
    pub fn snapshot(&self) -> RegistrySnapshot {
        RegistrySnapshot {
            circuits: self.all_circuit_stats(),
            rate_limiters: self.all_rate_limiter_stats(),
            bulkheads: self.all_bulkhead_stats(),
            retry_budgets: self.all_retry_budget_stats(),
        }
    }
}
