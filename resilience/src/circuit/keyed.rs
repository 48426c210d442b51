//! [`KeyedCircuitBreaker`]: one circuit per key (per tenant, per shop), so that one
//! tenant's failures never open another tenant's circuit.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::breaker::CircuitBreaker;
use super::classifier::ResultClassifier;
use super::config::CircuitBreakerConfig;
use super::state::CircuitState;
use super::stats::CircuitStats;
use crate::clock::{SharedClock, as_nanos, default_clock};
use crate::events::Hub;
use crate::{ConfigError, Error, Fault};

/// The map length below which no amortised sweep runs.
const MIN_SWEEP: usize = 1024;

/// Default [`max_keys`](KeyedCircuitBreaker::max_keys).
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// Default [`idle_timeout`](KeyedCircuitBreaker::idle_timeout).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// The least clock time between two sweeps forced by a full map (each visits every
/// key), unless an operator reset made room in between.
const FORCED_SWEEP_EVERY: u64 = 1_000_000_000;

/// `forced_at` when a forced sweep may run at once.
const NEVER: u64 = u64::MAX;

/// How many keys [`KeyedCircuitStats::worst`] lists.
pub const WORST_KEYS: usize = 5;

/// The name-wide operator mode, applied to every key (and to keys created later).
const MODE_NONE: u8 = 0;
const MODE_FORCED_OPEN: u8 = 1;
const MODE_DISABLED: u8 = 2;

/// One key's circuit, plus what the idle sweep knows of it.
struct KeyCircuit {
    breaker: CircuitBreaker,
    /// Calls and rejections seen by the last sweep.
    seen: AtomicU64,
    /// Clock time (nanos) since which the sweeps have seen no call.
    quiet_since: AtomicU64,
}

/// Counters of the keys evicted so far, so that the totals cover every call.
#[derive(Default)]
struct Retired {
    successes: AtomicU64,
    failures: AtomicU64,
    ignored: AtomicU64,
    rejections: AtomicU64,
    evicted: AtomicU64,
}

impl Retired {
    fn add(&self, s: &CircuitStats) {
        self.successes.fetch_add(s.successes, Ordering::Relaxed);
        self.failures.fetch_add(s.failures, Ordering::Relaxed);
        self.ignored.fetch_add(s.ignored, Ordering::Relaxed);
        self.rejections.fetch_add(s.rejections, Ordering::Relaxed);
        self.evicted.fetch_add(1, Ordering::Relaxed);
    }

    fn reset(&self) {
        for c in [&self.successes, &self.failures, &self.ignored, &self.rejections, &self.evicted] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// One [`CircuitBreaker`] per key (per tenant, per shop, per host), all with the same
/// configuration, in a lock-free map: one tenant's failures open that tenant's circuit
/// only.
///
/// Memory stays bounded without help: at most [`max_keys`](Self::max_keys) keys are
/// kept (a new key beyond it first evicts every closed circuit with no failure
/// pending, at most once a second; if none can go, it runs through one shared
/// *overflow* circuit, named `name[overflow]`, never an unbounded map), and a closed circuit with no failure pending that saw no call for
/// [`idle_timeout`](Self::idle_timeout) is dropped (such a circuit is a fresh one, but
/// for its stats). Sweeps run each time the map doubles past 1024 keys (amortised O(1)
/// per insert); [`evict_idle`](Self::evict_idle) sweeps on demand. A key is idle once
/// two sweeps `idle_timeout` apart saw no call for it.
///
/// A call for an existing key looks it up without a lock or an allocation (by a
/// borrowed form: `&str` for `String` keys), then runs through that key's breaker
/// exactly as through a [`CircuitBreaker`], with the same classifier. Each key's breaker
/// is named `name[key]`, so its rejections and events say which tenant is failing.
///
/// Eviction drops only circuits that are as good as fresh ones: closed, with no failure
/// pending. A call in flight on a key while it is evicted reports its outcome to the
/// dropped circuit (the key's next call starts a fresh one).
///
/// ```
/// use std::time::Duration;
/// use resilience::Error;
/// use resilience::circuit::{CircuitBreakerConfig, CircuitState, KeyedCircuitBreaker};
///
/// let config = CircuitBreakerConfig::builder().failure_threshold(3).build()?;
/// let per_shop: KeyedCircuitBreaker = KeyedCircuitBreaker::new("shops", config);
/// for _ in 0..3 {
///     let r: Result<(), Error> =
///         per_shop.call("frozen.myshopify.com", || Err(Error::timeout(Duration::from_secs(1))));
///     assert!(r.is_err());
/// }
/// assert_eq!(per_shop.state("frozen.myshopify.com"), CircuitState::Open);
/// // Another shop's circuit is still closed.
/// assert_eq!(per_shop.call("healthy.myshopify.com", || Ok::<_, Error>(7)), Ok(7));
/// # Ok::<(), resilience::ConfigError>(())
/// ```
pub struct KeyedCircuitBreaker<K = String>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    name: Arc<str>,
    clock: SharedClock,
    config: ArcSwap<CircuitBreakerConfig>,
    map: papaya::HashMap<K, Arc<KeyCircuit>>,
    /// Keys in the map or being inserted: never above `max_keys`.
    reserved: AtomicUsize,
    max_keys: AtomicUsize,
    idle: AtomicU64,
    sweep_at: AtomicUsize,
    /// Clock time (nanos) of the last sweep forced by a full map, or [`NEVER`].
    forced_at: AtomicU64,
    mode: AtomicU8,
    /// The circuit of the keys that found the map full.
    overflow: ArcSwap<KeyCircuit>,
    retired: Retired,
    hub: Hub,
}

impl<K> fmt::Debug for KeyedCircuitBreaker<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreaker")
            .field("name", &self.name)
            .field("keys", &self.map.len())
            .finish_non_exhaustive()
    }
}

/// A key as it reads in a name: `"shop"` without the quotes of its `Debug` form.
fn label(key: &dyn fmt::Debug) -> String {
    let text = format!("{key:?}");
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.to_owned(),
        None => text,
    }
}

/// Whether a circuit is as good as a fresh one: closed, with no failure pending.
fn is_clean(s: &CircuitStats) -> bool {
    s.state == CircuitState::Closed
        && s.consecutive_failures == 0
        && s.failure_rate.is_none_or(|r| r == 0.0)
}

/// How bad a circuit looks, for [`KeyedCircuitStats::worst`]: open first, then
/// half-open, then by failure rate and consecutive failures.
fn badness(s: &CircuitStats) -> (u8, u64, u32, u64) {
    let state = match s.state {
        CircuitState::ForcedOpen | CircuitState::Open => 3,
        CircuitState::HalfOpen => 2,
        CircuitState::Closed => 1,
        CircuitState::Disabled => 0,
    };
    // Rates compare as whole parts per million.
    let rate = s.failure_rate.map_or(0, |r| (r * 1_000_000.0) as u64);
    (state, rate, s.consecutive_failures, s.failures)
}

impl<K> KeyedCircuitBreaker<K>
where
    K: Hash + Eq + Clone + Send + Sync + fmt::Debug + 'static,
{
    /// An empty keyed breaker on the default clock.
    pub fn new(name: impl Into<Arc<str>>, config: CircuitBreakerConfig) -> Self {
        Self::with_clock(name, config, default_clock())
    }

    /// An empty keyed breaker on `clock` (every key's breaker reads it). A config with a
    /// shared [`Backend`](crate::Backend) shares each key's circuit, named `name[key]`,
    /// through the process's store for that backend.
    pub fn with_clock(
        name: impl Into<Arc<str>>,
        config: CircuitBreakerConfig,
        clock: SharedClock,
    ) -> Self {
        let name: Arc<str> = name.into();
        let hub = Hub::default();
        let overflow = Self::circuit(&name, "overflow", &config, &clock, &hub);
        KeyedCircuitBreaker {
            overflow: ArcSwap::from_pointee(overflow),
            config: ArcSwap::from_pointee(config),
            map: papaya::HashMap::new(),
            reserved: AtomicUsize::new(0),
            max_keys: AtomicUsize::new(DEFAULT_MAX_KEYS),
            idle: AtomicU64::new(as_nanos(DEFAULT_IDLE_TIMEOUT)),
            sweep_at: AtomicUsize::new(MIN_SWEEP),
            forced_at: AtomicU64::new(NEVER),
            mode: AtomicU8::new(MODE_NONE),
            retired: Retired::default(),
            hub,
            clock,
            name,
        }
    }

    /// Report events to `hub` instead of the process default (for a registry's instances).
    pub(crate) fn with_hub(mut self, hub: Hub) -> Self {
        let config = self.config.load_full();
        self.overflow = ArcSwap::from_pointee(Self::circuit(
            &self.name,
            "overflow",
            &config,
            &self.clock,
            &hub,
        ));
        self.hub = hub;
        self
    }

    fn circuit(
        name: &str,
        key: &str,
        config: &CircuitBreakerConfig,
        clock: &SharedClock,
        hub: &Hub,
    ) -> KeyCircuit {
        let breaker =
            CircuitBreaker::with_clock(format!("{name}[{key}]"), config.clone(), clock.clone())
                .with_hub(hub.clone());
        KeyCircuit {
            breaker,
            seen: AtomicU64::new(0),
            quiet_since: AtomicU64::new(as_nanos(clock.now())),
        }
    }

    /// The name shared by every key (each key's breaker is `name[key]`).
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The configuration shared by all keys.
    pub fn config(&self) -> CircuitBreakerConfig {
        (*self.config.load_full()).clone()
    }

    /// The most keys kept at once ([`DEFAULT_MAX_KEYS`] unless set).
    pub fn max_keys(&self) -> usize {
        self.max_keys.load(Ordering::Relaxed)
    }

    /// Keep at most `max` keys (at least 1). Errors: `max` is zero. Keys already in
    /// memory beyond the new bound stay until they are evicted.
    pub fn set_max_keys(&self, max: usize) -> Result<(), ConfigError> {
        if max == 0 {
            return Err(ConfigError::new("max_keys", "must be at least 1 (got 0)"));
        }
        self.max_keys.store(max, Ordering::Relaxed);
        Ok(())
    }

    /// How long a clean circuit (closed, no failure pending) is kept without a call
    /// ([`DEFAULT_IDLE_TIMEOUT`] unless set).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_nanos(self.idle.load(Ordering::Relaxed))
    }

    /// Drop clean circuits after `idle` without a call.
    pub fn set_idle_timeout(&self, idle: Duration) {
        self.idle.store(as_nanos(idle), Ordering::Relaxed);
    }

    /// The circuit of `key`, inserted (closed) if missing; the overflow circuit when the
    /// map is full and nothing can be evicted.
    #[inline]
    fn lookup<'g, Q, G>(
        &'g self,
        map: &'g papaya::HashMapRef<'_, K, Arc<KeyCircuit>, std::hash::RandomState, G>,
        key: &Q,
    ) -> KeyRef<'g>
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
        G: papaya::Guard,
    {
        match map.get(key) {
            Some(kc) => KeyRef::Key(kc),
            None => self.insert(map, key),
        }
    }

    #[cold]
    #[inline(never)]
    fn insert<'g, Q, G>(
        &'g self,
        map: &'g papaya::HashMapRef<'_, K, Arc<KeyCircuit>, std::hash::RandomState, G>,
        key: &Q,
    ) -> KeyRef<'g>
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
        G: papaya::Guard,
    {
        self.maybe_sweep();
        if !self.reserve() {
            // Full: clean circuits make way (they are fresh ones but for their stats).
            if self.may_force_sweep() {
                self.sweep(true);
            }
            if !self.reserve() {
                return KeyRef::Overflow(self.overflow.load_full());
            }
        }
        let config = self.config.load_full();
        let mut created = false;
        let kc = map.get_or_insert_with(key.to_owned(), || {
            created = true;
            let kc = Self::circuit(&self.name, &label(&key), &config, &self.clock, &self.hub);
            match self.mode.load(Ordering::Acquire) {
                MODE_FORCED_OPEN => kc.breaker.force_open(),
                MODE_DISABLED => kc.breaker.disable(),
                _ => {}
            }
            Arc::new(kc)
        });
        if !created {
            // Another thread inserted it first.
            self.reserved.fetch_sub(1, Ordering::AcqRel);
        }
        KeyRef::Key(kc)
    }

    /// Whether a full map may be swept now: at most once a second of clock time (a
    /// sweep visits every key, and a map full of failing tenants would otherwise be
    /// swept on every call of a new one), or at once after an operator reset.
    fn may_force_sweep(&self) -> bool {
        let now = as_nanos(self.clock.now());
        let last = self.forced_at.load(Ordering::Acquire);
        if last != NEVER && now.saturating_sub(last) < FORCED_SWEEP_EVERY {
            return false;
        }
        self.forced_at.compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Takes a place for one more key, if there is one.
    fn reserve(&self) -> bool {
        let max = self.max_keys();
        self.reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .is_ok()
    }

    /// Amortised eviction: sweeps when the map has grown to the threshold, then sets the
    /// next threshold to twice what is left (at least [`MIN_SWEEP`]).
    fn maybe_sweep(&self) {
        let at = self.sweep_at.load(Ordering::Acquire);
        if self.map.len() < at {
            return;
        }
        if self
            .sweep_at
            .compare_exchange(at, usize::MAX, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let removed = self.evict_idle();
        let next = at.saturating_sub(removed).saturating_mul(2).max(MIN_SWEEP);
        self.sweep_at.store(next, Ordering::Release);
    }

    /// Drops every clean circuit (closed, no failure pending) that saw no call for the
    /// idle timeout; returns how many. Runs on its own as keys are inserted; call it to
    /// reclaim memory sooner.
    pub fn evict_idle(&self) -> usize {
        self.sweep(false)
    }

    /// Removes clean circuits: idle ones, or every one with `all_clean`.
    fn sweep(&self, all_clean: bool) -> usize {
        let idle = self.idle.load(Ordering::Relaxed);
        let now = as_nanos(self.clock.now());
        let mut removed = 0;
        self.map.pin().retain(|_, kc| {
            let s = kc.breaker.stats();
            let activity = s.calls.saturating_add(s.rejections);
            let quiet = if kc.seen.swap(activity, Ordering::Relaxed) == activity {
                now.saturating_sub(kc.quiet_since.load(Ordering::Relaxed)) >= idle
            } else {
                kc.quiet_since.store(now, Ordering::Relaxed);
                false
            };
            let evict = is_clean(&s) && (all_clean || quiet);
            if evict {
                self.retired.add(&s);
                removed += 1;
            }
            !evict
        });
        self.reserved.fetch_sub(removed, Ordering::AcqRel);
        if removed > 0 {
            tracing::debug!(name = %self.name, removed, "circuit breaker: evicted idle keys");
        }
        removed
    }

    /// Runs `op` through `key`'s circuit, counting every error as a failure (see
    /// [`CircuitBreaker::call`]).
    #[inline]
    pub fn call<Q, T, E, F>(&self, key: &Q, op: F) -> Result<T, E>
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
        E: From<Error>,
        F: FnOnce() -> Result<T, E>,
    {
        self.call_with(key, &super::AllErrors, op)
    }

    /// Runs `op` through `key`'s circuit, classifying its errors with `classifier` (see
    /// [`CircuitBreaker::call_with`]).
    #[inline]
    pub fn call_with<Q, T, E, C, F>(&self, key: &Q, classifier: &C, op: F) -> Result<T, E>
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
        E: From<Error>,
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Result<T, E>,
    {
        let map = self.map.pin();
        self.lookup(&map, key).breaker().call_with(classifier, op)
    }

    /// Pipeline form of [`call_with`](Self::call_with), as [`CircuitBreaker::run`].
    #[inline]
    pub fn run<Q, T, E, C, F>(&self, key: &Q, classifier: &C, op: F) -> Result<T, Fault<E>>
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        let map = self.map.pin();
        self.lookup(&map, key).breaker().run(classifier, op)
    }

    /// `key`'s circuit, held across an await (the map's guard is not).
    #[cfg(feature = "tokio")]
    fn owned<Q>(&self, key: &Q) -> Arc<KeyCircuit>
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
    {
        let map = self.map.pin();
        match self.lookup(&map, key) {
            KeyRef::Key(kc) => Arc::clone(kc),
            KeyRef::Overflow(kc) => kc,
        }
    }

    /// Async [`call_with`](Self::call_with), as [`CircuitBreaker::call_async_with`].
    #[cfg(feature = "tokio")]
    pub async fn call_async_with<Q, T, E, C, F, Fut>(
        &self,
        key: &Q,
        classifier: &C,
        op: F,
    ) -> Result<T, E>
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
        E: From<Error>,
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let kc = self.owned(key);
        kc.breaker.call_async_with(classifier, op).await
    }

    /// Async [`run`](Self::run), as [`CircuitBreaker::run_async`].
    #[cfg(feature = "tokio")]
    pub async fn run_async<Q, T, E, C, F, Fut>(
        &self,
        key: &Q,
        classifier: &C,
        op: F,
    ) -> Result<T, Fault<E>>
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        let kc = self.owned(key);
        kc.breaker.run_async(classifier, op).await
    }

    /// `key`'s breaker, if the key is in memory.
    pub fn get<Q>(&self, key: &Q) -> Option<KeyBreaker>
    where
        Q: ?Sized + Hash + Eq,
        K: Borrow<Q>,
    {
        self.map.pin().get(key).map(|kc| KeyBreaker(Arc::clone(kc)))
    }

    /// The state of `key`'s circuit (`Closed` for a key not in memory).
    pub fn state<Q>(&self, key: &Q) -> CircuitState
    where
        Q: ?Sized + Hash + Eq,
        K: Borrow<Q>,
    {
        match self.map.pin().get(key) {
            Some(kc) => kc.breaker.state(),
            None => match self.mode.load(Ordering::Acquire) {
                MODE_FORCED_OPEN => CircuitState::ForcedOpen,
                MODE_DISABLED => CircuitState::Disabled,
                _ => CircuitState::Closed,
            },
        }
    }

    /// Stats of `key`'s circuit, if the key is in memory.
    pub fn stats_for<Q>(&self, key: &Q) -> Option<CircuitStats>
    where
        Q: ?Sized + Hash + Eq,
        K: Borrow<Q>,
    {
        self.map.pin().get(key).map(|kc| kc.breaker.stats())
    }

    /// Forces `key`'s circuit open (see [`CircuitBreaker::force_open`]) until
    /// [`reset_key`](Self::reset_key).
    pub fn force_open_key<Q>(&self, key: &Q)
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
    {
        let map = self.map.pin();
        self.lookup(&map, key).breaker().force_open();
    }

    /// Closes `key`'s circuit (see [`CircuitBreaker::reset`]); nothing for a key not in
    /// memory.
    pub fn reset_key<Q>(&self, key: &Q)
    where
        Q: ?Sized + Hash + Eq,
        K: Borrow<Q>,
    {
        if let Some(kc) = self.map.pin().get(key) {
            kc.breaker.reset();
            // A clean circuit can make room for a new key at once.
            self.forced_at.store(NEVER, Ordering::Release);
        }
    }

    /// Forces every key's circuit open, including keys seen later, until
    /// [`reset`](Self::reset).
    pub fn force_open(&self) {
        self.set_mode(MODE_FORCED_OPEN, CircuitBreaker::force_open);
    }

    /// Disables every key's circuit (calls flow, nothing trips), including keys seen
    /// later, until [`reset`](Self::reset).
    pub fn disable(&self) {
        self.set_mode(MODE_DISABLED, CircuitBreaker::disable);
    }

    /// Closes every key's circuit and ends a [`force_open`](Self::force_open) or
    /// [`disable`](Self::disable) (stats counters are kept).
    pub fn reset(&self) {
        self.set_mode(MODE_NONE, CircuitBreaker::reset);
    }

    /// The state an operator set for every key with [`force_open`](Self::force_open) or
    /// [`disable`](Self::disable) (`ForcedOpen` or `Disabled`), until
    /// [`reset`](Self::reset); `None` when each key's circuit runs on its own.
    pub fn operator_state(&self) -> Option<CircuitState> {
        match self.mode.load(Ordering::Acquire) {
            MODE_FORCED_OPEN => Some(CircuitState::ForcedOpen),
            MODE_DISABLED => Some(CircuitState::Disabled),
            _ => None,
        }
    }

    fn set_mode(&self, mode: u8, apply: fn(&CircuitBreaker)) {
        self.mode.store(mode, Ordering::Release);
        self.forced_at.store(NEVER, Ordering::Release);
        for kc in self.map.pin().values() {
            apply(&kc.breaker);
        }
        apply(&self.overflow.load().breaker);
    }

    /// Back to new: no key, counters at zero, no operator mode (for `Registry::reset_all`).
    pub(crate) fn renew(&self) {
        self.mode.store(MODE_NONE, Ordering::Release);
        // Counted one by one, so that the reservations stay exact under concurrent inserts.
        let mut removed = 0;
        self.map.pin().retain(|_, _| {
            removed += 1;
            false
        });
        self.reserved.fetch_sub(removed, Ordering::AcqRel);
        self.retired.reset();
        self.overflow.load().breaker.renew();
        self.sweep_at.store(MIN_SWEEP, Ordering::Release);
        self.forced_at.store(NEVER, Ordering::Release);
    }

    /// Installs a new configuration for every key (each keeps its state, as with
    /// [`CircuitBreaker::reconfigure`]) and for keys seen later.
    pub fn reconfigure(&self, config: CircuitBreakerConfig) {
        for kc in self.map.pin().values() {
            kc.breaker.reconfigure(config.clone());
        }
        self.overflow.load().breaker.reconfigure(config.clone());
        self.config.store(Arc::new(config));
    }

    /// Keys in memory.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is in memory.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Totals over every key since creation or a registry reset (evicted keys
    /// included), the number of keys and of open ones, and the [`WORST_KEYS`] worst
    /// keys (open first, then by failure rate and consecutive failures).
    pub fn stats(&self) -> KeyedCircuitStats {
        let r = &self.retired;
        let mut totals = KeyedCircuitStats {
            name: self.name.to_string(),
            keys: 0,
            open_keys: 0,
            calls: 0,
            successes: r.successes.load(Ordering::Relaxed),
            failures: r.failures.load(Ordering::Relaxed),
            ignored: r.ignored.load(Ordering::Relaxed),
            rejections: r.rejections.load(Ordering::Relaxed),
            evicted: r.evicted.load(Ordering::Relaxed),
            worst: Vec::new(),
        };
        let mut all: Vec<KeyCircuitStats> = Vec::new();
        let map = self.map.pin();
        let overflow = self.overflow.load();
        let entries = map.iter().map(|(k, kc)| (Some(label(k)), kc)).chain(
            // The overflow circuit is no key; it is listed once it was used.
            Some((None, &*overflow)).filter(|(_, kc)| kc.seen_any()),
        );
        for (key, kc) in entries {
            let s = kc.breaker.stats();
            if key.is_some() {
                totals.keys += 1;
                if matches!(s.state, CircuitState::Open | CircuitState::ForcedOpen) {
                    totals.open_keys += 1;
                }
            }
            let key = key.unwrap_or_else(|| "overflow".to_owned());
            totals.successes = totals.successes.saturating_add(s.successes);
            totals.failures = totals.failures.saturating_add(s.failures);
            totals.ignored = totals.ignored.saturating_add(s.ignored);
            totals.rejections = totals.rejections.saturating_add(s.rejections);
            if !is_clean(&s) || s.failures > 0 || s.rejections > 0 {
                all.push(KeyCircuitStats { key, stats: s });
            }
        }
        totals.calls =
            totals.successes.saturating_add(totals.failures).saturating_add(totals.ignored);
        all.sort_by(|a, b| badness(&b.stats).cmp(&badness(&a.stats)).then(a.key.cmp(&b.key)));
        all.truncate(WORST_KEYS);
        totals.worst = all;
        totals
    }
}

impl KeyCircuit {
    fn seen_any(&self) -> bool {
        let s = self.breaker.stats();
        s.calls > 0 || s.rejections > 0
    }
}

/// A key's circuit, or the overflow one.
enum KeyRef<'g> {
    Key(&'g Arc<KeyCircuit>),
    Overflow(Arc<KeyCircuit>),
}

impl KeyRef<'_> {
    #[inline(always)]
    fn breaker(&self) -> &CircuitBreaker {
        match self {
            KeyRef::Key(kc) => &kc.breaker,
            KeyRef::Overflow(kc) => &kc.breaker,
        }
    }
}

/// One key's [`CircuitBreaker`], from [`KeyedCircuitBreaker::get`] (it dereferences to
/// the breaker; an evicted key's breaker lives on until this handle drops, unused by
/// later calls).
pub struct KeyBreaker(Arc<KeyCircuit>);

impl std::ops::Deref for KeyBreaker {
    type Target = CircuitBreaker;

    fn deref(&self) -> &CircuitBreaker {
        &self.0.breaker
    }
}

impl fmt::Debug for KeyBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.breaker.fmt(f)
    }
}

/// One key's circuit in [`KeyedCircuitStats::worst`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct KeyCircuitStats {
    /// The key (`overflow` for the circuit of keys that found the map full).
    pub key: String,
    /// Its circuit's stats (named `name[key]`).
    pub stats: CircuitStats,
}

/// A snapshot of a [`KeyedCircuitBreaker`]: totals over every key and the worst keys.
///
/// ```
/// use resilience::circuit::{CircuitBreakerConfig, CircuitState, KeyedCircuitBreaker};
///
/// let config = CircuitBreakerConfig::builder().failure_threshold(1).build()?;
/// let breaker: KeyedCircuitBreaker = KeyedCircuitBreaker::new("tenants", config);
/// let _ = breaker.call("a", || Err::<(), _>(resilience::Error::timeout(std::time::Duration::from_secs(1))));
/// let _ = breaker.call("b", || Ok::<_, resilience::Error>(()));
/// let stats = breaker.stats();
/// assert_eq!((stats.keys, stats.open_keys, stats.calls), (2, 1, 2));
/// assert_eq!(stats.worst[0].key, "a");
/// assert_eq!(stats.worst[0].stats.state, CircuitState::Open);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct KeyedCircuitStats {
    /// The name shared by every key.
    pub name: String,
    /// Keys in memory (the overflow circuit is not one).
    pub keys: u64,
    /// Keys whose circuit is open or forced open.
    pub open_keys: u64,
    /// Calls that ran, over every key (evicted ones included).
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Calls whose outcome was ignored.
    pub ignored: u64,
    /// Calls rejected without running.
    pub rejections: u64,
    /// Keys evicted so far (idle, or to make room).
    pub evicted: u64,
    /// The worst keys, worst first: at most [`WORST_KEYS`], only keys with a failure, a
    /// rejection or a circuit not closed.
    pub worst: Vec<KeyCircuitStats>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn keyed(threshold: u32) -> (KeyedCircuitBreaker, ManualClock) {
        let clock = ManualClock::new();
        let config = CircuitBreakerConfig::builder()
            .failure_threshold(threshold)
            .recovery_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|e| unreachable!("{e}"));
        (KeyedCircuitBreaker::with_clock("k", config, clock.shared()), clock)
    }

    fn fail(b: &KeyedCircuitBreaker, key: &str) -> Result<(), Error> {
        b.call(key, || Err(Error::timeout(Duration::from_secs(1))))
    }

    #[test]
    fn keys_have_independent_circuits() {
        let (b, _) = keyed(2);
        assert!(fail(&b, "a").is_err());
        assert!(fail(&b, "a").is_err());
        assert_eq!(b.state("a"), CircuitState::Open);
        assert_eq!(b.state("b"), CircuitState::Closed);
        assert_eq!(b.call("b", || Ok::<_, Error>(1)), Ok(1));
        match b.call("a", || Ok::<_, Error>(1)) {
            Err(Error::CircuitOpen { name, .. }) => assert_eq!(&*name, "k[a]"),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn idle_clean_keys_are_evicted_and_failing_ones_kept() {
        let (b, clock) = keyed(5);
        assert_eq!(b.call("quiet", || Ok::<_, Error>(())), Ok(()));
        assert!(fail(&b, "failing").is_err());
        assert_eq!(b.evict_idle(), 0);
        clock.advance(Duration::from_secs(599));
        assert_eq!(b.evict_idle(), 0);
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.evict_idle(), 1);
        assert_eq!(b.len(), 1);
        assert!(b.get("failing").is_some());
        let s = b.stats();
        assert_eq!((s.calls, s.evicted, s.keys), (2, 1, 1));
    }

    #[test]
    fn a_used_key_is_not_idle() {
        let (b, clock) = keyed(5);
        assert_eq!(b.call("a", || Ok::<_, Error>(())), Ok(()));
        assert_eq!(b.evict_idle(), 0);
        clock.advance(Duration::from_secs(500));
        assert_eq!(b.call("a", || Ok::<_, Error>(())), Ok(()));
        clock.advance(Duration::from_secs(500));
        // Used since the last sweep: its quiet period starts now.
        assert_eq!(b.evict_idle(), 0);
        clock.advance(Duration::from_secs(600));
        assert_eq!(b.evict_idle(), 1);
    }

    #[test]
    fn the_key_count_never_exceeds_the_bound() {
        let (b, _) = keyed(1);
        assert!(b.set_max_keys(0).is_err());
        assert_eq!(b.set_max_keys(3), Ok(()));
        for i in 0..3 {
            assert!(fail(&b, &format!("bad-{i}")).is_err());
        }
        // Every kept circuit is open: a new key runs through the overflow circuit.
        assert_eq!(b.call("new", || Ok::<_, Error>(1)), Ok(1));
        assert_eq!(b.len(), 3);
        assert!(b.get("new").is_none());
        // A clean key makes way for a new one.
        b.reset_key("bad-0");
        assert_eq!(b.call("newer", || Ok::<_, Error>(2)), Ok(2));
        assert_eq!(b.len(), 3);
        assert!(b.get("newer").is_some() && b.get("bad-0").is_none());
    }

    #[test]
    fn a_full_map_is_swept_at_most_once_a_second() {
        let (b, clock) = keyed(3);
        assert_eq!(b.set_max_keys(2), Ok(()));
        let _ = fail(&b, "a");
        let _ = fail(&b, "b");
        // Full of failing keys: the first new key sweeps, in vain, and overflows.
        assert_eq!(b.call("c", || Ok::<_, Error>(1)), Ok(1));
        assert!(b.get("c").is_none());
        // "a" recovers, but the map is not swept again within the second.
        assert_eq!(b.call("a", || Ok::<_, Error>(1)), Ok(1));
        assert_eq!(b.call("d", || Ok::<_, Error>(1)), Ok(1));
        assert!(b.get("d").is_none() && b.get("a").is_some());
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.call("d", || Ok::<_, Error>(1)), Ok(1));
        assert!(b.get("d").is_some() && b.get("a").is_none());
    }

    #[test]
    fn the_bound_holds_under_threads() {
        let (b, _) = keyed(1);
        assert_eq!(b.set_max_keys(64), Ok(()));
        std::thread::scope(|s| {
            for t in 0..4 {
                let b = &b;
                s.spawn(move || {
                    for i in 0..500 {
                        let _ = fail(b, &format!("{t}-{i}"));
                        assert!(b.len() <= 64);
                    }
                });
            }
        });
        assert!(b.len() <= 64);
    }

    #[test]
    fn operator_actions_per_name_and_per_key() {
        let (b, _) = keyed(5);
        b.force_open_key("a");
        assert_eq!(b.state("a"), CircuitState::ForcedOpen);
        assert_eq!(b.call("b", || Ok::<_, Error>(())), Ok(()));
        b.reset_key("a");
        assert_eq!(b.state("a"), CircuitState::Closed);
        b.force_open();
        assert!(b.call("b", || Ok::<_, Error>(())).is_err());
        assert!(b.call("unseen", || Ok::<_, Error>(())).is_err());
        b.reset();
        assert_eq!(b.call("unseen", || Ok::<_, Error>(3)), Ok(3));
    }

    #[test]
    fn stats_list_the_worst_keys_first() {
        let (b, _) = keyed(3);
        for _ in 0..3 {
            let _ = fail(&b, "open");
        }
        let _ = fail(&b, "one-failure");
        let _ = fail(&b, "one-failure");
        let _ = fail(&b, "other");
        for i in 0..10 {
            assert_eq!(b.call(&format!("ok-{i}"), || Ok::<_, Error>(())), Ok(()));
        }
        let s = b.stats();
        assert_eq!((s.keys, s.open_keys), (13, 1));
        let keys: Vec<&str> = s.worst.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(keys, ["open", "one-failure", "other"]);
    }

    #[test]
    fn reconfigure_applies_to_every_key_and_later_ones() {
        let (b, _) = keyed(5);
        let _ = fail(&b, "a");
        let one = CircuitBreakerConfig::builder().failure_threshold(1).build();
        b.reconfigure(one.unwrap_or_else(|e| unreachable!("{e}")));
        let _ = fail(&b, "b");
        assert_eq!(b.state("b"), CircuitState::Open);
        let _ = fail(&b, "a");
        assert_eq!(b.state("a"), CircuitState::Open);
    }
}
