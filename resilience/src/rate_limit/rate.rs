//! [`Rate`]: how fast a bucket refills.

use std::fmt;
use std::time::Duration;

use crate::ConfigError;
use crate::clock::as_nanos;

/// The longest refill period and the longest `burst × interval` a limiter accepts.
pub(crate) const MAX_SPAN: Duration = Duration::from_secs(365 * 24 * 3600);

/// A refill rate: `permits` every `per`.
///
/// The constructors cannot fail (so presets can be `const`); a zero or out-of-range rate
/// is refused by [`RateLimitConfigBuilder::build`](super::RateLimitConfigBuilder::build)
/// and [`RateLimiter::set_rate`](super::RateLimiter::set_rate).
///
/// ```
/// use resilience::rate_limit::Rate;
/// use std::time::Duration;
///
/// assert_eq!(Rate::per_second(2).interval(), Duration::from_millis(500));
/// assert_eq!(Rate::per_minute(300).interval(), Duration::from_millis(200));
/// assert_eq!(Rate::new(10_000, Duration::from_secs(86_400)).per_second_f64(), 10_000.0 / 86_400.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    permits: u32,
    per: Duration,
}

impl Rate {
    /// `n` permits per second.
    pub const fn per_second(n: u32) -> Rate {
        Rate { permits: n, per: Duration::from_secs(1) }
    }

    /// `n` permits per minute.
    pub const fn per_minute(n: u32) -> Rate {
        Rate { permits: n, per: Duration::from_secs(60) }
    }

    /// `permits` every `per` (e.g. 10 000 per day).
    pub const fn new(permits: u32, per: Duration) -> Rate {
        Rate { permits, per }
    }

    /// Permits added per period.
    pub fn permits(&self) -> u32 {
        self.permits
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.per
    }

    /// Time to refill one permit (`per / permits`, truncated to whole nanoseconds);
    /// `Duration::MAX` for a zero rate.
    pub fn interval(&self) -> Duration {
        self.per.checked_div(self.permits).unwrap_or(Duration::MAX)
    }

    /// Permits per second as a float (`0.0` for a zero period).
    pub fn per_second_f64(&self) -> f64 {
        let secs = self.per.as_secs_f64();
        if secs > 0.0 { f64::from(self.permits) / secs } else { 0.0 }
    }

    /// Refuses a zero rate, a zero or over-long period, and rates faster than one permit
    /// per nanosecond.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.permits == 0 {
            return Err(ConfigError::new("rate", "must be at least 1 permit per period (got 0)"));
        }
        if self.per.is_zero() {
            return Err(ConfigError::new("rate", "period must be a positive duration (got 0s)"));
        }
        if self.per > MAX_SPAN {
            return Err(ConfigError::new(
                "rate",
                format!("period must be at most 365 days (got {:?})", self.per),
            ));
        }
        if as_nanos(self.interval()) == 0 {
            return Err(ConfigError::new(
                "rate",
                format!(
                    "must be at most 1000000000 permits per second (got {} per {:?})",
                    self.permits, self.per
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {:?}", self.permits, self.per)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_is_period_over_permits() {
        assert_eq!(Rate::per_second(4).interval(), Duration::from_millis(250));
        assert_eq!(Rate::per_minute(60).interval(), Duration::from_secs(1));
        assert_eq!(Rate::new(3, Duration::from_secs(3)).interval(), Duration::from_secs(1));
    }

    #[test]
    fn zero_rate_has_max_interval_and_is_refused() {
        assert_eq!(Rate::per_second(0).interval(), Duration::MAX);
        let err = Rate::per_second(0).check().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid `rate`: must be at least 1 permit per period (got 0)")
        );
    }

    #[test]
    fn out_of_range_rates_are_refused() {
        assert!(Rate::per_second(u32::MAX).check().is_err());
        assert!(Rate::new(1, Duration::ZERO).check().is_err());
        assert!(Rate::new(1, Duration::MAX).check().is_err());
        assert!(Rate::per_second(1_000_000_000).check().is_ok());
    }

    #[test]
    fn per_second_f64_converts_minutes() {
        assert_eq!(Rate::per_minute(120).per_second_f64(), 2.0);
        assert_eq!(Rate::new(1, Duration::ZERO).per_second_f64(), 0.0);
    }
}
