//! Fault injection for tests: a seedable [`FaultInjector`] that wraps a function and makes
//! it fail at a rate, slow down now and then, or go down completely for a while.
//!
//! Decisions are drawn from a seeded RNG (two draws per call, whatever the outcome), so a
//! seed replays the same sequence of faults. Latency spikes and outage windows follow the
//! injector's [`Clock`](crate::clock::Clock): a blocking spike is `clock.sleep(d)` (which
//! a [`ManualClock`](crate::clock::ManualClock) turns into an instant advance), an async
//! spike sleeps on tokio's timer (instant under a paused clock).
//!
//! An injected fault reaches the caller as `E::from(InjectedFault::..)`, without calling
//! the wrapped function: a failing or unreachable service never sees the request.
//!
//! ```
//! use std::time::Duration;
//! use resilience::chaos::{FaultConfig, FaultInjector, InjectedFault};
//! use resilience::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::new();
//! let config = FaultConfig::builder()
//!     .error_rate(0.2)
//!     .latency_spike(0.05, Duration::from_secs(2))
//!     .outage(Duration::from_secs(3_600), Duration::from_secs(3_630))
//!     .seed(7)
//!     .build()?;
//! let flaky = FaultInjector::with_clock("inventory", config, clock.shared());
//!
//! let mut served = 0;
//! for _ in 0..1_000 {
//!     let _: Result<(), InjectedFault> = flaky.call(|| {
//!         served += 1;
//!         Ok(())
//!     });
//! }
//! let stats = flaky.stats();
//! assert_eq!(stats.calls, 1_000);
//! assert_eq!(stats.passed, served);
//! assert_eq!(stats.passed + stats.injected_errors + stats.outage_rejections, 1_000);
//! assert!((150..250).contains(&stats.injected_errors)); // about 20 %
//!
//! // Spikes moved the clock (about 50 × 2 s); an outage fails every call.
//! assert_eq!(clock.now(), Duration::from_secs(2) * stats.spikes as u32);
//! clock.advance(Duration::from_secs(3_600) - clock.now());
//! assert!(flaky.in_outage());
//! assert_eq!(flaky.call(|| Ok::<_, InjectedFault>(())), Err(InjectedFault::Outage));
//! # Ok::<(), resilience::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::ConfigError;
use crate::clock::{SharedClock, default_clock};
use crate::error::check;

/// Largest accepted spike or outage bound: 365 days.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The fault a [`FaultInjector`] injected in place of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InjectedFault {
    /// A random failure (drawn at the configured error rate).
    Error,
    /// The call fell in an outage window.
    Outage,
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InjectedFault::Error => f.write_str("injected fault: random error"),
            InjectedFault::Outage => f.write_str("injected fault: service down (outage window)"),
        }
    }
}

impl std::error::Error for InjectedFault {}

/// An outage: every call between `start` (included) and `end` (excluded), in clock time,
/// fails with [`InjectedFault::Outage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outage {
    /// Clock time the outage begins.
    pub start: Duration,
    /// Clock time the service is back.
    pub end: Duration,
}

impl Outage {
    /// Whether clock time `now` falls in the outage.
    pub fn contains(&self, now: Duration) -> bool {
        self.start <= now && now < self.end
    }
}

/// What a [`FaultInjector`] injects.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FaultConfig {
    error_rate: f64,
    spike_rate: f64,
    spike: Duration,
    outages: Vec<Outage>,
    seed: u64,
}

impl Default for FaultConfig {
    /// No fault at all, seed 0.
    fn default() -> Self {
        FaultConfig {
            error_rate: 0.0,
            spike_rate: 0.0,
            spike: Duration::ZERO,
            outages: Vec::new(),
            seed: 0,
        }
    }
}

impl FaultConfig {
    /// A builder starting from no fault and seed 0.
    pub fn builder() -> FaultConfigBuilder {
        FaultConfigBuilder { config: FaultConfig::default() }
    }

    /// A builder holding this config, to derive a variant.
    pub fn to_builder(&self) -> FaultConfigBuilder {
        FaultConfigBuilder { config: self.clone() }
    }

    /// Probability that a call (outside outages) fails, in `[0, 1]`.
    pub fn error_rate(&self) -> f64 {
        self.error_rate
    }

    /// Probability that a call is delayed by [`spike`](Self::spike), in `[0, 1]`.
    pub fn spike_rate(&self) -> f64 {
        self.spike_rate
    }

    /// The delay of a latency spike.
    pub fn spike(&self) -> Duration {
        self.spike
    }

    /// The outage windows.
    pub fn outages(&self) -> &[Outage] {
        &self.outages
    }

    /// The RNG seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// Builds a [`FaultConfig`]; [`build`](Self::build) validates.
#[derive(Debug, Clone)]
#[must_use]
pub struct FaultConfigBuilder {
    config: FaultConfig,
}

impl FaultConfigBuilder {
    /// Fail this fraction of calls, in `[0, 1]` (default 0).
    pub fn error_rate(mut self, p: f64) -> Self {
        self.config.error_rate = p;
        self
    }

    /// Delay this fraction of calls (`probability` in `[0, 1]`) by `duration` (at most
    /// 365 days). A spike comes before the call, and before an injected error.
    pub fn latency_spike(mut self, probability: f64, duration: Duration) -> Self {
        self.config.spike_rate = probability;
        self.config.spike = duration;
        self
    }

    /// Add an outage window `[start, end)` in clock time (`start < end`, at most 365 days).
    pub fn outage(mut self, start: Duration, end: Duration) -> Self {
        self.config.outages.push(Outage { start, end });
        self
    }

    /// Remove every outage window.
    pub fn no_outages(mut self) -> Self {
        self.config.outages.clear();
        self
    }

    /// The RNG seed (default 0): a seed replays the same faults.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Validates and builds.
    ///
    /// Errors: a rate that is NaN or outside `[0, 1]`, a spike over 365 days, an outage
    /// that ends before it starts or past 365 days.
    pub fn build(self) -> Result<FaultConfig, ConfigError> {
        let c = self.config;
        check::in_range("error_rate", c.error_rate, 0.0, 1.0)?;
        check::in_range("spike_rate", c.spike_rate, 0.0, 1.0)?;
        check::at_most("spike", c.spike, MAX_DURATION)?;
        for o in &c.outages {
            if o.start >= o.end || o.end > MAX_DURATION {
                return Err(ConfigError::new(
                    "outage",
                    format!(
                        "must start before it ends, and end by {MAX_DURATION:?} (got {:?}..{:?})",
                        o.start, o.end
                    ),
                ));
            }
        }
        Ok(c)
    }
}

/// A snapshot of a [`FaultInjector`]'s counters.
///
/// `calls = passed + injected_errors + outage_rejections`; `spikes` counts delayed calls
/// (of any outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ChaosStats {
    /// The injector's name.
    pub name: String,
    /// Calls made through the injector.
    pub calls: u64,
    /// Calls that reached the wrapped function.
    pub passed: u64,
    /// Random errors injected.
    pub injected_errors: u64,
    /// Latency spikes injected.
    pub spikes: u64,
    /// Calls failed by an outage window.
    pub outage_rejections: u64,
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Pass,
    Fail(InjectedFault),
}

/// Wraps calls and injects errors, latency spikes and outages; see the
/// [module docs](self). Share it as `Arc<FaultInjector>`; every method takes `&self`.
pub struct FaultInjector {
    name: Arc<str>,
    clock: SharedClock,
    config: Mutex<FaultConfig>,
    rng: Mutex<fastrand::Rng>,
    calls: AtomicU64,
    passed: AtomicU64,
    errors: AtomicU64,
    spikes: AtomicU64,
    outages: AtomicU64,
}

impl fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjector")
            .field("name", &self.name)
            .field("config", &*self.config.lock())
            .finish_non_exhaustive()
    }
}

impl FaultInjector {
    /// An injector on the default clock (follows tokio's paused clock in async tests).
    pub fn new(name: impl Into<Arc<str>>, config: FaultConfig) -> Self {
        Self::with_clock(name, config, default_clock())
    }

    /// An injector reading `clock` (a `ManualClock` in blocking tests).
    pub fn with_clock(name: impl Into<Arc<str>>, config: FaultConfig, clock: SharedClock) -> Self {
        FaultInjector {
            name: name.into(),
            clock,
            rng: Mutex::new(fastrand::Rng::with_seed(config.seed)),
            config: Mutex::new(config),
            calls: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            spikes: AtomicU64::new(0),
            outages: AtomicU64::new(0),
        }
    }

    /// The injector's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The current config.
    pub fn config(&self) -> FaultConfig {
        self.config.lock().clone()
    }

    /// Replaces the config, keeping the counters and the RNG's position (a new seed
    /// takes effect at the next [`reset`](Self::reset)).
    pub fn reconfigure(&self, config: FaultConfig) {
        *self.config.lock() = config;
    }

    /// Zeroes the counters and restarts the RNG from the configured seed.
    pub fn reset(&self) {
        let config = self.config.lock();
        *self.rng.lock() = fastrand::Rng::with_seed(config.seed);
        for c in [&self.calls, &self.passed, &self.errors, &self.spikes, &self.outages] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Whether the clock is inside an outage window now.
    pub fn in_outage(&self) -> bool {
        let now = self.clock.now();
        self.config.lock().outages.iter().any(|o| o.contains(now))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ChaosStats {
        ChaosStats {
            name: self.name.to_string(),
            calls: self.calls.load(Ordering::Relaxed),
            passed: self.passed.load(Ordering::Relaxed),
            injected_errors: self.errors.load(Ordering::Relaxed),
            spikes: self.spikes.load(Ordering::Relaxed),
            outage_rejections: self.outages.load(Ordering::Relaxed),
        }
    }

    /// Draws this call's fate: the spike to take first (if any) and the outcome. Two
    /// RNG draws per call whatever happens, so a seed replays the same sequence.
    fn plan(&self) -> (Option<Duration>, Plan) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let (spike_draw, error_draw) = {
            let mut rng = self.rng.lock();
            (rng.f64(), rng.f64())
        };
        let (spike, plan) = {
            let c = self.config.lock();
            let spike = (spike_draw < c.spike_rate).then_some(c.spike);
            // Outages are judged at the time the call reaches the service (after a spike).
            let at = self.clock.now().saturating_add(spike.unwrap_or_default());
            let plan = if c.outages.iter().any(|o| o.contains(at)) {
                Plan::Fail(InjectedFault::Outage)
            } else if error_draw < c.error_rate {
                Plan::Fail(InjectedFault::Error)
            } else {
                Plan::Pass
            };
            (spike, plan)
        };
        if spike.is_some() {
            self.spikes.fetch_add(1, Ordering::Relaxed);
        }
        let counter = match plan {
            Plan::Pass => &self.passed,
            Plan::Fail(InjectedFault::Error) => &self.errors,
            Plan::Fail(InjectedFault::Outage) => &self.outages,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Plan::Fail(fault) = plan {
            tracing::trace!(name = %self.name, %fault, ?spike, "chaos: injecting a fault");
        }
        (spike, plan)
    }

    /// Calls `op` unless a fault is injected; a latency spike sleeps on the injector's
    /// clock first (a `ManualClock` advances at once).
    pub fn call<T, E, F>(&self, op: F) -> Result<T, E>
    where
        E: From<InjectedFault>,
        F: FnOnce() -> Result<T, E>,
    {
        let (spike, plan) = self.plan();
        if let Some(d) = spike {
            self.clock.sleep(d);
        }
        match plan {
            Plan::Pass => op(),
            Plan::Fail(fault) => Err(E::from(fault)),
        }
    }

    /// Async [`call`](Self::call): a latency spike sleeps on tokio's timer.
    #[cfg(feature = "tokio")]
    pub async fn call_async<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        E: From<InjectedFault>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let (spike, plan) = self.plan();
        if let Some(d) = spike {
            tokio::time::sleep(d).await;
        }
        match plan {
            Plan::Pass => op().await,
            Plan::Fail(fault) => Err(E::from(fault)),
        }
    }

    /// `op` wrapped: each call of the returned closure goes through [`call`](Self::call).
    pub fn wrap<'a, T, E, F>(&'a self, mut op: F) -> impl FnMut() -> Result<T, E> + 'a
    where
        E: From<InjectedFault>,
        F: FnMut() -> Result<T, E> + 'a,
    {
        move || self.call(&mut op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn injector(config: FaultConfig) -> (FaultInjector, ManualClock) {
        let clock = ManualClock::new();
        (FaultInjector::with_clock("svc", config, clock.shared()), clock)
    }

    fn outcomes(f: &FaultInjector, n: usize) -> Vec<Result<u32, InjectedFault>> {
        (0..n).map(|_| f.call(|| Ok(1))).collect()
    }

    #[test]
    fn no_fault_by_default() {
        let (f, clock) = injector(FaultConfig::default());
        assert!(outcomes(&f, 100).iter().all(|r| *r == Ok(1)));
        assert_eq!(clock.now(), Duration::ZERO);
        let s = f.stats();
        assert_eq!((s.calls, s.passed, s.injected_errors, s.spikes), (100, 100, 0, 0));
    }

    #[test]
    fn a_seed_replays_the_same_faults_and_reset_restarts_it() {
        let config = FaultConfig::builder().error_rate(0.3).seed(42).build().unwrap();
        let (a, _) = injector(config.clone());
        let (b, _) = injector(config);
        let first = outcomes(&a, 200);
        assert_eq!(first, outcomes(&b, 200));
        a.reset();
        assert_eq!(a.stats().calls, 0);
        assert_eq!(first, outcomes(&a, 200));
        let errors = first.iter().filter(|r| r.is_err()).count() as u64;
        assert_eq!(a.stats().injected_errors, errors);
        assert!((30..90).contains(&errors), "{errors} errors of 200 at p = 0.3");
    }

    #[test]
    fn error_rate_one_never_calls_the_function() {
        let (f, _) = injector(FaultConfig::builder().error_rate(1.0).build().unwrap());
        let mut called = false;
        let r: Result<(), InjectedFault> = f.call(|| {
            called = true;
            Ok(())
        });
        assert_eq!(r, Err(InjectedFault::Error));
        assert!(!called);
    }

    #[test]
    fn spikes_advance_a_manual_clock_by_their_duration() {
        let config =
            FaultConfig::builder().latency_spike(1.0, Duration::from_millis(750)).build().unwrap();
        let (f, clock) = injector(config);
        outcomes(&f, 4);
        assert_eq!(clock.now(), Duration::from_millis(3_000));
        assert_eq!(clock.sleeps(), vec![Duration::from_millis(750); 4]);
        assert_eq!(f.stats().spikes, 4);
    }

    #[test]
    fn outage_fails_every_call_inside_its_window_only() {
        let config = FaultConfig::builder()
            .outage(Duration::from_secs(10), Duration::from_secs(20))
            .build()
            .unwrap();
        let (f, clock) = injector(config);
        assert_eq!(f.call(|| Ok::<_, InjectedFault>(1)), Ok(1));
        clock.advance(Duration::from_secs(10));
        assert!(f.in_outage());
        assert!(outcomes(&f, 5).iter().all(|r| *r == Err(InjectedFault::Outage)));
        clock.advance(Duration::from_secs(10));
        assert!(!f.in_outage());
        assert_eq!(f.call(|| Ok::<_, InjectedFault>(1)), Ok(1));
        let s = f.stats();
        assert_eq!((s.calls, s.passed, s.outage_rejections), (7, 2, 5));
    }

    #[test]
    fn wrap_counts_each_call() {
        let (f, _) = injector(FaultConfig::builder().error_rate(0.5).seed(1).build().unwrap());
        let mut hits = 0_u64;
        let mut wrapped = f.wrap(|| {
            hits += 1;
            Ok::<_, InjectedFault>(())
        });
        for _ in 0..100 {
            let _ = wrapped();
        }
        drop(wrapped);
        assert_eq!(f.stats().passed, hits);
        assert_eq!(f.stats().calls, 100);
    }

    #[test]
    fn invalid_configs_are_errors() {
        for bad in [f64::NAN, -0.1, 1.5, f64::INFINITY] {
            assert!(FaultConfig::builder().error_rate(bad).build().is_err());
            assert!(FaultConfig::builder().latency_spike(bad, Duration::ZERO).build().is_err());
        }
        assert!(FaultConfig::builder().latency_spike(0.5, Duration::MAX).build().is_err());
        let s = Duration::from_secs;
        assert!(FaultConfig::builder().outage(s(5), s(5)).build().is_err());
        assert!(FaultConfig::builder().outage(s(6), s(5)).build().is_err());
        assert!(FaultConfig::builder().outage(s(0), Duration::MAX).build().is_err());
        let e = FaultConfig::builder().error_rate(2.0).build().unwrap_err();
        assert!(e.to_string().contains("error_rate"), "{e}");
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(start_paused = true)]
    async fn async_spikes_sleep_on_tokio_time() {
        let config =
            FaultConfig::builder().latency_spike(1.0, Duration::from_secs(5)).build().unwrap();
        let f = FaultInjector::new("svc-async", config);
        let t0 = tokio::time::Instant::now();
        let r = f.call_async(|| async { Ok::<_, InjectedFault>(3) }).await;
        assert_eq!(r, Ok(3));
        assert_eq!(t0.elapsed(), Duration::from_secs(5));
    }
}
