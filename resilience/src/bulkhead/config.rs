//! [`BulkheadConfig`] and its builder.

use std::time::Duration;

use super::LimitAlgorithm;
use crate::ConfigError;
use crate::config::{self, LayerConfig, Value};
use crate::error::check;
use crate::registry::Registry;

/// The largest accepted `max_concurrent`.
const MAX_CONCURRENT_LIMIT: u32 = 1_000_000;

/// The longest accepted `max_wait` (one day).
const MAX_WAIT_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);

/// How many calls a [`Bulkhead`](super::Bulkhead) lets through at once, and how long a
/// caller may wait for a free slot.
///
/// The default allows 10 concurrent calls and does not wait: a call that finds the
/// bulkhead full is rejected at once with [`Error::BulkheadFull`](crate::Error::BulkheadFull).
///
/// ```
/// use resilience::bulkhead::BulkheadConfig;
/// use std::time::Duration;
///
/// let config = BulkheadConfig::builder()
///     .max_concurrent(4)
///     .max_wait(Duration::from_millis(200))
///     .build()?;
/// assert_eq!(config.max_concurrent(), 4);
/// assert_eq!(config.max_wait(), Duration::from_millis(200));
///
/// let err = BulkheadConfig::builder().max_concurrent(0).build().unwrap_err();
/// assert_eq!(err.to_string(), "invalid `max_concurrent`: must be at least 1 (got 0)");
/// # Ok::<(), resilience::ConfigError>(())
/// ```
///
/// # Adaptive limit
///
/// With [`adaptive`](BulkheadConfigBuilder::adaptive), the limit is not fixed: it starts
/// at `initial_limit` and follows the dependency's latency, within `min_limit` and
/// `max_limit` (see [`LimitAlgorithm`]). `max_concurrent` is then unused.
///
/// ```
/// use resilience::bulkhead::{BulkheadConfig, LimitAlgorithm};
///
/// let config = BulkheadConfig::builder()
///     .adaptive(LimitAlgorithm::Gradient)
///     .initial_limit(20)
///     .min_limit(4)
///     .max_limit(200)
///     .build()?;
/// assert_eq!(config.adaptive(), Some(LimitAlgorithm::Gradient));
/// assert_eq!((config.min_limit(), config.initial_limit(), config.max_limit()), (4, 20, 200));
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BulkheadConfig {
    max_concurrent: u32,
    max_wait: Duration,
    adaptive: Option<LimitAlgorithm>,
    min_limit: u32,
    max_limit: u32,
    initial_limit: u32,
}

impl BulkheadConfig {
    /// A builder starting from the defaults (10 concurrent calls, no wait).
    pub fn builder() -> BulkheadConfigBuilder {
        BulkheadConfigBuilder { config: BulkheadConfig::default() }
    }

    /// A builder starting from this configuration.
    pub fn to_builder(&self) -> BulkheadConfigBuilder {
        BulkheadConfigBuilder { config: self.clone() }
    }

    /// The most calls in flight at once.
    pub fn max_concurrent(&self) -> u32 {
        self.max_concurrent
    }

    /// How long a caller waits for a free slot before it is rejected; zero means it is
    /// rejected at once.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// How the limit adapts to the dependency's latency, or `None` for a fixed limit of
    /// `max_concurrent` (the default).
    pub fn adaptive(&self) -> Option<LimitAlgorithm> {
        self.adaptive
    }

    /// The lowest an adaptive limit may go (default 1).
    pub fn min_limit(&self) -> u32 {
        self.min_limit
    }

    /// The highest an adaptive limit may go (default 1000).
    pub fn max_limit(&self) -> u32 {
        self.max_limit
    }

    /// Where an adaptive limit starts (default 20), brought within
    /// `min_limit..=max_limit`.
    pub fn initial_limit(&self) -> u32 {
        self.initial_limit.clamp(self.min_limit, self.max_limit.max(self.min_limit))
    }
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        BulkheadConfig {
            max_concurrent: 10,
            max_wait: Duration::ZERO,
            adaptive: None,
            min_limit: 1,
            max_limit: 1_000,
            initial_limit: 20,
        }
    }
}

/// Builds a [`BulkheadConfig`]; [`build`](Self::build) validates every field.
#[derive(Debug, Clone)]
#[must_use]
pub struct BulkheadConfigBuilder {
    config: BulkheadConfig,
}

impl BulkheadConfigBuilder {
    setters! {
        /// The most calls in flight at once, between 1 and 1 000 000 (default 10).
        pub fn max_concurrent(max_concurrent: u32) => self.config.max_concurrent = max_concurrent;

        /// How long a caller may wait for a free slot, at most one day (default zero: a
        /// caller that finds the bulkhead full is rejected at once).
        pub fn max_wait(max_wait: Duration) => self.config.max_wait = max_wait;

        /// The lowest an adaptive limit may go, at least 1 (default 1).
        pub fn min_limit(min_limit: u32) => self.config.min_limit = min_limit;

        /// The highest an adaptive limit may go, at least `min_limit` and at most
        /// 1 000 000 (default 1000).
        pub fn max_limit(max_limit: u32) => self.config.max_limit = max_limit;

        /// Where an adaptive limit starts (default 20); a value outside
        /// `min_limit..=max_limit` starts at the nearer bound.
        pub fn initial_limit(initial_limit: u32) => self.config.initial_limit = initial_limit;
    }

    /// Makes the limit adaptive: it starts at `initial_limit` and follows the
    /// dependency's latency with `algorithm`, within `min_limit..=max_limit`
    /// (`max_concurrent` is then unused). See [`LimitAlgorithm`].
    pub fn adaptive(mut self, algorithm: LimitAlgorithm) -> Self {
        self.config.adaptive = Some(algorithm);
        self
    }

    /// Makes the limit fixed at `max_concurrent` again (the default).
    pub fn fixed(mut self) -> Self {
        self.config.adaptive = None;
        self
    }

    /// The configuration, or the first invalid field.
    pub fn build(self) -> Result<BulkheadConfig, ConfigError> {
        let c = self.config;
        check::at_least_one("max_concurrent", u64::from(c.max_concurrent))?;
        check::between("max_concurrent", c.max_concurrent, 1, MAX_CONCURRENT_LIMIT)?;
        if c.max_wait > MAX_WAIT_LIMIT {
            return Err(ConfigError::new(
                "max_wait",
                format!("must be between 0s and {MAX_WAIT_LIMIT:?} (got {:?})", c.max_wait),
            ));
        }
        check::at_least_one("min_limit", u64::from(c.min_limit))?;
        check::between("min_limit", c.min_limit, 1, MAX_CONCURRENT_LIMIT)?;
        check::between("max_limit", c.max_limit, c.min_limit, MAX_CONCURRENT_LIMIT)?;
        Ok(c)
    }
}

/// The bulkhead's keys, for attributes (`#[bulkhead(max_concurrent = 10)]`), config
/// files and `Deserialize` alike.
impl LayerConfig for BulkheadConfig {
    const LAYER: &'static str = "bulkhead";
    const KEYS: &'static [&'static str] =
        &["max_concurrent", "max_wait", "adaptive", "min_limit", "max_limit", "initial_limit"];

    fn from_entries(
        base: Option<Self>,
        entries: &[(&str, Value<'_>)],
        _: &Registry,
    ) -> Result<Self, ConfigError> {
        let mut b = base.map_or_else(BulkheadConfig::builder, |c| c.to_builder());
        for &(key, value) in entries {
            b = match key {
                "max_concurrent" => b.max_concurrent(value.count(key)?),
                "max_wait" => b.max_wait(value.duration(key)?),
                "adaptive" => b.adaptive(value.choice(key, LimitAlgorithm::CHOICES)?),
                "min_limit" => b.min_limit(value.count(key)?),
                "max_limit" => b.max_limit(value.count(key)?),
                "initial_limit" => b.initial_limit(value.count(key)?),
                _ => return Err(config::unknown(key, Self::KEYS)),
            };
        }
        b.build()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_is_ten_concurrent_without_wait() {
        let c = BulkheadConfig::default();
        assert_eq!(c.max_concurrent(), 10);
        assert_eq!(c.max_wait(), Duration::ZERO);
        assert_eq!(BulkheadConfig::builder().build(), Ok(c));
    }

    #[test]
    fn zero_concurrency_is_rejected() {
        let err = BulkheadConfig::builder().max_concurrent(0).build();
        assert_eq!(err, Err(ConfigError::new("max_concurrent", "must be at least 1 (got 0)")));
    }

    #[test]
    fn huge_concurrency_is_rejected_with_range() {
        let err = BulkheadConfig::builder().max_concurrent(u32::MAX).build();
        assert_eq!(
            err,
            Err(ConfigError::new(
                "max_concurrent",
                "must be between 1 and 1000000 (got 4294967295)"
            ))
        );
        assert!(BulkheadConfig::builder().max_concurrent(MAX_CONCURRENT_LIMIT).build().is_ok());
    }

    #[test]
    fn max_wait_above_one_day_is_rejected() {
        let err = BulkheadConfig::builder().max_wait(Duration::MAX).build();
        assert_eq!(err.map_err(|e| e.field().to_owned()), Err("max_wait".to_owned()));
        let one_day = BulkheadConfig::builder().max_wait(MAX_WAIT_LIMIT).build();
        assert_eq!(one_day.map(|c| c.max_wait()), Ok(MAX_WAIT_LIMIT));
    }

    #[test]
    fn adaptive_keys_read_through_from_entries() {
        let entries = [
            ("adaptive", Value::Str("vegas")),
            ("min_limit", Value::Int(2)),
            ("max_limit", Value::Int(64)),
            ("initial_limit", Value::Int(8)),
        ];
        let c = BulkheadConfig::from_entries(None, &entries, &Registry::new()).unwrap();
        assert_eq!(c.adaptive(), Some(LimitAlgorithm::Vegas));
        assert_eq!((c.min_limit(), c.initial_limit(), c.max_limit()), (2, 8, 64));
        let err = BulkheadConfig::from_entries(
            None,
            &[("adaptive", Value::Str("tcp"))],
            &Registry::new(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::new("adaptive", "`tcp` is not accepted; use one of gradient, aimd, vegas")
        );
    }

    #[test]
    fn adaptive_bounds_are_checked_and_the_start_is_clamped() {
        let err = BulkheadConfig::builder().min_limit(0).build().unwrap_err();
        assert_eq!(err, ConfigError::new("min_limit", "must be at least 1 (got 0)"));
        let err = BulkheadConfig::builder().min_limit(10).max_limit(5).build().unwrap_err();
        assert_eq!(err, ConfigError::new("max_limit", "must be between 10 and 1000000 (got 5)"));
        let c = BulkheadConfig::builder().max_limit(8).build().unwrap();
        assert_eq!(c.initial_limit(), 8);
        let c = BulkheadConfig::builder().min_limit(50).build().unwrap();
        assert_eq!(c.initial_limit(), 50);
        let fixed = c.to_builder().adaptive(LimitAlgorithm::Aimd).fixed().build().unwrap();
        assert_eq!(fixed.adaptive(), None);
    }

    #[test]
    fn to_builder_keeps_fields() {
        let c = BulkheadConfig::builder()
            .max_concurrent(3)
            .max_wait(Duration::from_secs(1))
            .build()
            .unwrap();
        let d = c.to_builder().max_concurrent(5).build().unwrap();
        assert_eq!(d.max_concurrent(), 5);
        assert_eq!(d.max_wait(), Duration::from_secs(1));
    }
}
