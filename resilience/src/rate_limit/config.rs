//! [`RateLimitConfig`] and its builder.

use std::time::Duration;

use super::rate::{MAX_SPAN, Rate};
use crate::clock::as_nanos;
use crate::config::{self, BackendKeys, LayerConfig, Value};
use crate::error::check;
use crate::registry::Registry;
use crate::{Backend, ConfigError};

/// What a limiter does when a call finds no permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OnLimit {
    /// Reserve the next free slot and sleep until it, at most `max_wait` (default
    /// [`DEFAULT_MAX_WAIT`]): a longer wait is refused at once with
    /// [`Error::RateLimited`](crate::Error::RateLimited) carrying the wait, without
    /// consuming anything or sleeping.
    #[default]
    Wait,
    /// Fail fast with [`Error::RateLimited`](crate::Error::RateLimited) carrying the wait.
    Reject,
    /// Like `Wait` (each wait bounded by `max_wait`), but at most `max_queue` callers wait
    /// at once; the next is rejected.
    Queue,
}

/// Configuration of a [`RateLimiter`](super::RateLimiter) or
/// [`KeyedRateLimiter`](super::KeyedRateLimiter).
///
/// ```
/// use resilience::rate_limit::{OnLimit, RateLimitConfig};
/// use std::time::Duration;
///
/// let shopify = RateLimitConfig::builder()
///     .per_second(2)
///     .burst(40)
///     .on_limit(OnLimit::Wait)
///     .max_wait(Duration::from_secs(30))
///     .build()?;
/// assert_eq!(shopify.burst(), 40);
///
/// // Start from an existing config and override:
/// let faster = shopify.to_builder().per_second(4).build()?;
/// assert_eq!(faster.rate().per_second_f64(), 4.0);
/// assert_eq!(faster.burst(), 40);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RateLimitConfig {
    rate: Rate,
    burst: u32,
    on_limit: OnLimit,
    max_wait: Duration,
    max_queue: usize,
    idle_timeout: Duration,
    max_pause: Duration,
    backend: Backend,
}

/// Default `max_wait`: the longest a call waits for a permit under `Wait` or `Queue`
/// (10 seconds). Every wait is bounded; a wait that would be longer is refused at once.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);
/// Default `max_queue`.
pub const DEFAULT_MAX_QUEUE: usize = 128;
/// Default `idle_timeout` of keyed buckets.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `max_pause`: the longest pause a server's headers can impose (15 minutes).
pub const DEFAULT_MAX_PAUSE: Duration = Duration::from_secs(15 * 60);

impl RateLimitConfig {
    /// A builder with no rate set (a rate is required).
    pub fn builder() -> RateLimitConfigBuilder {
        RateLimitConfigBuilder::default()
    }

    /// A builder holding this config's values, to override some of them.
    pub fn to_builder(&self) -> RateLimitConfigBuilder {
        RateLimitConfigBuilder {
            rate: Some(self.rate),
            per_second: None,
            per_minute: None,
            burst: Some(self.burst),
            on_limit: self.on_limit,
            max_wait: self.max_wait,
            max_queue: self.max_queue,
            idle_timeout: self.idle_timeout,
            max_pause: self.max_pause,
            backend: self.backend,
        }
    }

    /// The refill rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Bucket capacity: permits that can be taken at once after an idle period.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// What happens when no permit is left.
    pub fn on_limit(&self) -> OnLimit {
        self.on_limit
    }

    /// The longest wait `Wait`/`Queue` accept (default [`DEFAULT_MAX_WAIT`]); a call whose
    /// wait would be longer is refused at once with its `retry_after`.
    ///
    /// ```
    /// use resilience::rate_limit::RateLimitConfig;
    /// use std::time::Duration;
    ///
    /// let c = RateLimitConfig::builder().per_second(2).build()?;
    /// assert_eq!(c.max_wait(), Duration::from_secs(10));
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// The most callers waiting at once under `Queue` (per key for keyed limiters).
    pub fn max_queue(&self) -> usize {
        self.max_queue
    }

    /// How long a keyed bucket stays in memory after it has refilled completely.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The longest pause a server's headers (`Retry-After`, a reset with nothing
    /// remaining) can impose through `sync_from_headers`; a longer one is cut to this and
    /// reported in [`SyncReport::errors`](super::SyncReport::errors).
    ///
    /// ```
    /// use resilience::rate_limit::RateLimitConfig;
    /// use std::time::Duration;
    ///
    /// let c = RateLimitConfig::builder().per_second(2).build()?;
    /// assert_eq!(c.max_pause(), Duration::from_secs(15 * 60));
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn max_pause(&self) -> Duration {
        self.max_pause
    }

    /// Where the bucket lives: in this process (default) or in Redis, shared by every
    /// process using the same name.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn with_rate(&self, rate: Rate) -> Result<RateLimitConfig, ConfigError> {
        self.to_builder().rate(rate).build()
    }

    pub(crate) fn with_burst(&self, burst: u32) -> Result<RateLimitConfig, ConfigError> {
        self.to_builder().burst(burst).build()
    }
}

/// Builds a [`RateLimitConfig`]; see [`RateLimitConfig::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RateLimitConfigBuilder {
    rate: Option<Rate>,
    per_second: Option<u32>,
    per_minute: Option<u32>,
    burst: Option<u32>,
    on_limit: OnLimit,
    max_wait: Duration,
    max_queue: usize,
    idle_timeout: Duration,
    max_pause: Duration,
    backend: Backend,
}

impl Default for RateLimitConfigBuilder {
    fn default() -> Self {
        RateLimitConfigBuilder {
            rate: None,
            per_second: None,
            per_minute: None,
            burst: None,
            on_limit: OnLimit::Wait,
            max_wait: DEFAULT_MAX_WAIT,
            max_queue: DEFAULT_MAX_QUEUE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_pause: DEFAULT_MAX_PAUSE,
            backend: Backend::Local,
        }
    }
}

impl RateLimitConfigBuilder {
    /// The refill rate (replaces any earlier `per_second`/`per_minute`).
    pub fn rate(mut self, rate: Rate) -> Self {
        self.rate = Some(rate);
        self.per_second = None;
        self.per_minute = None;
        self
    }

    setters! {
        /// `n` permits per second (replaces a rate from `rate` or `to_builder`; conflicts
        /// with `per_minute`).
        pub fn per_second(n: u32) => self.per_second = Some(n);

        /// `n` permits per minute (replaces a rate from `rate` or `to_builder`; conflicts
        /// with `per_second`).
        pub fn per_minute(n: u32) => self.per_minute = Some(n);

        /// Bucket capacity (default: the rate's permits per period).
        pub fn burst(burst: u32) => self.burst = Some(burst);

        /// Policy when empty (default [`OnLimit::Wait`]).
        pub fn on_limit(on_limit: OnLimit) => self.on_limit = on_limit;

        /// Longest accepted wait under `Wait`/`Queue` (default 10 s, at most 365 days): a
        /// call whose wait would be longer is refused at once, never slept through.
        pub fn max_wait(max_wait: Duration) => self.max_wait = max_wait;

        /// Most concurrent waiters under [`OnLimit::Queue`] (default 128).
        pub fn max_queue(max_queue: usize) => self.max_queue = max_queue;

        /// Keyed limiters drop a bucket this long after it became full again (default 60 s).
        pub fn idle_timeout(idle_timeout: Duration) => self.idle_timeout = idle_timeout;

        /// The longest pause a server's headers can impose through `sync_from_headers`
        /// (default 15 minutes, at most 365 days); a longer `Retry-After` or reset is cut
        /// to this and reported.
        ///
        /// ```
        /// use resilience::rate_limit::RateLimitConfig;
        /// use std::time::Duration;
        ///
        /// let c = RateLimitConfig::builder().per_second(2).max_pause(Duration::from_secs(60)).build()?;
        /// assert_eq!(c.max_pause(), Duration::from_secs(60));
        /// # Ok::<(), resilience::ConfigError>(())
        /// ```
        pub fn max_pause(max_pause: Duration) => self.max_pause = max_pause;

        /// Keep the bucket in this process ([`Backend::Local`], the default) or in Redis,
        /// shared by every process using the same limiter name ([`Backend::Redis`], crate
        /// feature `redis`). The backend is chosen when the instance is created:
        /// reconfiguring an instance keeps the one it has.
        pub fn backend(backend: Backend) => self.backend = backend;
    }

    /// Validates and builds.
    ///
    /// Errors: `Backend::Redis` without the `redis` feature, no rate, a zero or too fast rate, `per_second` and `per_minute` both set,
    /// `burst` 0 or `burst × interval` over 365 days, `max_queue` 0 with `Queue`, zero
    /// or over-365-day `max_wait` / `idle_timeout` / `max_pause`.
    pub fn build(self) -> Result<RateLimitConfig, ConfigError> {
        let rate = match (self.per_second, self.per_minute) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "per_minute",
                    "set either per_second or per_minute, not both",
                ));
            }
            (Some(n), None) => Rate::per_second(n),
            (None, Some(n)) => Rate::per_minute(n),
            (None, None) => self.rate.ok_or_else(|| {
                ConfigError::new(
                    "rate",
                    "is required: set .per_second(n), .per_minute(n) or .rate(Rate::new(n, period))",
                )
            })?,
        };
        rate.check()?;
        self.backend.check()?;
        let burst = self.burst.unwrap_or(rate.permits());
        check::at_least_one("burst", u64::from(burst))?;
        let tau = u128::from(as_nanos(rate.interval())) * u128::from(burst);
        if tau > MAX_SPAN.as_nanos() {
            return Err(ConfigError::new(
                "burst",
                format!(
                    "burst × refill interval must be at most 365 days (got {burst} × {:?})",
                    rate.interval()
                ),
            ));
        }
        check_span("max_wait", self.max_wait)?;
        check_span("idle_timeout", self.idle_timeout)?;
        check_span("max_pause", self.max_pause)?;
        if self.on_limit == OnLimit::Queue && self.max_queue == 0 {
            return Err(ConfigError::new(
                "max_queue",
                "must be at least 1 when on_limit is Queue (got 0)",
            ));
        }
        Ok(RateLimitConfig {
            rate,
            burst,
            on_limit: self.on_limit,
            max_wait: self.max_wait,
            max_queue: self.max_queue,
            idle_timeout: self.idle_timeout,
            max_pause: self.max_pause,
            backend: self.backend,
        })
    }
}

fn check_span(field: &'static str, d: Duration) -> Result<(), ConfigError> {
    check::positive(field, d)?;
    if d > MAX_SPAN {
        return Err(ConfigError::new(field, format!("must be at most 365 days (got {d:?})")));
    }
    Ok(())
}

/// The rate limit's keys, for attributes (`#[rate_limit(per_second = 10)]`), config files
/// and `Deserialize` alike.
impl LayerConfig for RateLimitConfig {
    const LAYER: &'static str = "rate_limit";
    const KEYS: &'static [&'static str] = &[
        "per_second",
        "per_minute",
        "burst",
        "on_limit",
        "max_wait",
        "max_queue",
        "idle_timeout",
        "max_pause",
        "backend",
        "fail_mode",
    ];

    fn from_entries(
        base: Option<Self>,
        entries: &[(&str, Value<'_>)],
        _: &Registry,
    ) -> Result<Self, ConfigError> {
        let inherited = base.as_ref().map(RateLimitConfig::backend);
        let b = base.map_or_else(RateLimitConfig::builder, |c| c.to_builder());
        let b = BackendKeys::read(
            entries,
            b,
            inherited,
            RateLimitConfigBuilder::backend,
            |b, key, value| {
                Ok(match key {
                    "per_second" => b.per_second(value.count(key)?),
                    "per_minute" => b.per_minute(value.count(key)?),
                    "burst" => b.burst(value.count(key)?),
                    "on_limit" => b.on_limit(value.choice(
                        key,
                        &[
                            ("wait", OnLimit::Wait),
                            ("reject", OnLimit::Reject),
                            ("queue", OnLimit::Queue),
                        ],
                    )?),
                    "max_wait" => b.max_wait(value.duration(key)?),
                    "max_queue" => {
                        b.max_queue(usize::try_from(value.count(key)?).unwrap_or(usize::MAX))
                    }
                    "idle_timeout" => b.idle_timeout(value.duration(key)?),
                    "max_pause" => b.max_pause(value.duration(key)?),
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

    fn err(b: RateLimitConfigBuilder) -> String {
        b.build().err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn burst_defaults_to_the_rate_permits() {
        let c = RateLimitConfig::builder().per_minute(300).build();
        assert_eq!(c.map(|c| c.burst()), Ok(300));
    }

    #[test]
    fn invalid_values_name_the_field() {
        let b = RateLimitConfig::builder;
        assert!(err(b()).starts_with("invalid `rate`: is required"));
        assert!(err(b().per_second(0)).contains("must be at least 1 permit"));
        assert_eq!(
            err(b().per_second(1).per_minute(1)),
            "invalid `per_minute`: set either per_second or per_minute, not both"
        );
        assert_eq!(err(b().per_second(1).burst(0)), "invalid `burst`: must be at least 1 (got 0)");
        assert!(err(b().per_second(1).burst(u32::MAX)).starts_with("invalid `burst`"));
        assert!(err(b().per_second(u32::MAX)).starts_with("invalid `rate`"));
        assert!(err(b().per_second(1).max_wait(Duration::ZERO)).starts_with("invalid `max_wait`"));
        assert!(err(b().per_second(1).max_wait(Duration::MAX)).starts_with("invalid `max_wait`"));
        assert!(
            err(b().per_second(1).idle_timeout(Duration::ZERO))
                .starts_with("invalid `idle_timeout`")
        );
        assert!(
            err(b().per_second(1).max_pause(Duration::ZERO)).starts_with("invalid `max_pause`")
        );
        assert!(err(b().per_second(1).max_pause(Duration::MAX)).starts_with("invalid `max_pause`"));
        assert_eq!(
            err(b().per_second(1).on_limit(OnLimit::Queue).max_queue(0)),
            "invalid `max_queue`: must be at least 1 when on_limit is Queue (got 0)"
        );
        assert!(b().per_second(1).max_queue(0).build().is_ok());
    }

    #[test]
    fn to_builder_per_second_replaces_a_per_minute_rate() {
        let base = RateLimitConfig::builder().per_minute(60).burst(10).build();
        let c = base.and_then(|b| b.to_builder().per_second(5).build());
        assert_eq!(c.as_ref().map(|c| c.rate()), Ok(Rate::per_second(5)));
        assert_eq!(c.map(|c| c.burst()), Ok(10));
    }

    #[test]
    fn to_builder_round_trips() {
        let c = RateLimitConfig::builder()
            .per_second(2)
            .burst(40)
            .on_limit(OnLimit::Queue)
            .max_queue(3)
            .max_wait(Duration::from_secs(5))
            .idle_timeout(Duration::from_secs(9))
            .max_pause(Duration::from_secs(90))
            .build();
        assert_eq!(c.clone().and_then(|c| c.to_builder().build()), c);
    }
}
