//! One definition per layer: the keys each layer accepts, shared by every front-end.
//!
//! Each layer's config type implements [`LayerConfig`]: its [`KEYS`](LayerConfig::KEYS)
//! and [`from_entries`](LayerConfig::from_entries), which reads `key = value` entries over
//! a base config and validates the result with the layer's builder. The attribute macros
//! (`#[circuit_breaker(failure_threshold = 5)]`), the TOML files of
//! [`Registry::load_toml`](crate::registry::Registry::load_toml) and (feature `serde`) the
//! `Deserialize` impls of the config types all feed this one function, so they accept the
//! same keys, spelled the same way, with the same checks.
//!
//! ```
//! use resilience::CircuitBreakerConfig;
//! use resilience::config::{LayerConfig, Value};
//! use std::time::Duration;
//!
//! let config = CircuitBreakerConfig::from_entries(
//!     None,
//!     &[("failure_rate", Value::Float(0.5)), ("window", Value::Str("30s"))],
//!     resilience::registry(),
//! )?;
//! assert_eq!(config.failure_rate(), Some(0.5));
//! assert_eq!(config.window(), resilience::circuit::Window::duration(Duration::from_secs(30)));
//!
//! let err = CircuitBreakerConfig::from_entries(None, &[("windw", Value::Int(5))], resilience::registry())
//!     .unwrap_err();
//! assert_eq!(err.field(), "windw");
//! # Ok::<(), resilience::ConfigError>(())
//! ```
//!
//! # Durations
//!
//! One grammar everywhere: a decimal number and a unit, `ns`, `us`, `ms`, `s`, `min`
//! (also `m`) or `h`: `250ms`, `1.5s`, `5min`. Attributes write them as literals
//! (`recovery_timeout = 30s`), files as strings (`recovery_timeout = "30s"`); see
//! [`duration`].
//!
//! # Keys
//!
//! | layer | keys |
//! |---|---|
//! | retry | `max_attempts`, `backoff` (`constant`, `linear`, `exponential`, `fibonacci`, `decorrelated`), `initial_delay`, `max_delay`, `multiplier`, `jitter` (`none`, `full`, `equal`, `proportional(0.25)` for ±25 %, `ratio(0.5)` for `U(0.5, 1.0)·d`), `deadline` (the whole call; `max_elapsed` is an alias), `honor_retry_after`, `budget` (a budget shared by every call site naming it) |
//! | circuit breaker | `failure_threshold`, or `failure_rate` + `window` (a number of calls, or a duration) + `min_calls`; `recovery_timeout`, `recovery_jitter`, `half_open_max_calls`, `success_threshold`, `slow_call`, `backend`, `fail_mode` |
//! | rate limit | `per_second` or `per_minute`, `burst`, `on_limit` (`wait`, `reject`, `queue`), `max_wait`, `max_queue`, `idle_timeout`, `max_pause`, `backend`, `fail_mode` |
//! | bulkhead | `max_concurrent`, `max_wait`; `adaptive` (`gradient`, `aimd`, `vegas`) with `min_limit`, `max_limit`, `initial_limit` |
//! | timeout | `duration` |
//! | hedge | `delay` (a duration, or a percentile of recent latencies: `p95`, `p99.9`), `max_hedges`, `budget` (the ratio of extra load hedges may add) |
//!
//! `backend` is `"local"` or `"redis"`; with `"redis"`, `fail_mode` is `"open"` or
//! `"closed"` (see `Backend` and `FailMode`). The circuit breaker also takes the former
//! file names `window_calls` and `window_duration` for `window`.
#![cfg_attr(feature = "toml", doc = "")]
#![cfg_attr(feature = "toml", doc = include_str!("toml.md"))]

#[cfg(feature = "toml")]
mod file;
#[allow(dead_code)]
pub(crate) mod grammar;
#[cfg(feature = "serde")]
mod serde;
#[cfg(feature = "toml")]
mod toml;

#[cfg(feature = "watch")]
pub use file::TomlWatch;
#[cfg(feature = "toml")]
pub(crate) use file::reload;
#[cfg(feature = "watch")]
pub(crate) use file::watch;

#[cfg(feature = "toml")]
pub(crate) use self::toml::load;

use std::fmt;
use std::time::Duration;

use crate::registry::Registry;
use crate::{Backend, ConfigError, FailMode};

/// A value given for a key: what an attribute literal or a config file entry holds.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// A whole number: `max_attempts = 3`.
    Int(i64),
    /// A number with a fraction: `failure_rate = 0.5`.
    Float(f64),
    /// Text: a name, a choice (`"exponential"`) or a duration (`"250ms"`).
    Str(&'a str),
    /// A duration, from an attribute literal (`250ms`).
    Duration(Duration),
    /// `true` or `false`.
    Bool(bool),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "\"{s}\""),
            Value::Duration(d) => write!(f, "{d:?}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl<'a> Value<'a> {
    fn wrong(self, key: &str, expected: &str) -> ConfigError {
        ConfigError::new(key.to_owned(), format!("expects {expected} (got {self})"))
    }

    /// A whole number from 0 to `u32::MAX` (the builder checks the range).
    pub(crate) fn count(self, key: &str) -> Result<u32, ConfigError> {
        match self {
            Value::Int(n) => u32::try_from(n).map_err(|_| {
                ConfigError::new(
                    key.to_owned(),
                    format!("must be a whole number from 0 to {} (got {n})", u32::MAX),
                )
            }),
            _ => Err(self.wrong(key, &format!("a whole number, like `{key} = 3`"))),
        }
    }

    /// A number (a whole number is accepted too).
    pub(crate) fn float(self, key: &str) -> Result<f64, ConfigError> {
        match self {
            Value::Float(x) => Ok(x),
            Value::Int(n) => Ok(n as f64),
            _ => Err(self.wrong(key, &format!("a number, like `{key} = 0.5`"))),
        }
    }

    /// A duration literal, or duration text in the [`duration`] grammar.
    pub(crate) fn duration(self, key: &str) -> Result<Duration, ConfigError> {
        match self {
            Value::Duration(d) => Ok(d),
            Value::Str(text) => duration(text).map_err(|e| at(key)(e)),
            _ => Err(self.wrong(key, &format!("a duration with a unit, like `{key} = \"250ms\"`"))),
        }
    }

    /// `true` or `false`.
    pub(crate) fn boolean(self, key: &str) -> Result<bool, ConfigError> {
        match self {
            Value::Bool(b) => Ok(b),
            _ => Err(self.wrong(key, &format!("`true` or `false`, like `{key} = true`"))),
        }
    }

    /// Text.
    pub(crate) fn text(self, key: &str) -> Result<&'a str, ConfigError> {
        match self {
            Value::Str(s) => Ok(s),
            _ => Err(self.wrong(key, &format!("a string, like `{key} = \"name\"`"))),
        }
    }

    /// One of `choices`, by name.
    pub(crate) fn choice<T: Copy>(
        self,
        key: &str,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let list = choices.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
        let text = self.text(key).map_err(|_| self.wrong(key, &format!("one of {list}")))?;
        choices.iter().find(|(n, _)| *n == text).map(|(_, v)| *v).ok_or_else(|| {
            ConfigError::new(key.to_owned(), format!("`{text}` is not accepted; use one of {list}"))
        })
    }
}

/// A layer's config, read from `key = value` entries: the one definition every front-end
/// (attributes, TOML, `Deserialize`) goes through.
pub trait LayerConfig: Sized {
    /// The layer's name, as an attribute and as a table of a config file.
    const LAYER: &'static str;

    /// Every key the layer accepts, in attributes and in config files alike.
    const KEYS: &'static [&'static str];

    /// Reads `entries` over `base` (or the defaults) and validates the result. Names (a
    /// retry budget) are looked up in `registry`.
    ///
    /// Errors name the key (`max_attempts`) and say what is accepted; an unknown key is
    /// an error that lists [`KEYS`](Self::KEYS).
    fn from_entries(
        base: Option<Self>,
        entries: &[(&str, Value<'_>)],
        registry: &Registry,
    ) -> Result<Self, ConfigError>;
}

/// Parses duration text: a decimal number and a unit, `ns`, `us`, `ms`, `s`, `min` (also
/// `m`) or `h`, at most 500 years.
///
/// ```
/// use std::time::Duration;
/// use resilience::config::duration;
///
/// assert_eq!(duration("250ms")?, Duration::from_millis(250));
/// assert_eq!(duration("1.5s")?, Duration::from_millis(1500));
/// assert_eq!(duration("2min")?, duration("2m")?);
/// assert!(duration("5").unwrap_err().message().contains("no unit"));
/// # Ok::<(), resilience::ConfigError>(())
/// ```
pub fn duration(text: &str) -> Result<Duration, ConfigError> {
    use grammar::Refused;
    let t = text.trim();
    let message = match grammar::parse(t) {
        Ok(nanos) => return Ok(Duration::from_nanos(nanos)),
        Err(Refused::NoUnit) => format!("`{t}` has no unit; write it as e.g. `{t}s` or `{t}ms`"),
        Err(Refused::UnknownUnit) => format!(
            "`{}` is not a duration unit; use {} (e.g. `250ms`, `1.5s`)",
            grammar::split(t).1,
            grammar::UNIT_LIST
        ),
        Err(Refused::BadNumber) => {
            format!("`{t}` is not a duration; write e.g. `250ms`, `1.5s`, `5min`")
        }
        Err(Refused::TooLarge) => format!("`{t}` is out of range (at most 500 years)"),
    };
    Err(ConfigError::new("duration", message))
}

/// The "unknown key" error, listing the keys of the layer.
pub(crate) fn unknown(key: &str, keys: &[&str]) -> ConfigError {
    ConfigError::new(
        key.to_owned(),
        format!("is not a key of this layer; expected one of: {}", keys.join(", ")),
    )
}

/// Re-labels an error of a value with the key it was given for.
pub(crate) fn at(key: &str) -> impl Fn(ConfigError) -> ConfigError + '_ {
    move |e| ConfigError::new(key.to_owned(), e.message().to_owned())
}

/// The `backend` and `fail_mode` keys of a layer with shared state: `backend = "local" |
/// "redis"`, and with `"redis"`, `fail_mode = "open" | "closed"`.
#[derive(Default)]
pub(crate) struct BackendKeys<'a> {
    backend: Option<Value<'a>>,
    fail_mode: Option<Value<'a>>,
}

impl<'a> BackendKeys<'a> {
    /// Reads a layer's `entries` into its builder `b`: every key but these two with
    /// `set`, then the backend they choose over the `inherited` one with `set_backend`.
    pub(crate) fn read<B>(
        entries: &[(&str, Value<'a>)],
        mut b: B,
        inherited: Option<Backend>,
        set_backend: fn(B, Backend) -> B,
        mut set: impl FnMut(B, &str, Value<'a>) -> Result<B, ConfigError>,
    ) -> Result<B, ConfigError> {
        let mut shared = BackendKeys::default();
        for &(key, value) in entries {
            if !shared.take(key, value) {
                b = set(b, key, value)?;
            }
        }
        if let Some(backend) = shared.backend(inherited)? {
            b = set_backend(b, backend);
        }
        Ok(b)
    }

    /// Keeps `value` if `key` is one of the two; `false` otherwise.
    pub(crate) fn take(&mut self, key: &str, value: Value<'a>) -> bool {
        match key {
            "backend" => self.backend = Some(value),
            "fail_mode" => self.fail_mode = Some(value),
            _ => return false,
        }
        true
    }

    /// The backend the keys choose over the `inherited` one of the base config (a fail
    /// mode alone keeps its Redis backend); `None` when neither key was given.
    pub(crate) fn backend(
        self,
        inherited: Option<Backend>,
    ) -> Result<Option<Backend>, ConfigError> {
        let fail = self.fail_mode.map(|v| v.text("fail_mode")?.parse::<FailMode>()).transpose()?;
        let written = self.backend.map(|v| v.text("backend")?.parse::<Backend>()).transpose()?;
        match (written, fail) {
            (Some(Backend::Redis(_)), fail) => Ok(Some(Backend::Redis(fail.unwrap_or_default()))),
            (None, Some(fail)) if matches!(inherited, Some(Backend::Redis(_))) => {
                Ok(Some(Backend::Redis(fail)))
            }
            (_, Some(_)) => Err(ConfigError::new(
                "fail_mode",
                "applies only to backend = \"redis\"; add it or remove fail_mode",
            )),
            (other, None) => Ok(other),
        }
    }
}

/// The keys of the timeout layer (`#[timeout(duration = 5s)]`, `[name.timeout]`).
pub const TIMEOUT_KEYS: &[&str] = &["duration"];

/// Reads the timeout layer's entries: the limit per attempt, if given.
///
/// ```
/// use std::time::Duration;
/// use resilience::config::{timeout_from_entries, Value};
///
/// let limit = timeout_from_entries(&[("duration", Value::Str("2s"))])?;
/// assert_eq!(limit, Some(Duration::from_secs(2)));
/// assert!(timeout_from_entries(&[("duration", Value::Str("0s"))]).is_err());
/// # Ok::<(), resilience::ConfigError>(())
/// ```
pub fn timeout_from_entries(
    entries: &[(&str, Value<'_>)],
) -> Result<Option<Duration>, ConfigError> {
    let mut limit = None;
    for &(key, value) in entries {
        match key {
            "duration" => {
                let d = value.duration(key)?;
                crate::error::check::positive("duration", d)?;
                limit = Some(d);
            }
            _ => return Err(unknown(key, TIMEOUT_KEYS)),
        }
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_read_exactly() {
        let ok = |t: &str| duration(t).ok();
        assert_eq!(ok("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(ok("7us"), Some(Duration::from_micros(7)));
        assert_eq!(ok("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(ok("5ms"), Some(Duration::from_millis(5)));
        assert_eq!(ok("2s"), Some(Duration::from_secs(2)));
        assert_eq!(ok("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(ok("0.1s"), Some(Duration::from_millis(100)));
        assert_eq!(ok("5m"), Some(Duration::from_secs(300)));
        assert_eq!(ok("5min"), Some(Duration::from_secs(300)));
        assert_eq!(ok("1h"), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "5",
            "s",
            "5 parsecs",
            "1e400s",
            "-1s",
            "..s",
            "ms5",
            "9999999999999999999999h",
            "١s",
        ] {
            assert!(duration(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
