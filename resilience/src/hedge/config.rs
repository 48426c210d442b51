//! [`HedgeConfig`]: when to start a hedge, how many, and the budget they draw on.

use std::fmt;
use std::time::Duration;

use crate::ConfigError;
use crate::config::{self, LayerConfig, Value};
use crate::error::check;
use crate::registry::Registry;
use crate::retry::RetryBudgetConfig;

/// The most hedges a call may start besides its first attempt.
pub(crate) const MAX_HEDGES: u32 = 10;
/// The longest fixed delay.
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// How long the attempts in flight get before the next hedge starts.
///
/// ```
/// use std::time::Duration;
/// use resilience::hedge::HedgeDelay;
///
/// assert_eq!(HedgeDelay::parse("50ms")?, HedgeDelay::Fixed(Duration::from_millis(50)));
/// assert_eq!(HedgeDelay::parse("p95")?, HedgeDelay::Percentile(95.0));
/// assert_eq!(HedgeDelay::parse("p99.9")?, HedgeDelay::Percentile(99.9));
/// assert!(HedgeDelay::parse("p100").is_err());
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum HedgeDelay {
    /// A fixed delay.
    Fixed(Duration),
    /// A percentile (in `(0, 100)`, `95.0` for p95) of the latencies of the recent first
    /// attempts of this instance's calls. Until 20 latencies are known, calls are not
    /// hedged.
    Percentile(f64),
}

impl HedgeDelay {
    /// Reads `"p95"`, `"p99.9"` (a percentile) or a duration (`"50ms"`, in the grammar of
    /// [`config::duration`]).
    pub fn parse(text: &str) -> Result<HedgeDelay, ConfigError> {
        let t = text.trim();
        match t.strip_prefix('p') {
            Some(p) => {
                let p: f64 = p.parse().map_err(|_| {
                    ConfigError::new(
                        "delay",
                        format!("`{t}` is neither a duration nor a percentile like `p95`"),
                    )
                })?;
                let delay = HedgeDelay::Percentile(p);
                delay.check()?;
                Ok(delay)
            }
            None => {
                let delay = HedgeDelay::Fixed(config::duration(t).map_err(|e| {
                    ConfigError::new(
                        "delay",
                        format!("{} (or a percentile like `p95`)", e.message()),
                    )
                })?);
                delay.check()?;
                Ok(delay)
            }
        }
    }

    fn check(self) -> Result<(), ConfigError> {
        match self {
            HedgeDelay::Fixed(d) => check::at_most("delay", d, MAX_DELAY),
            HedgeDelay::Percentile(p) if p.is_finite() && p > 0.0 && p < 100.0 => Ok(()),
            HedgeDelay::Percentile(p) => Err(ConfigError::new(
                "delay",
                format!("a percentile must be greater than 0 and less than 100 (got p{p})"),
            )),
        }
    }
}

impl fmt::Display for HedgeDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HedgeDelay::Fixed(d) => write!(f, "{d:?}"),
            HedgeDelay::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

/// The configuration of a [`Hedge`](super::Hedge).
///
/// Defaults: `delay` p95 of recent latencies, `max_hedges` 1, and a budget that lets
/// hedges add at most 10 % to the calls of the last 10 s (a
/// [`RetryBudgetConfig`] with ratio 0.1 and no floor).
///
/// ```
/// use std::time::Duration;
/// use resilience::hedge::{HedgeConfig, HedgeDelay};
///
/// let config = HedgeConfig::builder()
///     .delay(HedgeDelay::Fixed(Duration::from_millis(50)))
///     .max_hedges(2)
///     .build()?;
/// assert_eq!(config.max_hedges(), 2);
/// assert_eq!(config.budget().ratio(), 0.1);
/// assert!(HedgeConfig::builder().max_hedges(0).build().is_err());
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HedgeConfig {
    delay: HedgeDelay,
    max_hedges: u32,
    budget: RetryBudgetConfig,
}

/// The default hedge budget: 10 % of the calls of the last 10 s, no floor.
fn default_budget() -> RetryBudgetConfig {
    let budget = RetryBudgetConfig::builder().ratio(0.1).min_retries_per_sec(0).build();
    // Unreachable: constant valid values; the retry budget's defaults otherwise.
    budget.unwrap_or_default()
}

impl Default for HedgeConfig {
    fn default() -> Self {
        HedgeConfig { delay: HedgeDelay::Percentile(95.0), max_hedges: 1, budget: default_budget() }
    }
}

impl HedgeConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> HedgeConfigBuilder {
        HedgeConfigBuilder { config: HedgeConfig::default() }
    }

    /// When the next hedge starts.
    pub fn delay(&self) -> HedgeDelay {
        self.delay
    }

    /// The most hedges one call starts besides its first attempt.
    pub fn max_hedges(&self) -> u32 {
        self.max_hedges
    }

    /// The budget hedges draw on: each call deposits, each hedge withdraws.
    pub fn budget(&self) -> &RetryBudgetConfig {
        &self.budget
    }
}

/// Builds a [`HedgeConfig`]; [`build`](Self::build) validates it.
#[derive(Debug, Clone)]
#[must_use]
pub struct HedgeConfigBuilder {
    config: HedgeConfig,
}

impl HedgeConfigBuilder {
    setters! {
        /// When the next hedge starts (default p95): a fixed delay up to 1 h, or a
        /// percentile in `(0, 100)`.
        pub fn delay(delay: HedgeDelay) => self.config.delay = delay;

        /// Hedges per call besides the first attempt, `1..=10` (default 1).
        pub fn max_hedges(n: u32) => self.config.max_hedges = n;

        /// The budget hedges draw on (default: ratio 0.1, no floor, 10 s window).
        pub fn budget(budget: RetryBudgetConfig) => self.config.budget = budget;
    }

    /// The config, or the first invalid value.
    pub fn build(self) -> Result<HedgeConfig, ConfigError> {
        let c = self.config;
        c.delay.check()?;
        check::between("max_hedges", c.max_hedges, 1, MAX_HEDGES)?;
        Ok(c)
    }
}

/// Reads the keys `delay` (a duration, or a percentile like `"p95"`), `max_hedges` (a
/// count) and `budget` (the ratio of extra load hedges may add, in `(0, 1]`), in
/// attributes, config files and `Deserialize` alike.
///
/// ```
/// use resilience::hedge::{HedgeConfig, HedgeDelay};
/// use resilience::config::{LayerConfig, Value};
///
/// let config = HedgeConfig::from_entries(
///     None,
///     &[("delay", Value::Str("p99")), ("budget", Value::Float(0.05))],
///     resilience::registry(),
/// )?;
/// assert_eq!(config.delay(), HedgeDelay::Percentile(99.0));
/// assert_eq!(config.budget().ratio(), 0.05);
/// let err = HedgeConfig::from_entries(None, &[("delay", Value::Str("p0"))], resilience::registry());
/// assert_eq!(err.unwrap_err().field(), "delay");
/// # Ok::<(), resilience::ConfigError>(())
/// ```
impl LayerConfig for HedgeConfig {
    const LAYER: &'static str = "hedge";
    const KEYS: &'static [&'static str] = &["delay", "max_hedges", "budget"];

    fn from_entries(
        base: Option<Self>,
        entries: &[(&str, Value<'_>)],
        _: &Registry,
    ) -> Result<Self, ConfigError> {
        let mut b = HedgeConfigBuilder { config: base.unwrap_or_default() };
        for &(key, value) in entries {
            b = match key {
                "delay" => match value {
                    Value::Duration(d) => b.delay(HedgeDelay::Fixed(d)),
                    Value::Str(text) => b.delay(HedgeDelay::parse(text)?),
                    _ => {
                        return Err(ConfigError::new(
                            "delay",
                            format!(
                                "expects a duration or a percentile, like `delay = \"50ms\"` or `delay = \"p95\"` (got {value})"
                            ),
                        ));
                    }
                },
                "max_hedges" => b.max_hedges(value.count(key)?),
                "budget" => {
                    let old = &b.config.budget;
                    let budget = RetryBudgetConfig::builder()
                        .ratio(value.float(key)?)
                        .min_retries_per_sec(old.min_retries_per_sec())
                        .ttl(old.ttl())
                        .build();
                    b.budget(budget.map_err(|e| ConfigError::new("budget", e.message()))?)
                }
                _ => return Err(config::unknown(key, Self::KEYS)),
            };
        }
        b.build()
    }
}
