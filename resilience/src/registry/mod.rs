//! The process-global registry of named circuit breakers, rate limiters, bulkheads and
//! retry budgets, with stats queries and operator actions.
//!
//! A name identifies one shared instance: every call site (attribute or hand-written
//! code) that asks for circuit `"shopify"` gets the same breaker, so one dead dependency
//! opens one circuit for the whole process.
//!
//! Every kind is reached the same way, through its [`Instances`]:
//! [`circuit_breakers()`](Registry::circuit_breakers),
//! [`keyed_circuit_breakers()`](Registry::keyed_circuit_breakers),
//! [`rate_limiters()`](Registry::rate_limiters),
//! [`keyed_rate_limiters()`](Registry::keyed_rate_limiters),
//! [`bulkheads()`](Registry::bulkheads), [`retry_budgets()`](Registry::retry_budgets) and
//! [`hedges()`](Registry::hedges),
//! each with `get`, `get_or_create`, `resolve`, `configure`, `configured`, `stats`,
//! `all_stats` and `names`.
//!
//! **Precedence** of configs for a name, highest first: a config the registry holds for
//! the name (set with [`Instances::configure`] or loaded from a TOML file) > the config
//! passed by the call site (an attribute's literals over its `preset`) > the preset > the
//! defaults. Asking for an existing name with a *different* config through
//! [`Instances::get_or_create`] is an error, never a silent second instance; the
//! attribute macros share the first instance and log a warning once instead.
//!
//! A [`Registry::new()`] is self-contained: its instances, configs, presets, retry
//! budgets and event subscribers are its own (handy for tests); [`registry()`] is the
//! process default.
//!
//! ```
//! use resilience::circuit::{CircuitBreakerConfig, CircuitState};
//! use resilience::registry;
//!
//! let config = CircuitBreakerConfig::builder().failure_threshold(3).build()?;
//! let breaker = registry().circuit_breakers().get_or_create("docs-inventory", config.clone())?;
//! let same = registry().circuit_breakers().get_or_create("docs-inventory", config)?;
//! assert!(std::sync::Arc::ptr_eq(&breaker, &same));
//!
//! // Operator actions by name.
//! registry().force_open("docs-inventory")?;
//! let state = registry().circuit_breakers().stats("docs-inventory").map(|s| s.state);
//! assert_eq!(state, Some(CircuitState::ForcedOpen));
//! registry().reset("docs-inventory")?;
//!
//! // A stats table of everything in the registry.
//! println!("{}", registry().snapshot());
//! # Ok::<(), resilience::ConfigError>(())
//! ```

mod env;
mod named;
mod slots;
mod snapshot;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::ConfigError;
use crate::bulkhead::Bulkhead;
use crate::circuit::{
    AdaptiveThrottle, Circuit, CircuitBreaker, CircuitBreakerConfig, KeyedCircuitBreaker,
};
use crate::events::{Event, Hub, Interest, Subscription};
use crate::hedge::Hedge;
use crate::presets::{BudgetScope, Preset, ResilienceConfig};
use crate::rate_limit::{KeyedRateLimiter, RateLimiter};
use crate::retry::{RetryBudget, RetryBudgetConfig, RetryPolicy};

#[doc(hidden)]
pub use env::Env;
pub use named::{Instances, Named};
use slots::Slots;
pub use snapshot::RegistrySnapshot;

/// The process-global registry.
pub fn registry() -> &'static Registry {
    static GLOBAL: OnceLock<Registry> = OnceLock::new();
    GLOBAL.get_or_init(|| Registry::with_hub(Hub::global().clone()))
}

/// Named instances and the configs operators set for names.
///
/// Use the global one, [`registry()`]; a separate `Registry::new()` is handy in tests:
/// it owns its instances, configs, presets, budgets and event subscribers.
pub struct Registry {
    circuits: Slots<CircuitBreaker>,
    keyed_circuits: Slots<KeyedCircuitBreaker<String>>,
    /// Circuits in mode `adaptive_throttle`.
    throttles: Slots<AdaptiveThrottle>,
    limiters: Slots<RateLimiter>,
    keyed: Slots<KeyedRateLimiter<String>>,
    bulkheads: Slots<Bulkhead>,
    budgets: Slots<RetryBudget>,
    hedges: Slots<Hedge>,
    retries: RwLock<HashMap<Arc<str>, RetryPolicy>>,
    /// Names looked up as a preset or a configured retry policy (for `unused_configs`).
    used: parking_lot::Mutex<std::collections::HashSet<Arc<str>>>,
    presets: RwLock<HashMap<Arc<str>, ResilienceConfig>>,
    env: Arc<Env>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
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

impl Registry {
    /// An empty registry with its own event subscribers (most code wants the global
    /// [`registry()`]).
    pub fn new() -> Self {
        Self::with_hub(Hub::new())
    }

    fn with_hub(hub: Hub) -> Self {
        let env = Arc::new(Env::new(hub));
        Registry {
            circuits: Slots::new(env.clone()),
            keyed_circuits: Slots::new(env.clone()),
            throttles: Slots::new(env.clone()),
            limiters: Slots::new(env.clone()),
            keyed: Slots::new(env.clone()),
            bulkheads: Slots::new(env.clone()),
            budgets: Slots::new(env.clone()),
            hedges: Slots::new(env.clone()),
            retries: RwLock::default(),
            used: parking_lot::Mutex::default(),
            presets: RwLock::default(),
            env,
        }
    }

    // ----- the instances of each kind ----------------------------------------------

    /// The circuit breakers.
    pub fn circuit_breakers(&self) -> Instances<'_, CircuitBreaker> {
        Instances::new(&self.circuits)
    }

    /// The keyed circuit breakers (one circuit per key).
    pub fn keyed_circuit_breakers(&self) -> Instances<'_, KeyedCircuitBreaker<String>> {
        Instances::new(&self.keyed_circuits)
    }

    /// The (direct) rate limiters.
    pub fn rate_limiters(&self) -> Instances<'_, RateLimiter> {
        Instances::new(&self.limiters)
    }

    /// The keyed rate limiters (one bucket per key).
    pub fn keyed_rate_limiters(&self) -> Instances<'_, KeyedRateLimiter<String>> {
        Instances::new(&self.keyed)
    }

    /// The circuits in mode `adaptive_throttle` (see [`resolve_circuit`](Self::resolve_circuit)).
    pub fn adaptive_throttles(&self) -> Instances<'_, AdaptiveThrottle> {
        Instances::new(&self.throttles)
    }

    /// Circuit `name` as its mode builds it: the [`AdaptiveThrottle`] of
    /// [`adaptive_throttles()`](Self::adaptive_throttles) in mode `adaptive_throttle`, else
    /// the [`CircuitBreaker`] of [`circuit_breakers()`](Self::circuit_breakers). The mode
    /// is the registry's config for `name` if it holds one (set with `configure` or loaded
    /// from a file), else `config`'s: a file can turn a breaker into a throttle. This is
    /// how [`Pipeline::from_config`](crate::Pipeline::from_config) and the tower layers
    /// resolve their circuit.
    pub fn resolve_circuit(
        &self,
        name: &str,
        config: impl FnOnce() -> Result<CircuitBreakerConfig, ConfigError>,
    ) -> Result<Circuit, ConfigError> {
        let config = match self.circuit_breakers().configured(name) {
            Some(configured) => configured,
            None => config()?,
        };
        match config.throttle() {
            Some(throttle) => {
                let throttle = throttle.clone();
                Ok(Circuit::Throttle(self.adaptive_throttles().resolve(name, || Ok(throttle))?))
            }
            None => Ok(Circuit::Breaker(self.circuit_breakers().resolve(name, || Ok(config))?)),
        }
    }

    /// The bulkheads.
    pub fn bulkheads(&self) -> Instances<'_, Bulkhead> {
        Instances::new(&self.bulkheads)
    }

    /// The retry budgets.
    pub fn retry_budgets(&self) -> Instances<'_, RetryBudget> {
        Instances::new(&self.budgets)
    }

    /// The hedges (hedged requests).
    pub fn hedges(&self) -> Instances<'_, Hedge> {
        Instances::new(&self.hedges)
    }

    /// The retry budget `name` for a call site, created on first use with the config set
    /// for the name (see [`retry_budgets().configure`](Instances::configure)) or the
    /// default (10 % of recent calls, floor 10 retries per second, 10 s window).
    pub fn retry_budget(&self, name: &str) -> Arc<RetryBudget> {
        let config = || Ok(RetryBudgetConfig::default());
        match self.budgets.resolve(name, config) {
            Ok(budget) => budget,
            // Unreachable: the default config cannot fail; a fresh budget keeps the call going.
            Err(_) => Arc::new(RetryBudget::new(name, RetryBudgetConfig::default())),
        }
    }

    /// The retry policy for operation `name`: the one set with
    /// [`configure_retry`](Self::configure_retry) (or a config file) if any, else
    /// `attribute`'s. The policy reports its events to this registry's subscribers.
    pub fn resolve_retry(
        &self,
        name: &str,
        attribute: impl FnOnce() -> Result<RetryPolicy, ConfigError>,
    ) -> Result<RetryPolicy, ConfigError> {
        if let Some(p) = self.retries.read().get(name) {
            self.used.lock().insert(Arc::from(name));
            return Ok(p.with_hub(&self.env.hub));
        }
        attribute().map(|p| p.with_hub(&self.env.hub))
    }

    // ----- configs set by operators --------------------------------------------------

    /// Set the retry policy of operation `name` (wins over `#[retry]` literals from the next
    /// call site resolution on; call sites resolve once, so set it at startup).
    pub fn configure_retry(&self, name: &str, policy: RetryPolicy) {
        self.retries.write().insert(Arc::from(name), policy);
    }

    /// Register (or replace) a named preset usable as `preset = "user:name"` in attributes
    /// and as `base = "name"` in config files. Registered names shadow built-in ones.
    pub fn register_preset(&self, name: &str, config: ResilienceConfig) {
        self.presets.write().insert(Arc::from(name), config);
    }

    /// The preset `name`: a registered one, else a built-in ([`Preset`]). A retry policy
    /// whose budget is [shared](BudgetScope::Shared) draws on this registry's budget of
    /// that name; one with a budget [per instance](BudgetScope::Instance) (the built-in
    /// presets) gets it when a call site is built from the preset, named after the call
    /// site.
    pub fn preset(&self, name: &str) -> Option<ResilienceConfig> {
        let preset = match self.presets.read().get(name) {
            Some(c) => {
                self.used.lock().insert(Arc::from(name));
                c.clone()
            }
            None => Preset::from_name(name).map(Preset::config)?,
        };
        let mut preset = preset;
        if let Some(retry) = &preset.retry
            && let Some(BudgetScope::Shared(_)) = &preset.retry_budget
        {
            preset.retry = Some(self.bind_retry_budget(retry, preset.retry_budget.as_ref(), name));
        }
        Some(preset)
    }

    /// `config` with its retry policy drawing on its budget (see
    /// [`bind_retry_budget`](Self::bind_retry_budget)) for the named instance `instance`.
    pub(crate) fn bind_budget(
        &self,
        mut config: ResilienceConfig,
        instance: &str,
    ) -> ResilienceConfig {
        if let Some(retry) = &config.retry {
            config.retry =
                Some(self.bind_retry_budget(retry, config.retry_budget.as_ref(), instance));
        }
        config
    }

    /// `policy` drawing on this registry's budget that `scope` names for the named
    /// instance `instance`: its own (called `instance`), or the shared one; unchanged if
    /// the policy has a budget of its own or there is no scope.
    pub(crate) fn bind_retry_budget(
        &self,
        policy: &RetryPolicy,
        scope: Option<&BudgetScope>,
        instance: &str,
    ) -> RetryPolicy {
        if policy.budget().is_some() {
            return policy.clone();
        }
        match scope {
            Some(BudgetScope::Instance) => policy.with_budget(self.retry_budget(instance)),
            Some(BudgetScope::Shared(name)) => policy.with_budget(self.retry_budget(name)),
            None => policy.clone(),
        }
    }

    /// Apply a whole bundle to `name`: circuit breakers and rate limiters (direct and keyed),
    /// bulkhead, hedge and retry policy called `name` take the bundle's layers, and the bundle
    /// becomes preset `name`.
    pub fn configure(&self, name: &str, config: ResilienceConfig) {
        // The preset keeps the budget scope unbound: a call site built from it later
        // draws on its own budget (or the shared one), not on `name`'s.
        let preset = config.clone();
        let config = self.bind_budget(config, name);
        if let Some(c) = &config.circuit_breaker {
            self.circuits.configure(name, c.clone());
            self.keyed_circuits.configure(name, c.clone());
            if let Some(t) = c.throttle() {
                self.throttles.configure(name, t.clone());
            }
        }
        if let Some(c) = &config.rate_limit {
            self.limiters.configure(name, c.clone());
            self.keyed.configure(name, c.clone());
        }
        if let Some(c) = &config.bulkhead {
            self.bulkheads.configure(name, c.clone());
        }
        if let Some(c) = &config.hedge {
            self.hedges.configure(name, c.clone());
        }
        if let Some(r) = &config.retry {
            self.configure_retry(name, r.clone());
        }
        self.register_preset(name, preset);
    }

    /// Load named configs from TOML text (see [`config`](crate::config) for the format)
    /// into this registry: each name's instances are (re-)configured, the name becomes a
    /// preset, and retry budgets named in the file are this registry's. Nothing is
    /// applied unless the whole text is valid.
    #[cfg(feature = "toml")]
    pub fn load_toml(&self, text: &str) -> Result<(), ConfigError> {
        crate::config::load(self, text)
    }

    /// Apply the TOML file at `path` as [`load_toml`](Self::load_toml) does: live
    /// instances keep their state (a limiter its fill level, a breaker its state and
    /// counters, a bulkhead its calls in flight), and nothing of a file that is invalid
    /// anywhere is applied (the previous config stays). The outcome is an event of topic
    /// [`Interest::CONFIG`] (`ConfigApplied` or `ConfigRejected`, logged at `INFO` /
    /// `WARN`). The first load and every reload are the same operation.
    #[cfg(feature = "toml")]
    pub fn reload_toml(&self, path: impl AsRef<std::path::Path>) -> Result<(), ConfigError> {
        crate::config::reload(self, path.as_ref())
    }

    /// [`reload_toml`](Self::reload_toml) now, then again whenever the file changes on
    /// disk (edited in place or replaced by a rename), on a watcher thread, until the
    /// returned [`TomlWatch`](crate::config::TomlWatch) drops. A change never blocks a
    /// call: instances are re-configured in place. An invalid first load is an error;
    /// an invalid later edit applies nothing and is reported as a `ConfigRejected` event.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), resilience::ConfigError> {
    /// let watch = resilience::registry().watch_toml("resilience.toml")?;
    /// // ... serve; edits to resilience.toml apply to live instances ...
    /// drop(watch);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "watch")]
    pub fn watch_toml(
        &'static self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<crate::config::TomlWatch, ConfigError> {
        crate::config::watch(self, path.as_ref())
    }

    /// The registry's event hub.
    #[cfg(feature = "toml")]
    pub(crate) fn hub(&self) -> &Hub {
        &self.env.hub
    }

    /// Keep the shared state of this registry's instances whose config has a shared
    /// [`Backend`](crate::Backend) (`backend = "redis"`) in `store`, instead of the
    /// process store of their backend (for Redis: the one its `configure` function sets, or
    /// `RESILIENCE_REDIS_URL`). Applies to instances created from now on; a config file's
    /// `[redis]` table sets it. An instance whose config the store cannot keep is created
    /// local, with an error in the log.
    pub fn set_store(&self, store: Arc<dyn crate::backend::StateStore>) {
        self.env.set_store(store);
    }

    // ----- operator actions ----------------------------------------------------------
    //
    // They act on this process's breaker; a shared breaker's circuit in its store is
    // reset with `CircuitBreaker::reset_shared` (reached with `circuit_breakers().get(name)`).

    /// Close circuit `name` and clear its window (this process's breaker only; see
    /// [`CircuitBreaker::reset_shared`] for a shared one); for a keyed circuit `name`,
    /// every key's.
    pub fn reset(&self, name: &str) -> Result<(), ConfigError> {
        self.circuit_action(name, Circuit::reset, KeyedCircuitBreaker::reset)
    }

    /// Every instance of this registry back to new, keeping their configs: circuits
    /// closed with their counters at zero, limiters' buckets full, keyed limiters with no
    /// key, bulkheads' and retry budgets' counters at zero and budgets' windows empty.
    /// Times are read again from each instance's clock, so a test that runs on a fresh
    /// paused tokio clock after another one advanced its own sees no open period, wait or
    /// window left over from it. Instances are kept (call sites that resolved them keep
    /// using them), as are configs, presets and subscribers; no event is emitted. Calls in
    /// flight finish against the reset state (a bulkhead's permits in flight stay taken
    /// until they drop). A shared breaker's circuit in its store is not touched (see
    /// [`CircuitBreaker::reset_shared`]).
    ///
    /// Meant for tests that share the global [`registry()`]: call it at the start of
    /// each test.
    ///
    /// ```
    /// use std::time::Duration;
    /// use resilience::Error;
    /// use resilience::circuit::{CircuitBreakerConfig, CircuitState};
    /// use resilience::registry::Registry;
    ///
    /// let registry = Registry::new();
    /// let config = CircuitBreakerConfig::builder().failure_threshold(1).build()?;
    /// let breaker = registry.circuit_breakers().get_or_create("payments", config)?;
    /// let r: Result<(), Error> = breaker.call(|| Err(Error::timeout(Duration::from_secs(1))));
    /// assert!(r.is_err());
    /// assert_eq!(breaker.state(), CircuitState::Open);
    ///
    /// registry.reset_all();
    /// let stats = registry.circuit_breakers().stats("payments").map(|s| (s.state, s.calls));
    /// assert_eq!(stats, Some((CircuitState::Closed, 0)));
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn reset_all(&self) {
        self.circuit_breakers().reset_all();
        self.keyed_circuit_breakers().reset_all();
        self.adaptive_throttles().reset_all();
        self.rate_limiters().reset_all();
        self.keyed_rate_limiters().reset_all();
        self.bulkheads().reset_all();
        self.retry_budgets().reset_all();
        self.hedges().reset_all();
    }

    /// Force circuit `name` open: every call is rejected until [`reset`](Self::reset)
    /// (for a keyed circuit, every key's, keys seen later included).
    pub fn force_open(&self, name: &str) -> Result<(), ConfigError> {
        self.circuit_action(name, Circuit::force_open, KeyedCircuitBreaker::force_open)
    }

    /// Disable circuit `name`: every call flows, nothing trips it, until
    /// [`reset`](Self::reset) (for a keyed circuit, every key's).
    pub fn disable(&self, name: &str) -> Result<(), ConfigError> {
        self.circuit_action(name, Circuit::disable, KeyedCircuitBreaker::disable)
    }

    /// Force the circuit of one `key` of keyed circuit `name` open, until
    /// [`reset_key`](Self::reset_key).
    ///
    /// ```
    /// use resilience::circuit::{CircuitBreakerConfig, CircuitState};
    /// use resilience::registry::Registry;
    ///
    /// let registry = Registry::new();
    /// let shops = registry.keyed_circuit_breakers().get_or_create("shops", CircuitBreakerConfig::default())?;
    /// registry.force_open_key("shops", "frozen.myshopify.com")?;
    /// assert_eq!(shops.state("frozen.myshopify.com"), CircuitState::ForcedOpen);
    /// assert_eq!(shops.state("other.myshopify.com"), CircuitState::Closed);
    /// registry.reset_key("shops", "frozen.myshopify.com")?;
    /// assert_eq!(shops.state("frozen.myshopify.com"), CircuitState::Closed);
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn force_open_key(&self, name: &str, key: &str) -> Result<(), ConfigError> {
        self.keyed_circuit(name)?.force_open_key(key);
        Ok(())
    }

    /// Close the circuit of one `key` of keyed circuit `name`.
    pub fn reset_key(&self, name: &str, key: &str) -> Result<(), ConfigError> {
        self.keyed_circuit(name)?.reset_key(key);
        Ok(())
    }

    fn keyed_circuit(&self, name: &str) -> Result<Arc<KeyedCircuitBreaker<String>>, ConfigError> {
        let circuits = self.keyed_circuit_breakers();
        circuits.get(name).ok_or_else(|| circuits.unknown(name))
    }

    /// Runs an operator action on circuit `name`: the breaker (or the adaptive throttle),
    /// the keyed breaker, or each kind that uses the name.
    fn circuit_action(
        &self,
        name: &str,
        plain: fn(&Circuit),
        keyed: fn(&KeyedCircuitBreaker<String>),
    ) -> Result<(), ConfigError> {
        let (one, per_key) = (self.circuits.get(name), self.keyed_circuits.get(name));
        let throttle = self.throttles.get(name);
        if one.is_none() && per_key.is_none() && throttle.is_none() {
            return Err(self.circuit_breakers().unknown(name));
        }
        if let Some(b) = one {
            plain(&Circuit::Breaker(b));
        }
        if let Some(t) = throttle {
            plain(&Circuit::Throttle(t));
        }
        if let Some(b) = per_key {
            keyed(&b);
        }
        Ok(())
    }

    /// Call `f` on every event of the topics in `interest` reported by this registry's
    /// instances, until the returned [`Subscription`] drops (see the
    /// [`events`](mod@crate::events) module). The global [`registry()`] also receives the
    /// events of instances built by hand.
    pub fn subscribe(
        &self,
        interest: Interest,
        f: impl Fn(&Event) + Send + Sync + 'static,
    ) -> Subscription {
        self.env.hub.subscribe(interest, f)
    }

    // ----- stats ---------------------------------------------------------------------

    /// A snapshot of everything; its `Display` is a stats table.
    pub fn snapshot(&self) -> RegistrySnapshot {
        let mut rate_limiters = self.rate_limiters().all_stats();
        rate_limiters.extend(self.keyed_rate_limiters().all_stats());
        rate_limiters.sort_by(|a, b| a.name.cmp(&b.name));
        RegistrySnapshot {
            circuits: self.circuit_breakers().all_stats(),
            keyed_circuits: self.keyed_circuit_breakers().all_stats(),
            throttles: self.adaptive_throttles().all_stats(),
            rate_limiters,
            bulkheads: self.bulkheads().all_stats(),
            retry_budgets: self.retry_budgets().all_stats(),
            hedges: self.hedges().all_stats(),
            unused_configs: self.unused_configs(),
        }
    }

    /// Names with a config that nothing has used: no instance, no resolved retry policy,
    /// no preset lookup.
    fn unused_configs(&self) -> Vec<String> {
        let mut configured: Vec<Arc<str>> = self.circuits.configured_names();
        configured.extend(self.limiters.configured_names());
        configured.extend(self.bulkheads.configured_names());
        configured.extend(self.budgets.configured_names());
        configured.extend(self.hedges.configured_names());
        configured.extend(self.retries.read().keys().cloned());
        let used = self.used.lock();
        let exists = |name: &str| {
            used.contains(name)
                || self.circuits.get(name).is_some()
                || self.keyed_circuits.get(name).is_some()
                || self.throttles.get(name).is_some()
                || self.limiters.get(name).is_some()
                || self.keyed.get(name).is_some()
                || self.bulkheads.get(name).is_some()
                || self.budgets.get(name).is_some()
                || self.hedges.get(name).is_some()
        };
        let mut unused: Vec<String> =
            configured.iter().filter(|n| !exists(n)).map(|n| n.to_string()).collect();
        unused.sort();
        unused.dedup();
        unused
    }
}
