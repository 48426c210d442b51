//! [`CircuitBreakerConfig`]: when a breaker trips and how it recovers.

use std::time::Duration;

use super::throttle::ThrottleConfig;
use crate::config::{self, BackendKeys, LayerConfig, Value};
use crate::error::check;
use crate::registry::Registry;
use crate::{Backend, ConfigError};

/// Largest accepted count (thresholds, `min_calls`, count-window size).
pub(crate) const MAX_CALLS: u32 = 100_000;
/// Largest accepted half-open limit (`half_open_max_calls`, `success_threshold`).
pub(crate) const MAX_PROBES: u32 = 10_000;
/// Largest accepted number of buckets in a time window.
pub(crate) const MAX_BUCKETS: u32 = 1_000;
/// Largest accepted duration (recovery timeout, slow-call threshold, time window): 365 days.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// Largest number of time-window buckets of a Redis-backed circuit (each report sums
/// them inside Redis).
pub(crate) const MAX_SHARED_BUCKETS: u32 = 32;
/// Smallest accepted bucket width of a time window (`duration / buckets`).
pub(crate) const MIN_BUCKET_WIDTH: Duration = Duration::from_millis(1);

/// The sliding window over which a failure rate is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// The last `n` calls.
    Count(u32),
    /// The calls of the last `duration`, kept in `buckets` buckets that expire one at a
    /// time (the window slides in steps of `duration / buckets`).
    Time {
        /// Length of the window.
        duration: Duration,
        /// Number of buckets the window is split into.
        buckets: u32,
    },
}

impl Window {
    /// A count window over the last `n` calls.
    pub const fn calls(n: u32) -> Self {
        Window::Count(n)
    }

    /// A time window over the last `duration`, in 10 buckets.
    pub const fn duration(duration: Duration) -> Self {
        Window::Time { duration, buckets: 10 }
    }

    fn validate(self) -> Result<(), ConfigError> {
        match self {
            Window::Count(n) => count("window", n, MAX_CALLS),
            Window::Time { duration, buckets } => {
                count("window.buckets", buckets, MAX_BUCKETS)?;
                check::positive("window.duration", duration)?;
                max_duration("window.duration", duration)?;
                if duration / buckets < MIN_BUCKET_WIDTH {
                    return Err(ConfigError::new(
                        "window.duration",
                        format!(
                            "must give buckets of at least {MIN_BUCKET_WIDTH:?} \
                             (got {duration:?} in {buckets} buckets)"
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// How a circuit decides to reject calls: the `mode` key.
///
/// `Consecutive` and `Rate` are a [`CircuitBreaker`](super::CircuitBreaker) tripping on
/// `failure_threshold` consecutive failures or on a `failure_rate` over its window;
/// `AdaptiveThrottle` is an [`AdaptiveThrottle`](super::AdaptiveThrottle), which rejects
/// each call with a probability instead of all-or-nothing. The registry, [`Pipeline`]
/// and the tower layers build the instance the mode names.
///
/// [`Pipeline`]: crate::Pipeline
///
/// ```
/// use resilience::circuit::{CircuitBreakerConfig, CircuitMode, ThrottleConfig};
///
/// assert_eq!(CircuitBreakerConfig::default().mode(), CircuitMode::Consecutive);
/// let throttled = CircuitBreakerConfig::builder().adaptive_throttle(ThrottleConfig::default()).build()?;
/// assert_eq!(throttled.mode(), CircuitMode::AdaptiveThrottle);
/// assert_eq!("adaptive_throttle".parse::<CircuitMode>(), Ok(CircuitMode::AdaptiveThrottle));
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircuitMode {
    /// Trip on consecutive failures (`failure_threshold`), the default.
    Consecutive,
    /// Trip on a failure rate over a window (`failure_rate`, `window`, `min_calls`).
    Rate,
    /// Client-side adaptive throttling (`k`, `window`, `buckets`).
    AdaptiveThrottle,
}

impl CircuitMode {
    /// The names the `mode` key accepts.
    pub const NAMES: &'static [&'static str] = &["consecutive", "rate", "adaptive_throttle"];

    /// The mode's name, as the `mode` key writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitMode::Consecutive => "consecutive",
            CircuitMode::Rate => "rate",
            CircuitMode::AdaptiveThrottle => "adaptive_throttle",
        }
    }
}

impl std::fmt::Display for CircuitMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CircuitMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s {
            "consecutive" => CircuitMode::Consecutive,
            "rate" => CircuitMode::Rate,
            "adaptive_throttle" => CircuitMode::AdaptiveThrottle,
            other => {
                return Err(ConfigError::new(
                    "mode",
                    format!(
                        "must be \"consecutive\", \"rate\" or \"adaptive_throttle\" (got \"{other}\")"
                    ),
                ));
            }
        })
    }
}

/// What trips the breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trip {
    Consecutive(u32),
    Rate(f64),
}

/// When a [`CircuitBreaker`](super::CircuitBreaker) trips and how it recovers.
///
/// A breaker trips on **either** `failure_threshold` consecutive failures (the default:
/// 5) **or** a failure rate of at least `failure_rate` over a sliding [`Window`], counted
/// once the window holds `min_calls` outcomes. It then stays open for `recovery_timeout`
/// (60 s), shortened by a random fraction of at most `recovery_jitter` (0 by default):
/// the open period is uniform in `[t·(1 - j), t]`, so a fleet of processes that tripped
/// together does not probe in lockstep. Then it lets `half_open_max_calls` (1) probe
/// calls through at a time; `success_threshold` (2) successful probes close it, any
/// failed probe re-opens it. Successes are counted across sequential probes, so a
/// `success_threshold` above `half_open_max_calls` is accepted.
///
/// With `slow_call(d)`, a successful call that took longer than `d` counts as a failure.
///
/// ```
/// use std::time::Duration;
/// use resilience::circuit::{CircuitBreakerConfig, Window};
///
/// let config = CircuitBreakerConfig::builder()
///     .failure_rate(0.5)
///     .window(Window::duration(Duration::from_secs(30)))
///     .min_calls(20)
///     .recovery_timeout(Duration::from_secs(10))
///     .recovery_jitter(0.2)
///     .build()?;
/// assert_eq!(config.failure_rate(), Some(0.5));
/// assert_eq!(config.failure_threshold(), None);
///
/// // Start from an existing config and switch the policy.
/// let consecutive = config.to_builder().failure_threshold(3).build()?;
/// assert_eq!(consecutive.failure_threshold(), Some(3));
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CircuitBreakerConfig {
    trip: Trip,
    window: Window,
    min_calls: u32,
    recovery_timeout: Duration,
    recovery_jitter: f64,
    half_open_max_calls: u32,
    success_threshold: u32,
    slow_call: Option<Duration>,
    backend: Backend,
    /// `Some` in mode `adaptive_throttle`.
    throttle: Option<ThrottleConfig>,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            trip: Trip::Consecutive(5),
            window: Window::Count(100),
            min_calls: 10,
            recovery_timeout: Duration::from_secs(60),
            recovery_jitter: 0.0,
            half_open_max_calls: 1,
            success_threshold: 2,
            slow_call: None,
            backend: Backend::Local,
            throttle: None,
        }
    }
}

impl CircuitBreakerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> CircuitBreakerConfigBuilder {
        CircuitBreakerConfig::default().to_builder()
    }

    /// A builder starting from this config. Setting `failure_rate` on it switches a
    /// consecutive-failure config to a rate config, and `failure_threshold` the reverse.
    pub fn to_builder(&self) -> CircuitBreakerConfigBuilder {
        CircuitBreakerConfigBuilder {
            base: self.clone(),
            threshold: None,
            rate: None,
            window_set: false,
            min_calls_set: false,
            throttle: None,
        }
    }

    /// How the circuit rejects calls: consecutive failures, a failure rate, or adaptive
    /// throttling.
    pub fn mode(&self) -> CircuitMode {
        match (&self.throttle, self.trip) {
            (Some(_), _) => CircuitMode::AdaptiveThrottle,
            (None, Trip::Consecutive(_)) => CircuitMode::Consecutive,
            (None, Trip::Rate(_)) => CircuitMode::Rate,
        }
    }

    /// The throttle's config in mode [`CircuitMode::AdaptiveThrottle`].
    pub fn throttle(&self) -> Option<&ThrottleConfig> {
        self.throttle.as_ref()
    }

    /// Consecutive failures that trip the breaker, when it trips on those.
    pub fn failure_threshold(&self) -> Option<u32> {
        match self.trip {
            Trip::Consecutive(n) => Some(n),
            Trip::Rate(_) => None,
        }
    }

    /// Failure rate (in `(0, 1]`) that trips the breaker, when it trips on a rate.
    pub fn failure_rate(&self) -> Option<f64> {
        match self.trip {
            Trip::Rate(r) => Some(r),
            Trip::Consecutive(_) => None,
        }
    }

    /// The window the failure rate is measured over (unused without `failure_rate`).
    pub fn window(&self) -> Window {
        self.window
    }

    /// Outcomes the window must hold before the rate can trip the breaker.
    pub fn min_calls(&self) -> u32 {
        self.min_calls
    }

    /// How long the circuit stays open before probing (before jitter).
    pub fn recovery_timeout(&self) -> Duration {
        self.recovery_timeout
    }

    /// Largest fraction by which the open period is randomly shortened, in `[0, 1]`.
    pub fn recovery_jitter(&self) -> f64 {
        self.recovery_jitter
    }

    /// Probe calls allowed at once while half-open.
    pub fn half_open_max_calls(&self) -> u32 {
        self.half_open_max_calls
    }

    /// Successful probes that close the circuit.
    pub fn success_threshold(&self) -> u32 {
        self.success_threshold
    }

    /// Duration above which a successful call counts as a failure, if set.
    pub fn slow_call(&self) -> Option<Duration> {
        self.slow_call
    }

    /// Where the circuit's state lives: in this process (default) or in Redis, shared
    /// by every process using the same circuit name.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// Builds a [`CircuitBreakerConfig`]; see there for the meaning of each value.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct CircuitBreakerConfigBuilder {
    base: CircuitBreakerConfig,
    threshold: Option<u32>,
    rate: Option<f64>,
    window_set: bool,
    min_calls_set: bool,
    throttle: Option<ThrottleConfig>,
}

impl CircuitBreakerConfigBuilder {
    /// Mode [`CircuitMode::AdaptiveThrottle`] with `throttle`: the circuit is an
    /// [`AdaptiveThrottle`](super::AdaptiveThrottle). Exclusive with
    /// [`failure_threshold`](Self::failure_threshold), [`failure_rate`](Self::failure_rate)
    /// and the breaker's window keys on one builder, and local only.
    pub fn adaptive_throttle(mut self, throttle: ThrottleConfig) -> Self {
        self.throttle = Some(throttle);
        self
    }

    setters! {
        /// Trip after `n` consecutive failures (in `1..=100_000`). Exclusive with
        /// [`failure_rate`](Self::failure_rate) on one builder.
        pub fn failure_threshold(n: u32) => self.threshold = Some(n);

        /// Trip when the failure rate of the window reaches `rate` (in `(0, 1]`). Exclusive
        /// with [`failure_threshold`](Self::failure_threshold) on one builder.
        pub fn failure_rate(rate: f64) => self.rate = Some(rate);
    }

    /// The window the failure rate is measured over (default: the last 100 calls).
    pub fn window(mut self, window: Window) -> Self {
        self.base.window = window;
        self.window_set = true;
        self
    }

    /// Outcomes the window must hold before the rate can trip (default 10, in
    /// `1..=100_000`, at most the size of a count window).
    pub fn min_calls(mut self, n: u32) -> Self {
        self.base.min_calls = n;
        self.min_calls_set = true;
        self
    }

    setters! {
        /// How long the circuit stays open before probing (default 60 s, at most 365 days).
        pub fn recovery_timeout(timeout: Duration) => self.base.recovery_timeout = timeout;

        /// Shorten each open period by a random fraction of at most `jitter` (in `[0, 1]`).
        pub fn recovery_jitter(jitter: f64) => self.base.recovery_jitter = jitter;

        /// Probe calls allowed at once while half-open (default 1, in `1..=10_000`).
        pub fn half_open_max_calls(n: u32) => self.base.half_open_max_calls = n;

        /// Successful probes that close the circuit (default 2, in `1..=10_000`).
        pub fn success_threshold(n: u32) => self.base.success_threshold = n;

        /// Count a successful call slower than `threshold` as a failure.
        pub fn slow_call(threshold: Duration) => self.base.slow_call = Some(threshold);

        /// Keep the circuit's state in this process ([`Backend::Local`], the default) or in
        /// Redis, shared by every process using the same circuit name ([`Backend::Redis`],
        /// crate feature `redis`). The backend is chosen when the instance is created:
        /// reconfiguring an instance keeps the one it has.
        pub fn backend(backend: Backend) => self.base.backend = backend;
    }

    /// Validate and build the config.
    pub fn build(self) -> Result<CircuitBreakerConfig, ConfigError> {
        let mut c = self.base;
        c.backend.check()?;
        if let (true, Window::Time { buckets, .. }) = (c.backend.is_shared(), c.window)
            && buckets > MAX_SHARED_BUCKETS
        {
            return Err(ConfigError::new(
                "window",
                format!(
                    "a Redis-backed circuit sums its time window on every report: use at most {MAX_SHARED_BUCKETS} buckets (got {buckets})"
                ),
            ));
        }
        // A throttle set on this builder, or inherited unless this builder switches the
        // base to a breaker with `failure_threshold` / `failure_rate`.
        let switching = self.threshold.is_some() || self.rate.is_some();
        let inherited = c.throttle.take();
        let throttle = match self.throttle {
            Some(t) => Some(t),
            None if switching => None,
            None => inherited,
        };
        if let Some(throttle) = throttle {
            let breaker_keys = [
                (self.threshold.is_some(), "failure_threshold"),
                (self.rate.is_some(), "failure_rate"),
                (self.window_set, "window"),
                (self.min_calls_set, "min_calls"),
            ];
            if let Some((_, field)) = breaker_keys.iter().find(|(set, _)| *set) {
                return Err(ConfigError::new(
                    *field,
                    "does not apply to mode \"adaptive_throttle\" (the throttle has its own `k`, `window` and `buckets`)",
                ));
            }
            if c.backend.is_shared() {
                return Err(ConfigError::new(
                    "backend",
                    "mode \"adaptive_throttle\" is local to the process: remove `backend = \"redis\"`",
                ));
            }
            c.throttle = Some(throttle);
            return Ok(c);
        }
        c.trip = match (self.threshold, self.rate) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "failure_threshold",
                    "cannot be combined with `failure_rate`: trip on consecutive failures \
                     or on a failure rate, not both",
                ));
            }
            (Some(n), None) => Trip::Consecutive(n),
            (None, Some(r)) => Trip::Rate(r),
            (None, None) => c.trip,
        };
        match c.trip {
            Trip::Consecutive(n) => {
                count("failure_threshold", n, MAX_CALLS)?;
                for (set, field) in [(self.window_set, "window"), (self.min_calls_set, "min_calls")]
                {
                    if set {
                        return Err(ConfigError::new(
                            field,
                            "only applies with `failure_rate` (this config trips on \
                             consecutive failures)",
                        ));
                    }
                }
            }
            Trip::Rate(r) => {
                if !(r.is_finite() && r > 0.0 && r <= 1.0) {
                    return Err(ConfigError::new(
                        "failure_rate",
                        format!("must be in (0, 1] (got {r})"),
                    ));
                }
            }
        }
        c.window.validate()?;
        count("min_calls", c.min_calls, MAX_CALLS)?;
        if let (Window::Count(n), Trip::Rate(_)) = (c.window, c.trip)
            && c.min_calls > n
        {
            return Err(ConfigError::new(
                "min_calls",
                format!("must be at most the window size {n} (got {})", c.min_calls),
            ));
        }
        check::positive("recovery_timeout", c.recovery_timeout)?;
        max_duration("recovery_timeout", c.recovery_timeout)?;
        check::in_range("recovery_jitter", c.recovery_jitter, 0.0, 1.0)?;
        count("half_open_max_calls", c.half_open_max_calls, MAX_PROBES)?;
        count("success_threshold", c.success_threshold, MAX_PROBES)?;
        if let Some(d) = c.slow_call {
            check::positive("slow_call", d)?;
            max_duration("slow_call", d)?;
        }
        Ok(c)
    }
}

fn count(field: &'static str, value: u32, max: u32) -> Result<(), ConfigError> {
    check::at_least_one(field, u64::from(value))?;
    check::at_most(field, value, max)
}

fn max_duration(field: &'static str, value: Duration) -> Result<(), ConfigError> {
    check::at_most(field, value, MAX_DURATION)
}

/// The circuit breaker's keys, for attributes (`#[circuit_breaker(failure_rate = 0.5)]`),
/// config files and `Deserialize` alike.
impl LayerConfig for CircuitBreakerConfig {
    const LAYER: &'static str = "circuit_breaker";
    const KEYS: &'static [&'static str] = &[
        "failure_threshold",
        "failure_rate",
        "window",
        "min_calls",
        "recovery_timeout",
        "recovery_jitter",
        "half_open_max_calls",
        "success_threshold",
        "slow_call",
        "backend",
        "fail_mode",
        "mode",
        "k",
        "buckets",
    ];

    fn from_entries(
        base: Option<Self>,
        entries: &[(&str, Value<'_>)],
        registry: &Registry,
    ) -> Result<Self, ConfigError> {
        let mut mode = base.as_ref().map_or(CircuitMode::Consecutive, CircuitBreakerConfig::mode);
        let mut written_mode = None;
        for &(key, value) in entries {
            if key == "mode" {
                let m = value.text(key)?.parse::<CircuitMode>()?;
                written_mode = Some(m);
                mode = m;
            }
        }
        if mode == CircuitMode::AdaptiveThrottle {
            return throttle_from_entries(base, entries, registry);
        }
        let entries: Vec<(&str, Value<'_>)> =
            entries.iter().copied().filter(|&(key, _)| key != "mode").collect();
        for &(key, _) in &entries {
            if key == "k" || key == "buckets" {
                return Err(ConfigError::new(
                    key.to_owned(),
                    format!(
                        "applies only to mode = \"adaptive_throttle\" (this circuit is in mode \"{mode}\"): add `mode = \"adaptive_throttle\"` or remove `{key}`"
                    ),
                ));
            }
        }
        let has = |k: &str| entries.iter().any(|&(key, _)| key == k);
        match written_mode {
            Some(CircuitMode::Rate) if has("failure_threshold") => {
                return Err(ConfigError::new(
                    "failure_threshold",
                    "does not apply to mode = \"rate\": set `failure_rate`",
                ));
            }
            Some(CircuitMode::Consecutive) if has("failure_rate") => {
                return Err(ConfigError::new(
                    "failure_rate",
                    "does not apply to mode = \"consecutive\": set `failure_threshold`",
                ));
            }
            Some(CircuitMode::Rate)
                if !has("failure_rate")
                    && base.as_ref().is_none_or(|b| b.mode() != CircuitMode::Rate) =>
            {
                return Err(ConfigError::new(
                    "mode",
                    "\"rate\" needs `failure_rate` (the share of failures that opens the circuit)",
                ));
            }
            _ => {}
        }
        let switch_to_consecutive = written_mode == Some(CircuitMode::Consecutive)
            && !has("failure_threshold")
            && base.as_ref().is_some_and(|b| b.mode() != CircuitMode::Consecutive);
        let entries = &entries[..];
        let inherited = base.as_ref().map(CircuitBreakerConfig::backend);
        let b = base.map_or_else(CircuitBreakerConfig::builder, |c| c.to_builder());
        let b = BackendKeys::read(
            entries,
            b,
            inherited,
            CircuitBreakerConfigBuilder::backend,
            |b, key, value| {
                Ok(match key {
                    "failure_threshold" => b.failure_threshold(value.count(key)?),
                    "failure_rate" => b.failure_rate(value.float(key)?),
                    // `window_calls` / `window_duration`: the former file names.
                    "window" | "window_calls" | "window_duration" => b.window(match value {
                        Value::Int(_) => Window::calls(value.count(key)?),
                        _ => Window::duration(value.duration(key).map_err(|_| {
                            ConfigError::new(
                                key.to_owned(),
                                format!("is a number of calls (`{key} = 100`) or a duration (`{key} = \"60s\"`), not {value}"),
                            )
                        })?),
                    }),
                    "min_calls" => b.min_calls(value.count(key)?),
                    "recovery_timeout" => b.recovery_timeout(value.duration(key)?),
                    "recovery_jitter" => b.recovery_jitter(value.float(key)?),
                    "half_open_max_calls" => b.half_open_max_calls(value.count(key)?),
                    "success_threshold" => b.success_threshold(value.count(key)?),
                    "slow_call" => b.slow_call(value.duration(key)?),
                    _ => return Err(config::unknown(key, Self::KEYS)),
                })
            },
        )?;
        let b = if switch_to_consecutive {
            b.failure_threshold(CircuitBreakerConfig::default().failure_threshold().unwrap_or(5))
        } else {
            b
        };
        b.build()
    }
}

/// A circuit in mode `adaptive_throttle`: the throttle's keys `k`, `window` (a
/// duration) and `buckets`, plus `backend = "local"`; a breaker's key is an error.
fn throttle_from_entries(
    base: Option<CircuitBreakerConfig>,
    entries: &[(&str, Value<'_>)],
    registry: &Registry,
) -> Result<CircuitBreakerConfig, ConfigError> {
    let mut own = Vec::with_capacity(entries.len());
    for &(key, value) in entries {
        match key {
            "mode" => {}
            "k" | "window" | "buckets" => own.push((key, value)),
            "backend" if value.text(key)? == "local" => {}
            "backend" | "fail_mode" => {
                return Err(ConfigError::new(
                    key.to_owned(),
                    "mode = \"adaptive_throttle\" is local to the process: remove it",
                ));
            }
            other if CircuitBreakerConfig::KEYS.contains(&other) => {
                return Err(ConfigError::new(
                    other.to_owned(),
                    "does not apply to mode = \"adaptive_throttle\", whose keys are `k`, `window` and `buckets`",
                ));
            }
            other => return Err(config::unknown(other, CircuitBreakerConfig::KEYS)),
        }
    }
    let inherited = base.as_ref().and_then(|b| b.throttle().cloned());
    let throttle = ThrottleConfig::from_entries(inherited, &own, registry)?;
    let base = base.unwrap_or_default();
    let mut b = base.to_builder();
    // A breaker base keeps its recovery settings (unused in this mode) but not its trip.
    b.base.trip = Trip::Consecutive(5);
    b.base.window = Window::Count(100);
    b.base.min_calls = 10;
    b.adaptive_throttle(throttle).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: CircuitBreakerConfigBuilder) -> ConfigError {
        match b.build() {
            Err(e) => e,
            Ok(c) => unreachable!("expected an error, built {c:?}"),
        }
    }

    /// A fraction setter refuses each of `bad` naming `field`, and accepts 1.0.
    fn fraction_bounds(
        field: &str,
        set: fn(CircuitBreakerConfigBuilder, f64) -> CircuitBreakerConfigBuilder,
        bad: &[f64],
    ) {
        for &v in bad {
            assert_eq!(err(set(CircuitBreakerConfig::builder(), v)).field(), field, "{v}");
        }
        assert!(set(CircuitBreakerConfig::builder(), 1.0).build().is_ok());
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = CircuitBreakerConfig::default();
        assert_eq!(c.failure_threshold(), Some(5));
        assert_eq!(c.failure_rate(), None);
        assert_eq!(c.recovery_timeout(), Duration::from_secs(60));
        assert_eq!(c.success_threshold(), 2);
        assert_eq!(c.half_open_max_calls(), 1);
        assert_eq!(c.recovery_jitter(), 0.0);
        assert_eq!(c.slow_call(), None);
        assert_eq!(CircuitBreakerConfig::builder().build(), Ok(c));
    }

    #[test]
    fn window_constructors() {
        assert_eq!(Window::calls(7), Window::Count(7));
        assert_eq!(
            Window::duration(Duration::from_secs(10)),
            Window::Time { duration: Duration::from_secs(10), buckets: 10 }
        );
    }

    #[test]
    fn both_policies_on_one_builder_is_an_error() {
        let e = err(CircuitBreakerConfig::builder().failure_threshold(3).failure_rate(0.5));
        assert_eq!(e.field(), "failure_threshold");
    }

    #[test]
    fn to_builder_switches_policy_both_ways() {
        let consecutive = CircuitBreakerConfig::builder().failure_threshold(3).build();
        let rate = consecutive.as_ref().map(|c| c.to_builder().failure_rate(0.25).build());
        let rate = match rate {
            Ok(Ok(r)) => r,
            other => unreachable!("{other:?}"),
        };
        assert_eq!(rate.failure_rate(), Some(0.25));
        assert_eq!(rate.failure_threshold(), None);
        let back = rate.to_builder().failure_threshold(4).build();
        assert_eq!(back.map(|c| c.failure_threshold()), Ok(Some(4)));
    }

    #[test]
    fn window_settings_without_a_rate_are_an_error() {
        assert_eq!(
            err(CircuitBreakerConfig::builder().window(Window::calls(10))).field(),
            "window"
        );
        assert_eq!(err(CircuitBreakerConfig::builder().min_calls(3)).field(), "min_calls");
    }

    #[test]
    fn count_window_smaller_than_min_calls_is_an_error() {
        let e = err(CircuitBreakerConfig::builder()
            .failure_rate(0.5)
            .window(Window::calls(5))
            .min_calls(6));
        assert_eq!(e.to_string(), "invalid `min_calls`: must be at most the window size 5 (got 6)");
    }

    #[test]
    fn zero_and_huge_counts_are_errors() {
        let b = CircuitBreakerConfig::builder;
        assert_eq!(
            err(b().failure_threshold(0)).to_string(),
            "invalid `failure_threshold`: must be at least 1 (got 0)"
        );
        assert_eq!(err(b().failure_threshold(u32::MAX)).field(), "failure_threshold");
        assert_eq!(err(b().half_open_max_calls(0)).field(), "half_open_max_calls");
        assert_eq!(err(b().half_open_max_calls(u32::MAX)).field(), "half_open_max_calls");
        assert_eq!(err(b().success_threshold(0)).field(), "success_threshold");
        assert_eq!(err(b().success_threshold(u32::MAX)).field(), "success_threshold");
        assert_eq!(err(b().failure_rate(0.5).window(Window::calls(0))).field(), "window");
        assert_eq!(err(b().failure_rate(0.5).window(Window::calls(u32::MAX))).field(), "window");
        assert_eq!(err(b().failure_rate(0.5).min_calls(0)).field(), "min_calls");
    }

    #[test]
    fn rates_outside_zero_one_are_errors() {
        let bad = [0.0, -0.1, 1.01, f64::NAN, f64::INFINITY];
        fraction_bounds("failure_rate", CircuitBreakerConfigBuilder::failure_rate, &bad);
    }

    #[test]
    fn bad_durations_are_errors() {
        let b = CircuitBreakerConfig::builder;
        assert_eq!(err(b().recovery_timeout(Duration::ZERO)).field(), "recovery_timeout");
        assert_eq!(err(b().recovery_timeout(Duration::MAX)).field(), "recovery_timeout");
        assert_eq!(err(b().slow_call(Duration::ZERO)).field(), "slow_call");
        assert_eq!(err(b().slow_call(Duration::MAX)).field(), "slow_call");
        let time = |d, n| b().failure_rate(0.5).window(Window::Time { duration: d, buckets: n });
        assert_eq!(err(time(Duration::ZERO, 10)).field(), "window.duration");
        assert_eq!(err(time(Duration::MAX, 10)).field(), "window.duration");
        assert_eq!(err(time(Duration::from_millis(5), 10)).field(), "window.duration");
        assert_eq!(err(time(Duration::from_secs(5), 0)).field(), "window.buckets");
        assert_eq!(err(time(Duration::from_secs(5), u32::MAX)).field(), "window.buckets");
    }

    #[test]
    fn jitter_outside_zero_one_is_an_error() {
        let bad = [-0.1, 1.5, f64::NAN];
        fraction_bounds("recovery_jitter", CircuitBreakerConfigBuilder::recovery_jitter, &bad);
    }

    fn entries(e: &[(&str, Value<'_>)]) -> Result<CircuitBreakerConfig, ConfigError> {
        CircuitBreakerConfig::from_entries(None, e, &Registry::new())
    }

    #[test]
    fn mode_adaptive_throttle_reads_the_throttle_keys() {
        let c = entries(&[
            ("mode", Value::Str("adaptive_throttle")),
            ("k", Value::Float(1.5)),
            ("window", Value::Str("60s")),
            ("buckets", Value::Int(6)),
        ]);
        let c = c.map_err(|e| e.to_string());
        assert_eq!(c.as_ref().map(CircuitBreakerConfig::mode), Ok(CircuitMode::AdaptiveThrottle));
        let t = c.as_ref().ok().and_then(|c| c.throttle().cloned());
        assert_eq!(
            t.map(|t| (t.k(), t.window(), t.buckets())),
            Some((1.5, Duration::from_secs(60), 6))
        );
        // Defaults of the throttle when only the mode is given.
        let d = entries(&[("mode", Value::Str("adaptive_throttle"))]).ok();
        assert_eq!(d.and_then(|d| d.throttle().cloned()), Some(ThrottleConfig::default()));
    }

    #[test]
    fn mode_keys_are_checked() {
        let err =
            |e: &[(&str, Value<'_>)]| entries(e).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err(&[("k", Value::Float(2.0))])
                .contains("applies only to mode = \"adaptive_throttle\"")
        );
        assert!(err(&[("buckets", Value::Int(2))]).contains("`buckets`"));
        assert!(err(&[("mode", Value::Str("sometimes"))]).contains("\"adaptive_throttle\""));
        let breaker_key =
            err(&[("mode", Value::Str("adaptive_throttle")), ("failure_threshold", Value::Int(3))]);
        assert!(
            breaker_key.contains("failure_threshold") && breaker_key.contains("does not apply"),
            "{breaker_key}"
        );
        assert!(
            !err(&[("mode", Value::Str("adaptive_throttle")), ("backend", Value::Str("redis"))])
                .is_empty()
        );
        assert!(
            !err(&[("mode", Value::Str("rate")), ("failure_threshold", Value::Int(3))]).is_empty()
        );
        assert!(!err(&[("mode", Value::Str("rate"))]).is_empty(), "rate needs failure_rate");
        let rate = entries(&[("mode", Value::Str("rate")), ("failure_rate", Value::Float(0.5))]);
        assert_eq!(rate.map(|c| c.mode()), Ok(CircuitMode::Rate));
    }

    #[test]
    fn a_throttle_config_switches_back_to_a_breaker() {
        let throttled =
            CircuitBreakerConfig::builder().adaptive_throttle(ThrottleConfig::default()).build();
        let back = throttled.as_ref().map(|c| c.to_builder().failure_threshold(3).build());
        assert!(
            matches!(back, Ok(Ok(ref c)) if c.mode() == CircuitMode::Consecutive && c.throttle().is_none())
        );
        let base = throttled.ok();
        let via_keys = CircuitBreakerConfig::from_entries(
            base.clone(),
            &[("mode", Value::Str("consecutive"))],
            &Registry::new(),
        );
        assert_eq!(via_keys.map(|c| c.mode()), Ok(CircuitMode::Consecutive));
        let kept =
            CircuitBreakerConfig::from_entries(base, &[("k", Value::Float(3.0))], &Registry::new());
        assert_eq!(
            kept.ok().and_then(|c| c.throttle().map(ThrottleConfig::k)),
            Some(3.0),
            "an override keeps the mode"
        );
        assert!(
            CircuitBreakerConfig::builder()
                .adaptive_throttle(ThrottleConfig::default())
                .failure_threshold(2)
                .build()
                .is_err()
        );
    }

    #[test]
    fn success_threshold_above_half_open_limit_is_allowed() {
        let c = CircuitBreakerConfig::builder().half_open_max_calls(1).success_threshold(3).build();
        assert_eq!(c.map(|c| c.success_threshold()), Ok(3));
    }
}
