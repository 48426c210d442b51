//! [`CircuitBreakerConfig`]: when a breaker trips and how it recovers.

use std::time::Duration;

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
        }
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
}

impl CircuitBreakerConfigBuilder {
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
    ];

    fn from_entries(
        base: Option<Self>,
        entries: &[(&str, Value<'_>)],
        _: &Registry,
    ) -> Result<Self, ConfigError> {
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
        b.build()
    }
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

    #[test]
    fn success_threshold_above_half_open_limit_is_allowed() {
        let c = CircuitBreakerConfig::builder().half_open_max_calls(1).success_threshold(3).build();
        assert_eq!(c.map(|c| c.success_threshold()), Ok(3));
    }
}
