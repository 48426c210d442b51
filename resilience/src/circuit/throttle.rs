//! Client-side adaptive throttling ("Handling Overload" in Google's SRE book).
//!
//! Where a [`CircuitBreaker`](super::CircuitBreaker) is all-or-nothing, an
//! [`AdaptiveThrottle`] rejects each call with probability
//! `max(0, (requests − k·accepts) / (requests + 1))`, counted over a sliding time window:
//! a backend that serves part of its traffic keeps getting about `k` times what it accepts,
//! and the client sheds the rest locally instead of piling it onto the backend.

#[cfg(feature = "tokio")]
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use super::call::{fault_outcome, outcome_of};
use super::classifier::{AllErrors, CallOutcome, ResultClassifier};
use super::config::{MAX_BUCKETS, MAX_DURATION, MIN_BUCKET_WIDTH, Window};
use super::state::CircuitState;
use super::window::FailureWindow;
use crate::clock::{SharedClock, default_clock};
use crate::config::{self, LayerConfig, Value};
use crate::error::check;
use crate::events::{EventKind, Hub, Interest, Layer};
use crate::registry::Registry;
use crate::{ConfigError, Error, Fault};

/// Largest accepted `k`.
const MAX_K: f64 = 1_000.0;

/// How an [`AdaptiveThrottle`] throttles: the multiplier `k` and the window its counts
/// cover.
///
/// The defaults are those of the SRE book: `k = 2` over the last 120 s (in 12 buckets of
/// 10 s). A smaller `k` (down to 1) sheds more aggressively; a larger one lets more
/// traffic reach a struggling backend.
///
/// ```
/// use std::time::Duration;
/// use resilience::circuit::ThrottleConfig;
///
/// let config = ThrottleConfig::builder().k(1.5).window(Duration::from_secs(60)).build()?;
/// assert_eq!(config.k(), 1.5);
/// assert_eq!(config.window(), Duration::from_secs(60));
/// assert!(ThrottleConfig::builder().k(0.5).build().is_err());
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ThrottleConfig {
    k: f64,
    window: Duration,
    buckets: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig { k: 2.0, window: Duration::from_secs(120), buckets: 12 }
    }
}

impl ThrottleConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ThrottleConfigBuilder {
        ThrottleConfigBuilder { base: ThrottleConfig::default() }
    }

    /// The multiplier `k` of accepted requests the client keeps sending.
    pub fn k(&self) -> f64 {
        self.k
    }

    /// How far back requests and accepts are counted.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Number of buckets the window slides by.
    pub fn buckets(&self) -> u32 {
        self.buckets
    }
}

/// Builds a [`ThrottleConfig`]; [`build`](Self::build) validates it.
#[derive(Debug, Clone)]
#[must_use]
pub struct ThrottleConfigBuilder {
    base: ThrottleConfig,
}

impl ThrottleConfigBuilder {
    /// The multiplier `k`, in `[1, 1000]` (default 2).
    pub fn k(mut self, k: f64) -> Self {
        self.base.k = k;
        self
    }

    /// The window requests and accepts are counted over (default 120 s, at most 365 days).
    pub fn window(mut self, window: Duration) -> Self {
        self.base.window = window;
        self
    }

    /// Number of buckets of the window, in `[1, 1000]` (default 12), each at least 1 ms.
    pub fn buckets(mut self, buckets: u32) -> Self {
        self.base.buckets = buckets;
        self
    }

    /// The config, or the first invalid value.
    pub fn build(self) -> Result<ThrottleConfig, ConfigError> {
        let c = self.base;
        check::in_range("k", c.k, 1.0, MAX_K)?;
        check::positive("window", c.window)?;
        check::at_most("window", c.window, MAX_DURATION)?;
        check::between("buckets", c.buckets, 1, MAX_BUCKETS)?;
        if c.window / c.buckets < MIN_BUCKET_WIDTH {
            return Err(ConfigError::new(
                "window",
                format!(
                    "must give buckets of at least {MIN_BUCKET_WIDTH:?} (got {:?} in {} buckets)",
                    c.window, c.buckets
                ),
            ));
        }
        Ok(c)
    }
}

/// Reads the keys `k` (a number), `window` (a duration) and `buckets` (a count), in
/// config files and `Deserialize` alike.
///
/// ```
/// use std::time::Duration;
/// use resilience::circuit::ThrottleConfig;
/// use resilience::config::{LayerConfig, Value};
///
/// let config = ThrottleConfig::from_entries(
///     None,
///     &[("k", Value::Float(1.5)), ("window", Value::Str("60s"))],
///     resilience::registry(),
/// )?;
/// assert_eq!((config.k(), config.window()), (1.5, Duration::from_secs(60)));
/// assert!(ThrottleConfig::from_entries(None, &[("k", Value::Float(0.5))], resilience::registry()).is_err());
/// # Ok::<(), resilience::ConfigError>(())
/// ```
impl LayerConfig for ThrottleConfig {
    const LAYER: &'static str = "adaptive_throttle";
    const KEYS: &'static [&'static str] = &["k", "window", "buckets"];

    fn from_entries(
        base: Option<Self>,
        entries: &[(&str, Value<'_>)],
        _: &Registry,
    ) -> Result<Self, ConfigError> {
        let mut b = ThrottleConfigBuilder { base: base.unwrap_or_default() };
        for &(key, value) in entries {
            b = match key {
                "k" => b.k(value.float(key)?),
                "window" => b.window(value.duration(key)?),
                "buckets" => b.buckets(value.count(key)?),
                _ => return Err(config::unknown(key, Self::KEYS)),
            };
        }
        b.build()
    }
}

/// The source of the random draws: the thread's generator, or a seeded sequence.
#[derive(Debug)]
enum Draw {
    Thread,
    /// A splitmix64 sequence: one atomic add per draw, replayable from its seed.
    Seeded(AtomicU64),
}

impl Draw {
    /// A uniform number in `[0, 1)`.
    fn next(&self) -> f64 {
        match self {
            Draw::Thread => fastrand::f64(),
            Draw::Seeded(state) => {
                let mut z = state
                    .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
                    .wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
            }
        }
    }
}

/// What an [`AdaptiveThrottle`] counts now (see [`AdaptiveThrottle::stats`]).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ThrottleStats {
    /// The throttle's name.
    pub name: String,
    /// [`CircuitState::Closed`] while it throttles, or what an operator set:
    /// [`CircuitState::ForcedOpen`] (every call rejected) or [`CircuitState::Disabled`]
    /// (every call admitted).
    pub state: CircuitState,
    /// The multiplier `k` of its config.
    pub k: f64,
    /// Requests in the window: admitted calls with an outcome plus rejected ones.
    pub requests: u64,
    /// Admitted calls in the window that the backend served.
    pub accepts: u64,
    /// Calls rejected since the throttle was created.
    pub rejections: u64,
    /// The probability that the next call is rejected.
    pub rejection_probability: f64,
}

/// A client-side adaptive throttle: rejects calls with a probability that grows as the
/// backend accepts fewer of them.
///
/// Each call is rejected with probability `max(0, (requests − k·accepts) / (requests + 1))`
/// where `requests` counts the calls of the last `window` (rejected ones included) and
/// `accepts` those the backend served. While the backend serves everything, the
/// probability is zero and no random draw is made. When it serves a fraction of what it
/// gets, the calls that reach it converge to about `k · accepts`: enough to notice
/// recovery, without piling the rest onto an overloaded service. After the backend
/// recovers, the old failures leave the window and the throttle admits every call again
/// within one window.
///
/// A rejection is [`Error::CircuitOpen`] with `state` [`CircuitState::Open`] and
/// `retry_after` one bucket width (the time for the window to slide one step), and is
/// reported to [event](crate::events) subscribers of [`Interest::REJECTIONS`] as
/// [`EventKind::Rejected`] with the reason `"adaptive throttle"`.
///
/// Recording an outcome is a compare-and-swap on one bucket; admission sums the
/// window's buckets. Neither locks nor allocates. A call classified
/// [`CallOutcome::Ignored`] is not counted.
///
/// ```
/// use std::time::Duration;
/// use resilience::Error;
/// use resilience::circuit::{AdaptiveThrottle, ThrottleConfig};
/// use resilience::clock::ManualClock;
///
/// let clock = ManualClock::new();
/// let throttle = AdaptiveThrottle::with_clock("search", ThrottleConfig::default(), clock.shared())
///     .seeded(7);
/// // A backend that fails every call: the throttle soon sheds most of them.
/// let mut reached = 0;
/// for _ in 0..1_000 {
///     let _ = throttle.call(|| {
///         reached += 1;
///         Err::<(), Error>(Error::timeout(Duration::from_secs(1)))
///     });
/// }
/// assert!(reached < 100, "{reached} calls reached the backend");
/// assert!(throttle.stats().rejection_probability > 0.9);
/// ```
#[derive(Debug)]
pub struct AdaptiveThrottle {
    name: Arc<str>,
    /// The window and its buckets are fixed at creation.
    config: ThrottleConfig,
    /// `k`'s bits: the one value [`reconfigure`](Self::reconfigure) changes.
    k: AtomicU64,
    /// What an operator set: `NORMAL`, `FORCED_OPEN` or `DISABLED`.
    overridden: AtomicU8,
    window: FailureWindow,
    clock: SharedClock,
    hub: Hub,
    draw: Draw,
    rejections: AtomicU64,
}

const NORMAL: u8 = 0;
const FORCED_OPEN: u8 = 1;
const DISABLED: u8 = 2;

impl AdaptiveThrottle {
    /// A throttle named `name` on the process default clock.
    pub fn new(name: impl Into<Arc<str>>, config: ThrottleConfig) -> Self {
        AdaptiveThrottle::with_clock(name, config, default_clock())
    }

    /// A throttle named `name` on `clock` (a [`ManualClock`](crate::clock::ManualClock) in
    /// tests).
    pub fn with_clock(
        name: impl Into<Arc<str>>,
        config: ThrottleConfig,
        clock: SharedClock,
    ) -> Self {
        let window =
            FailureWindow::new(Window::Time { duration: config.window, buckets: config.buckets });
        AdaptiveThrottle {
            name: name.into(),
            k: AtomicU64::new(config.k.to_bits()),
            overridden: AtomicU8::new(NORMAL),
            config,
            window,
            clock,
            hub: Hub::global().clone(),
            draw: Draw::Thread,
            rejections: AtomicU64::new(0),
        }
    }

    /// The same throttle drawing from a sequence seeded with `seed` instead of the
    /// thread's generator, so that a test replays the same rejections.
    #[must_use]
    pub fn seeded(mut self, seed: u64) -> Self {
        self.draw = Draw::Seeded(AtomicU64::new(seed));
        self
    }

    /// The throttle's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same throttle reporting its events to `hub` (a registry's) instead of the
    /// process-global one.
    #[must_use]
    pub(crate) fn with_hub(mut self, hub: Hub) -> Self {
        self.hub = hub;
        self
    }

    /// The throttle's config now (its `k` as last reconfigured).
    pub fn config(&self) -> ThrottleConfig {
        ThrottleConfig { k: self.k(), ..self.config.clone() }
    }

    fn k(&self) -> f64 {
        f64::from_bits(self.k.load(Ordering::Relaxed))
    }

    /// Apply `config`'s `k` to the live throttle, keeping its counts. The window and its
    /// buckets are fixed when the throttle is created: a new window takes a new throttle.
    pub fn reconfigure(&self, config: ThrottleConfig) {
        self.k.store(config.k.to_bits(), Ordering::Relaxed);
    }

    /// Reject every call until [`reset`](Self::reset) (an operator action, as
    /// [`CircuitBreaker::force_open`](super::CircuitBreaker::force_open)).
    pub fn force_open(&self) {
        self.overridden.store(FORCED_OPEN, Ordering::Relaxed);
    }

    /// Admit every call until [`reset`](Self::reset); outcomes are still counted.
    pub fn disable(&self) {
        self.overridden.store(DISABLED, Ordering::Relaxed);
    }

    /// Back to throttling from a clean window, after [`force_open`](Self::force_open) or
    /// [`disable`](Self::disable) (or to forget the past).
    pub fn reset(&self) {
        self.window.clear();
        self.overridden.store(NORMAL, Ordering::Relaxed);
    }

    /// [`reset`](Self::reset), and the rejection count back to zero.
    pub fn renew(&self) {
        self.reset();
        self.rejections.store(0, Ordering::Relaxed);
    }

    /// [`CircuitState::Closed`] while it throttles, else what an operator set.
    pub fn state(&self) -> CircuitState {
        match self.overridden.load(Ordering::Relaxed) {
            FORCED_OPEN => CircuitState::ForcedOpen,
            DISABLED => CircuitState::Disabled,
            _ => CircuitState::Closed,
        }
    }

    fn probability_at(&self, now: Duration) -> f64 {
        let c = self.window.counts(now);
        let requests = c.total as f64;
        let accepts = c.total.saturating_sub(c.failures) as f64;
        ((requests - self.k() * accepts) / (requests + 1.0)).max(0.0)
    }

    /// The probability that a call made now is rejected.
    pub fn rejection_probability(&self) -> f64 {
        self.probability_at(self.clock.now())
    }

    /// Requests and accepts in the window, rejections so far and the current rejection
    /// probability.
    pub fn stats(&self) -> ThrottleStats {
        let now = self.clock.now();
        let c = self.window.counts(now);
        ThrottleStats {
            name: self.name.to_string(),
            state: self.state(),
            k: self.k(),
            requests: c.total,
            accepts: c.total.saturating_sub(c.failures),
            rejections: self.rejections.load(Ordering::Relaxed),
            rejection_probability: self.probability_at(now),
        }
    }

    /// Decide whether a call may go to the backend now. On `Ok`, run it and report how it
    /// went with [`record`](Self::record); a rejection is already counted.
    ///
    /// ```
    /// use resilience::circuit::{AdaptiveThrottle, CallOutcome, ThrottleConfig};
    ///
    /// let throttle = AdaptiveThrottle::new("search", ThrottleConfig::default());
    /// throttle.admit()?;
    /// throttle.record(CallOutcome::Success);
    /// assert_eq!(throttle.stats().accepts, 1);
    /// # Ok::<(), resilience::Error>(())
    /// ```
    pub fn admit(&self) -> Result<(), Error> {
        match self.overridden.load(Ordering::Relaxed) {
            NORMAL => {}
            FORCED_OPEN => return Err(self.reject()),
            _ => return Ok(()),
        }
        let now = self.clock.now();
        let p = self.probability_at(now);
        if p > 0.0 && self.draw.next() < p {
            self.window.record(now, true);
            return Err(self.reject());
        }
        Ok(())
    }

    /// Count the outcome of a call that [`admit`](Self::admit) let through.
    pub fn record(&self, outcome: CallOutcome) {
        match outcome {
            CallOutcome::Success => self.window.record(self.clock.now(), false),
            CallOutcome::Failure => self.window.record(self.clock.now(), true),
            CallOutcome::Ignored => {}
        }
    }

    #[cold]
    fn reject(&self) -> Error {
        self.rejections.fetch_add(1, Ordering::Relaxed);
        let retry_after = self.config.window / self.config.buckets;
        self.hub.report(
            Layer::CircuitBreaker,
            &self.name,
            Interest::REJECTIONS,
            tracing::Level::DEBUG,
            || {
                (
                    self.clock.now(),
                    EventKind::Rejected {
                        retry_after: Some(retry_after),
                        reason: "adaptive throttle",
                    },
                )
            },
        );
        let state = match self.state() {
            CircuitState::ForcedOpen => CircuitState::ForcedOpen,
            _ => CircuitState::Open,
        };
        Error::circuit_rejected(self.name.clone(), retry_after, state)
    }

    /// Run `op` unless the throttle rejects it; every error counts as not accepted.
    pub fn call<T, E, F>(&self, op: F) -> Result<T, E>
    where
        E: From<Error>,
        F: FnOnce() -> Result<T, E>,
    {
        self.call_with(&AllErrors, op)
    }

    /// Run `op` unless the throttle rejects it, counting its result as `classifier` says.
    pub fn call_with<T, E, C, F>(&self, classifier: &C, op: F) -> Result<T, E>
    where
        E: From<Error>,
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Result<T, E>,
    {
        self.admit().map_err(E::from)?;
        let result = op();
        self.record(outcome_of(&result, classifier));
        result
    }

    /// Pipeline form of [`call_with`](Self::call_with) (what
    /// [`pipeline::layer::throttle`](crate::pipeline::layer::throttle) runs): a rejection
    /// by this throttle is `Fault::Rejected`; an inner timeout counts as not accepted,
    /// other inner rejections are not counted, `Fault::Inner` goes to `classifier`.
    pub fn run<T, E, C, F>(&self, classifier: &C, op: F) -> Result<T, Fault<E>>
    where
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        self.admit().map_err(Fault::Rejected)?;
        let result = op();
        self.record(fault_outcome(&result, classifier));
        result
    }

    /// Async [`run`](Self::run).
    #[cfg(feature = "tokio")]
    pub async fn run_async<T, E, C, Fut>(&self, classifier: &C, op: Fut) -> Result<T, Fault<E>>
    where
        C: ResultClassifier<T, E> + ?Sized,
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        self.admit().map_err(Fault::Rejected)?;
        let result = op.await;
        self.record(fault_outcome(&result, classifier));
        result
    }

    /// Async [`call`](Self::call).
    #[cfg(feature = "tokio")]
    pub async fn call_async<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        E: From<Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_async_with(&AllErrors, op).await
    }

    /// Async [`call_with`](Self::call_with).
    #[cfg(feature = "tokio")]
    pub async fn call_async_with<T, E, C, F, Fut>(&self, classifier: &C, op: F) -> Result<T, E>
    where
        E: From<Error>,
        C: ResultClassifier<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.admit().map_err(E::from)?;
        let result = op().await;
        self.record(outcome_of(&result, classifier));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Mutex;

    const MS: Duration = Duration::from_millis(1);

    fn throttle(clock: &ManualClock) -> AdaptiveThrottle {
        AdaptiveThrottle::with_clock("t", ThrottleConfig::default(), clock.shared()).seeded(1)
    }

    #[test]
    fn a_healthy_backend_is_never_throttled() {
        let clock = ManualClock::new();
        let t = throttle(&clock);
        for _ in 0..10_000 {
            assert_eq!(t.call(|| Ok::<_, Error>(())), Ok(()));
            clock.advance(MS);
        }
        assert_eq!(t.stats().rejections, 0);
        assert_eq!(t.rejection_probability(), 0.0);
    }

    #[test]
    fn probability_follows_the_formula() {
        let clock = ManualClock::new();
        let t = throttle(&clock);
        // 10 accepted, 30 failed: (40 - 2·10) / 41.
        for _ in 0..10 {
            t.record(CallOutcome::Success);
        }
        for _ in 0..30 {
            t.record(CallOutcome::Failure);
        }
        let s = t.stats();
        assert_eq!((s.requests, s.accepts), (40, 10));
        assert!((s.rejection_probability - 20.0 / 41.0).abs() < 1e-12);
        // Ignored outcomes change nothing.
        t.record(CallOutcome::Ignored);
        assert_eq!(t.stats().requests, 40);
    }

    #[test]
    fn rejections_are_circuit_open_counted_and_reported() {
        let clock = ManualClock::new();
        let mut t = throttle(&clock);
        t.hub = Hub::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let _sub = t.hub.subscribe(Interest::REJECTIONS, move |e| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.kind.clone());
            }
        });
        for _ in 0..100 {
            t.record(CallOutcome::Failure);
        }
        let mut rejected = 0;
        for _ in 0..100 {
            match t.admit() {
                Err(Error::CircuitOpen { name, retry_after, state }) => {
                    assert_eq!(&*name, "t");
                    assert_eq!(retry_after, Duration::from_secs(10));
                    assert_eq!(state, CircuitState::Open);
                    rejected += 1;
                }
                Err(other) => panic!("unexpected {other:?}"),
                Ok(()) => t.record(CallOutcome::Failure),
            }
        }
        assert!(rejected > 90, "{rejected}");
        assert_eq!(t.stats().rejections, rejected);
        let events = seen.lock().map(|v| v.clone()).unwrap_or_default();
        let throttled = events
            .iter()
            .filter(|k| matches!(k, EventKind::Rejected { reason: "adaptive throttle", .. }))
            .count() as u64;
        assert_eq!(throttled, rejected);
    }

    #[test]
    fn the_same_seed_replays_the_same_rejections() {
        let run = || {
            let clock = ManualClock::new();
            let t = throttle(&clock);
            (0..500)
                .map(|i| {
                    clock.advance(MS);
                    t.call(|| if i % 3 == 0 { Ok(()) } else { Err(Error::timeout(MS)) }).is_ok()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn old_outcomes_leave_the_window() {
        let clock = ManualClock::new();
        let t = throttle(&clock);
        for _ in 0..100 {
            t.record(CallOutcome::Failure);
        }
        assert!(t.rejection_probability() > 0.9);
        clock.advance(Duration::from_secs(120));
        assert_eq!(t.stats().requests, 0);
        assert_eq!(t.rejection_probability(), 0.0);
    }

    #[test]
    fn invalid_configs_are_errors() {
        for k in [0.0, 0.99, f64::NAN, f64::INFINITY, -1.0, 1_001.0] {
            assert!(ThrottleConfig::builder().k(k).build().is_err(), "k = {k}");
        }
        assert!(ThrottleConfig::builder().window(Duration::ZERO).build().is_err());
        assert!(ThrottleConfig::builder().buckets(0).build().is_err());
        assert!(
            ThrottleConfig::builder().window(Duration::from_millis(5)).buckets(10).build().is_err()
        );
        assert!(ThrottleConfig::builder().k(1.0).build().is_ok());
    }

    #[test]
    fn config_keys_are_read_and_checked() {
        let reg = Registry::new();
        let c = ThrottleConfig::from_entries(
            None,
            &[("k", Value::Int(3)), ("window", Value::Str("30s")), ("buckets", Value::Int(6))],
            &reg,
        );
        let c = c.map_err(|e| e.to_string());
        assert_eq!(
            c.as_ref().map(|c| (c.k(), c.window(), c.buckets())),
            Ok((3.0, Duration::from_secs(30), 6))
        );
        for bad in [("k", Value::Str("two")), ("window", Value::Int(5)), ("kk", Value::Int(2))] {
            let err = ThrottleConfig::from_entries(None, &[bad], &reg).map(|_| ());
            assert!(err.is_err(), "{bad:?}");
        }
        let unknown = ThrottleConfig::from_entries(None, &[("kk", Value::Int(2))], &reg);
        assert!(unknown.is_err_and(|e| e.to_string().contains("k, window, buckets")));
    }

    #[cfg(feature = "toml")]
    #[test]
    fn config_deserializes_from_toml() {
        let c: Result<ThrottleConfig, _> = toml::from_str("k = 2.5\nwindow = \"60s\"");
        let c = c.map_err(|e| e.to_string());
        assert_eq!(c.map(|c| (c.k(), c.window())), Ok((2.5, Duration::from_secs(60))));
        let bad: Result<ThrottleConfig, _> = toml::from_str("k = 0.5");
        assert!(bad.is_err_and(|e| e.to_string().contains("k")));
    }

    #[test]
    fn concurrent_recording_counts_every_request() {
        let clock = ManualClock::new();
        let t = Arc::new(throttle(&clock));
        let threads: Vec<_> = (0..4)
            .map(|n| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for i in 0..1_000 {
                        t.record(if (i + n) % 2 == 0 {
                            CallOutcome::Success
                        } else {
                            CallOutcome::Failure
                        });
                    }
                })
            })
            .collect();
        for th in threads {
            assert!(th.join().is_ok());
        }
        let s = t.stats();
        assert_eq!((s.requests, s.accepts), (4_000, 2_000));
        assert_eq!(s.rejection_probability, 0.0);
    }
}
