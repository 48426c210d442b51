//! [`Backend`]: where a limiter or a circuit keeps its state, and [`FailMode`]: what it
//! does when that place cannot be reached.

use std::fmt;
use std::str::FromStr;

use crate::ConfigError;

/// Where a rate limiter or circuit breaker keeps its state.
///
/// `Local` (the default) is in-process: atomics, no I/O. `Redis` shares one bucket or one
/// circuit among every process that uses the same name and the same Redis (crate feature
/// `redis`; see [`crate::redis`] for the consistency model). Choosing `Redis` without the
/// feature is a [`ConfigError`] from the builder.
///
/// ```
/// use resilience::{Backend, FailMode};
///
/// assert_eq!("redis".parse::<Backend>()?, Backend::Redis(FailMode::Open));
/// assert_eq!(Backend::default(), Backend::Local);
/// assert!("memcached".parse::<Backend>().is_err());
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Backend {
    /// State in this process only.
    #[default]
    Local,
    /// State shared through Redis; when Redis cannot be reached, behave per the
    /// [`FailMode`].
    Redis(FailMode),
}

/// What a Redis-backed instance does while Redis is unreachable, slow past its timeout,
/// or restarting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailMode {
    /// Fall back to the instance's local limiter or breaker (a warn event says so) and
    /// share again once Redis answers. Availability first: during the outage each process
    /// enforces the limit on its own.
    #[default]
    Open,
    /// Reject every call with [`Error::BackendUnavailable`](crate::Error::BackendUnavailable)
    /// until Redis answers again. The fleet-wide limit is never exceeded.
    Closed,
}

impl Backend {
    /// Whether state lives outside the process.
    pub fn is_shared(&self) -> bool {
        !matches!(self, Backend::Local)
    }

    /// The builder check: `Redis` needs the crate feature.
    pub(crate) fn check(self) -> Result<(), ConfigError> {
        if self.is_shared() && !cfg!(feature = "redis") {
            return Err(ConfigError::new(
                "backend",
                "`redis` needs the crate feature `redis` (resilience = { features = [\"redis\"] })",
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Local => f.write_str("local"),
            Backend::Redis(FailMode::Open) => f.write_str("redis"),
            Backend::Redis(FailMode::Closed) => f.write_str("redis (fail closed)"),
        }
    }
}

/// `"local"` or `"redis"` (failing open; set [`FailMode`] apart).
impl FromStr for Backend {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "local" => Ok(Backend::Local),
            "redis" => Ok(Backend::Redis(FailMode::Open)),
            other => Err(ConfigError::new(
                "backend",
                format!("unknown backend `{other}`: write \"local\" or \"redis\""),
            )),
        }
    }
}

/// `"open"` or `"closed"`.
impl FromStr for FailMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "open" => Ok(FailMode::Open),
            "closed" => Ok(FailMode::Closed),
            other => Err(ConfigError::new(
                "fail_mode",
                format!("unknown fail mode `{other}`: write \"open\" or \"closed\""),
            )),
        }
    }
}
