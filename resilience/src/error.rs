//! The error a resilience layer produces, and the error a builder returns for bad config.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::circuit::CircuitState;

/// What a rejection by a circuit says, by the state that refused the call.
fn circuit_open_message(name: &str, retry_after: Duration, state: CircuitState) -> String {
    match state {
        CircuitState::ForcedOpen => format!(
            "circuit `{name}` is forced open by an operator: the call was not attempted; it stays open until the circuit is reset"
        ),
        CircuitState::HalfOpen => format!(
            "circuit `{name}` is half-open and every probe slot is taken: the call was not attempted; try again when a probe finishes"
        ),
        _ => format!(
            "circuit `{name}` is open: the call was not attempted; next probe allowed in {retry_after:?}"
        ),
    }
}

/// A call that a resilience layer refused or cut short.
///
/// Wrapped functions return `Result<T, E>` where `E: From<resilience::Error>`, so these
/// reach the caller through the caller's own error type:
///
/// ```
/// use resilience::Error;
///
/// #[derive(Debug)]
/// enum ApiError {
///     Http(u16),
///     Resilience(Error),
/// }
///
/// impl From<Error> for ApiError {
///     fn from(e: Error) -> Self {
///         ApiError::Resilience(e)
///     }
/// }
///
/// let e = ApiError::from(Error::timeout(std::time::Duration::from_secs(5)));
/// assert!(matches!(e, ApiError::Resilience(Error::Timeout { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The circuit breaker `name` is open (or forced open, or half-open with every probe
    /// slot taken) and rejected the call without running it.
    #[error("{}", circuit_open_message(name, *retry_after, *state))]
    #[non_exhaustive]
    CircuitOpen {
        /// Name of the circuit.
        name: Arc<str>,
        /// Time until the circuit lets a probe call through (zero when forced open: it
        /// stays open until an operator acts).
        retry_after: Duration,
        /// Why it refused: `Open`, `ForcedOpen` (by an operator) or `HalfOpen` (every
        /// probe slot taken).
        state: CircuitState,
    },
    /// The rate limiter `name` had no permit and its policy was to reject (or the wait
    /// would have exceeded `max_wait`, or its queue was full).
    #[error(
        "rate limit `{name}` exceeded: the call was not attempted; a permit is expected in {retry_after:?}"
    )]
    #[non_exhaustive]
    RateLimited {
        /// Name of the limiter.
        name: Arc<str>,
        /// Suggested wait before the next attempt.
        retry_after: Duration,
    },
    /// The call did not finish within `limit`.
    #[error("call timed out after {limit:?}")]
    #[non_exhaustive]
    Timeout {
        /// The limit that elapsed.
        limit: Duration,
    },
    /// The bulkhead `name` already had `max_concurrent` calls in flight (and the bounded
    /// wait, if any, ran out).
    #[error(
        "bulkhead `{name}` is full: {max_concurrent} calls already in flight; the call was not attempted"
    )]
    #[non_exhaustive]
    BulkheadFull {
        /// Name of the bulkhead.
        name: Arc<str>,
        /// Its concurrency limit.
        max_concurrent: u32,
    },
    /// The shared-state backend (Redis) of the instance `name` could not be reached in
    /// time, and the instance is configured to fail closed
    /// ([`FailMode::Closed`](crate::FailMode::Closed)): the call was not attempted.
    #[error(
        "`{name}` rejected the call: its shared-state backend is unavailable ({reason}); it is configured to fail closed"
    )]
    #[non_exhaustive]
    BackendUnavailable {
        /// Name of the limiter or circuit.
        name: Arc<str>,
        /// What went wrong (connection refused, timed out after 50ms, ...).
        reason: Arc<str>,
    },
    /// Every worker thread of the pool that runs timed blocking calls
    /// ([`timeout::call_blocking`](crate::timeout::call_blocking)) is busy, most likely
    /// with calls that timed out and are still running: the call was not attempted. The
    /// pool's size is [`timeout::set_max_blocking_workers`](crate::timeout::set_max_blocking_workers).
    #[error(
        "the blocking-timeout worker pool is exhausted: all {workers} workers are busy (calls that timed out keep running until they return); the call was not attempted; raise the limit with `resilience::timeout::set_max_blocking_workers` or give the blocking work its own deadline"
    )]
    #[non_exhaustive]
    BlockingPoolFull {
        /// Workers busy, the pool's maximum.
        workers: usize,
    },
    /// A named instance could not be built from its configuration (an unknown preset, an
    /// invalid value loaded from a config file). Never retried.
    #[error("resilience configuration error: {0}")]
    Config(ConfigError),
}

impl Error {
    /// A [`Error::CircuitOpen`] for circuit `name`, open for `retry_after` more.
    pub fn circuit_open(name: impl Into<Arc<str>>, retry_after: Duration) -> Self {
        Error::circuit_rejected(name, retry_after, CircuitState::Open)
    }

    /// A [`Error::CircuitOpen`] for circuit `name` refusing calls in `state`.
    pub fn circuit_rejected(
        name: impl Into<Arc<str>>,
        retry_after: Duration,
        state: CircuitState,
    ) -> Self {
        Error::CircuitOpen { name: name.into(), retry_after, state }
    }

    /// A [`Error::RateLimited`] for limiter `name`.
    pub fn rate_limited(name: impl Into<Arc<str>>, retry_after: Duration) -> Self {
        Error::RateLimited { name: name.into(), retry_after }
    }

    /// A [`Error::Timeout`] after `limit`.
    pub fn timeout(limit: Duration) -> Self {
        Error::Timeout { limit }
    }

    /// A [`Error::BulkheadFull`] for bulkhead `name`.
    pub fn bulkhead_full(name: impl Into<Arc<str>>, max_concurrent: u32) -> Self {
        Error::BulkheadFull { name: name.into(), max_concurrent }
    }

    /// A [`Error::BlockingPoolFull`] with `workers` busy workers.
    pub fn blocking_pool_full(workers: usize) -> Self {
        Error::BlockingPoolFull { workers }
    }

    /// A [`Error::BackendUnavailable`] for instance `name`.
    pub fn backend_unavailable(name: impl Into<Arc<str>>, reason: impl Into<Arc<str>>) -> Self {
        Error::BackendUnavailable { name: name.into(), reason: reason.into() }
    }

    /// How long the layer suggests waiting before trying again, when it knows.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let e = resilience::Error::rate_limited("shopify", Duration::from_millis(500));
    /// assert_eq!(e.retry_after(), Some(Duration::from_millis(500)));
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::CircuitOpen { retry_after, .. } | Error::RateLimited { retry_after, .. } => {
                Some(*retry_after)
            }
            Error::Timeout { .. }
            | Error::BulkheadFull { .. }
            | Error::BackendUnavailable { .. }
            | Error::BlockingPoolFull { .. }
            | Error::Config(_) => None,
        }
    }

    /// Whether this is a rejection before the call ran (open circuit, rate limit, full
    /// bulkhead, unavailable backend, exhausted blocking pool, bad configuration), as opposed to a timeout of a call that did run.
    pub fn is_rejection(&self) -> bool {
        !matches!(self, Error::Timeout { .. })
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

/// So that a function returning `std::io::Result<T>` can carry rejections (the standard
/// library's error type cannot get an impl in your crate): the [`Error`] becomes the
/// source of an `io::Error` of kind `TimedOut` for a timeout, `Other` for the rest.
/// [`Classify`](crate::Classify) and [`RetryAfter`](crate::RetryAfter) for `io::Error`
/// look through to it, so an outer retry treats it as it treats the `Error` itself.
///
/// ```
/// use std::io;
/// use resilience::Error;
///
/// let e = io::Error::from(Error::timeout(std::time::Duration::from_secs(5)));
/// assert_eq!(e.kind(), io::ErrorKind::TimedOut);
/// assert!(e.get_ref().and_then(|e| e.downcast_ref::<Error>()).is_some());
/// ```
impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = match e {
            Error::Timeout { .. } => std::io::ErrorKind::TimedOut,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// A configuration value that a builder, the registry or a config file refused.
///
/// The message names the field and the accepted range:
///
/// ```
/// let err = resilience::ConfigError::new("max_attempts", "must be at least 1 (got 0)");
/// assert_eq!(err.to_string(), "invalid `max_attempts`: must be at least 1 (got 0)");
/// assert_eq!(err.field(), "max_attempts");
/// ```
///
/// It is one pointer wide (its text is boxed), so that every `Result` carrying it, or an
/// [`Error`], stays small on the path where nothing went wrong.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{}`: {}", .0.field, .0.message)]
pub struct ConfigError(Box<ConfigErrorText>);

#[derive(Clone, PartialEq, Eq)]
struct ConfigErrorText {
    field: Cow<'static, str>,
    message: String,
}

impl ConfigError {
    /// A new error about `field`.
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ConfigError(Box::new(ConfigErrorText { field: field.into(), message: message.into() }))
    }

    /// The field (or name) the error is about.
    pub fn field(&self) -> &str {
        &self.0.field
    }

    /// What is wrong and what is accepted.
    pub fn message(&self) -> &str {
        &self.0.message
    }
}

/// Shows the fields as they were shown before the text was boxed:
/// `ConfigError { field: "..", message: ".." }`.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigError")
            .field("field", &self.0.field)
            .field("message", &self.0.message)
            .finish()
    }
}

/// Shared validation helpers for builders.
pub(crate) mod check {
    use super::ConfigError;
    use std::fmt;
    use std::time::Duration;

    /// `value >= 1`.
    pub(crate) fn at_least_one(field: &'static str, value: u64) -> Result<(), ConfigError> {
        if value == 0 {
            return Err(ConfigError::new(field, "must be at least 1 (got 0)"));
        }
        Ok(())
    }

    /// A strictly positive duration.
    pub(crate) fn positive(field: &'static str, value: Duration) -> Result<(), ConfigError> {
        if value.is_zero() {
            return Err(ConfigError::new(field, "must be a positive duration (got 0s)"));
        }
        Ok(())
    }

    /// `value <= max`; the bounds are shown as `Debug` shows them (`10000`, `60s`).
    pub(crate) fn at_most<T: PartialOrd + fmt::Debug>(
        field: &'static str,
        value: T,
        max: T,
    ) -> Result<(), ConfigError> {
        if value > max {
            return Err(ConfigError::new(
                field,
                format!("must be at most {max:?} (got {value:?})"),
            ));
        }
        Ok(())
    }

    /// `value` in `lo..=hi`; the bounds are shown as `Debug` shows them.
    pub(crate) fn between<T: PartialOrd + fmt::Debug>(
        field: &'static str,
        value: T,
        lo: T,
        hi: T,
    ) -> Result<(), ConfigError> {
        if value < lo || value > hi {
            return Err(ConfigError::new(
                field,
                format!("must be between {lo:?} and {hi:?} (got {value:?})"),
            ));
        }
        Ok(())
    }

    /// A finite float in `[lo, hi]`.
    pub(crate) fn in_range(
        field: &'static str,
        value: f64,
        lo: f64,
        hi: f64,
    ) -> Result<(), ConfigError> {
        if !value.is_finite() || value < lo || value > hi {
            return Err(ConfigError::new(
                field,
                format!("must be between {lo} and {hi} (got {value})"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_error_is_one_pointer_so_results_carrying_it_stay_small() {
        assert_eq!(size_of::<ConfigError>(), size_of::<usize>());
        assert_eq!(size_of::<Result<(), ConfigError>>(), size_of::<usize>());
        // The largest variants left are an `Arc<str>` name beside a `Duration` (or a
        // second `Arc<str>`): 40 bytes with the tag, and a `Result` uses the tag's niche.
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(size_of::<Error>(), 40);
            assert_eq!(size_of::<Result<u64, Error>>(), 40);
        }
    }

    #[test]
    fn config_error_reads_compares_and_prints_as_its_fields() {
        let e = ConfigError::new("max_attempts", "must be at least 1 (got 0)");
        assert_eq!((e.field(), e.message()), ("max_attempts", "must be at least 1 (got 0)"));
        assert_eq!(e.to_string(), "invalid `max_attempts`: must be at least 1 (got 0)");
        assert_eq!(
            format!("{e:?}"),
            r#"ConfigError { field: "max_attempts", message: "must be at least 1 (got 0)" }"#
        );
        assert_eq!(e.clone(), e);
        assert_ne!(e, ConfigError::new("max_attempts", "other"));
        let wrapped = Error::from(e.clone());
        assert_eq!(
            wrapped.to_string(),
            "resilience configuration error: invalid `max_attempts`: must be at least 1 (got 0)"
        );
        assert!(matches!(wrapped, Error::Config(ref c) if c == &e));
    }
}
