//! [`RetryPolicy`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::budget::RetryBudget;
use crate::ConfigError;
use crate::backoff::{Backoff, Jitter, Strategy};
use crate::clock::{SharedClock, default_clock};
use crate::config::{self, LayerConfig, Value};
use crate::error::check;
use crate::events::Hub;
use crate::registry::Registry;

/// The largest accepted `max_attempts`. With a 60 s cap that is about a week of
/// retrying; bound the total with [`RetryPolicyBuilder::deadline`] instead.
pub(super) const MAX_ATTEMPTS_LIMIT: u32 = 10_000;
/// The largest accepted `deadline`: `u64::MAX` nanoseconds (about 584 years).
const DEADLINE_LIMIT: Duration = Duration::from_nanos(u64::MAX);

/// How to retry a fallible call: how many attempts, how long to wait between them, the
/// deadline of the whole call, and under which shared [`RetryBudget`].
///
/// The **deadline** covers the whole protected call, measured from the start of the
/// first attempt on the policy's clock: every attempt, every backoff sleep, and every
/// wait of the layers below (a rate limiter or bulkhead whose wait would end past it
/// refuses at once; a per-attempt timeout is cut to the time left). The retry never
/// starts a sleep that would end past it: it gives up with the last outcome and reports
/// [`GiveUpReason::Deadline`](crate::events::GiveUpReason::Deadline).
///
/// **`max_attempts` counts every call of the operation, the first one included**:
/// `max_attempts(3)` means one call and at most two retries, and `max_attempts(1)` means
/// no retry at all.
///
/// Cloning is cheap (one reference count). The drivers are
/// [`call`](RetryPolicy::call) / [`call_with`](RetryPolicy::call_with) /
/// [`run`](RetryPolicy::run) for blocking code (sleeping on the policy's clock) and
/// their `_async` twins (sleeping on tokio's timer).
///
/// ```
/// use resilience::backoff::Backoff;
/// use resilience::retry::RetryPolicy;
/// use std::time::Duration;
///
/// let policy = RetryPolicy::builder()
///     .max_attempts(3)
///     .backoff(Backoff::exponential(Duration::from_millis(1)))
///     .build()?;
/// let mut calls = 0;
/// let r: Result<&str, &str> = policy.call(|| {
///     calls += 1;
///     if calls < 3 { Err("flaky") } else { Ok("done") }
/// });
/// assert_eq!(r, Ok("done"));
/// assert_eq!(calls, 3);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    pub(super) inner: Arc<PolicyInner>,
}

pub(super) struct PolicyInner {
    pub(super) name: Option<Arc<str>>,
    pub(super) max_attempts: u32,
    pub(super) backoff: Backoff,
    pub(super) deadline: Option<Duration>,
    pub(super) budget: Option<Arc<RetryBudget>>,
    pub(super) honor_retry_after: bool,
    pub(super) seed: Option<u64>,
    pub(super) clock: SharedClock,
    /// Where the policy reports its events.
    pub(super) hub: Hub,
    /// Where the metrics count the policy's calls.
    #[cfg(feature = "metrics")]
    pub(super) metrics: std::sync::OnceLock<Arc<crate::metrics::RetryCells>>,
}

impl Default for RetryPolicy {
    /// 3 attempts, [`Backoff::default()`] (exponential from 1 s, ×2, 60 s cap, full
    /// jitter), no deadline, no budget, server hints honoured.
    fn default() -> Self {
        RetryPolicy { inner: Arc::new(RetryPolicyBuilder::default().into_inner()) }
    }
}

impl RetryPolicy {
    /// A builder starting from the [defaults](RetryPolicy::default).
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder::default()
    }

    /// A builder holding this policy's settings, to derive a variant.
    ///
    /// ```
    /// # use resilience::retry::RetryPolicy;
    /// let base = RetryPolicy::default();
    /// let patient = base.to_builder().max_attempts(10).build()?;
    /// assert_eq!((base.max_attempts(), patient.max_attempts()), (3, 10));
    /// assert_eq!(patient.backoff(), base.backoff());
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn to_builder(&self) -> RetryPolicyBuilder {
        let i = &self.inner;
        RetryPolicyBuilder {
            name: i.name.clone(),
            max_attempts: i.max_attempts,
            backoff: i.backoff,
            deadline: i.deadline,
            budget: i.budget.clone(),
            honor_retry_after: i.honor_retry_after,
            seed: i.seed,
            clock: Some(i.clock.clone()),
            hub: Some(i.hub.clone()),
        }
    }

    /// The same policy reporting its events to `hub` (for a registry's call sites).
    pub(crate) fn with_hub(&self, hub: &Hub) -> RetryPolicy {
        if self.inner.hub.same(hub) {
            return self.clone();
        }
        let mut builder = self.to_builder();
        builder.hub = Some(hub.clone());
        RetryPolicy { inner: Arc::new(builder.into_inner()) }
    }

    /// The same policy drawing on `budget`.
    pub(crate) fn with_budget(&self, budget: Arc<RetryBudget>) -> RetryPolicy {
        let mut builder = self.to_builder();
        builder.budget = Some(budget);
        RetryPolicy { inner: Arc::new(builder.into_inner()) }
    }

    /// The operation name used in events and logs, if set.
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// The attempt limit, **first call included** (1 = no retry).
    pub fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    /// The delays between attempts.
    pub fn backoff(&self) -> &Backoff {
        &self.inner.backoff
    }

    /// The deadline of the whole call, measured from the start of the first attempt, if
    /// any.
    pub fn deadline(&self) -> Option<Duration> {
        self.inner.deadline
    }

    /// The former name of [`deadline`](Self::deadline), kept as an alias.
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.inner.deadline
    }

    /// The shared retry budget, if any.
    pub fn budget(&self) -> Option<&Arc<RetryBudget>> {
        self.inner.budget.as_ref()
    }

    /// Whether server hints ([`RetryHooks::retry_after`](super::RetryHooks::retry_after))
    /// replace the computed delay.
    pub fn honors_retry_after(&self) -> bool {
        self.inner.honor_retry_after
    }

    /// The jitter seed, if fixed.
    pub fn seed(&self) -> Option<u64> {
        self.inner.seed
    }

    /// The clock for blocking sleeps and the deadline.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_settings(f, "RetryPolicy", &self.inner)
    }
}

/// The settings a policy and its builder show in `Debug`, under `type_name`.
fn debug_settings(f: &mut fmt::Formatter<'_>, type_name: &str, i: &PolicyInner) -> fmt::Result {
    f.debug_struct(type_name)
        .field("name", &i.name)
        .field("max_attempts", &i.max_attempts)
        .field("backoff", &i.backoff)
        .field("deadline", &i.deadline)
        .field("budget", &i.budget.as_ref().map(|b| b.name().to_owned()))
        .field("honor_retry_after", &i.honor_retry_after)
        .field("seed", &i.seed)
        .finish_non_exhaustive()
}

/// Builds a [`RetryPolicy`]; [`build`](RetryPolicyBuilder::build) validates.
#[derive(Clone)]
pub struct RetryPolicyBuilder {
    name: Option<Arc<str>>,
    max_attempts: u32,
    backoff: Backoff,
    deadline: Option<Duration>,
    budget: Option<Arc<RetryBudget>>,
    honor_retry_after: bool,
    seed: Option<u64>,
    clock: Option<SharedClock>,
    hub: Option<Hub>,
}

impl Default for RetryPolicyBuilder {
    fn default() -> Self {
        RetryPolicyBuilder {
            name: None,
            max_attempts: 3,
            backoff: Backoff::default(),
            deadline: None,
            budget: None,
            honor_retry_after: true,
            seed: None,
            clock: None,
            hub: None,
        }
    }
}

impl RetryPolicyBuilder {
    setters! {
        /// Attempts in total, **the first call included**: `1` disables retrying, `3` (the
        /// default) is one call plus up to two retries. Accepted: `1..=10_000`.
        pub fn max_attempts(n: u32) => self.max_attempts = n;

        /// The delays between attempts (validated by `build`).
        pub fn backoff(backoff: Backoff) => self.backoff = backoff;

        /// The deadline of the whole call, from the start of the first attempt: a retry
        /// whose sleep would end past it is not taken (the last outcome is returned), and
        /// the layers below never wait past it (see [`RetryPolicy`]).
        pub fn deadline(limit: Duration) => self.deadline = Some(limit);

        /// The former name of [`deadline`](Self::deadline), kept as an alias (config
        /// files and attributes also accept `max_elapsed` for `deadline`).
        pub fn max_elapsed(limit: Duration) => self.deadline = Some(limit);

        /// A retry budget shared with other policies or call sites.
        pub fn budget(budget: Arc<RetryBudget>) => self.budget = Some(budget);

        /// Whether an error's server hint replaces the computed delay (default `true`). A
        /// rate limiter's `RateLimited` rejection is always waited out, whatever this says.
        pub fn honor_retry_after(honor: bool) => self.honor_retry_after = honor;

        /// Fix the jitter seed: every call then sees the same delay sequence. Without a
        /// seed, each call draws a fresh one.
        pub fn seed(seed: u64) => self.seed = Some(seed);

        /// The clock for blocking sleeps and for the deadline (default: the monotonic
        /// clock). Async drivers always sleep on tokio's timer.
        pub fn clock(clock: SharedClock) => self.clock = Some(clock);

        /// The operation name for events and logs.
        pub fn name(name: impl Into<Arc<str>>) => self.name = Some(name.into());
    }

    /// Validates and builds.
    ///
    /// ```
    /// # use resilience::retry::RetryPolicy;
    /// let err = RetryPolicy::builder().max_attempts(0).build().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid `max_attempts`: must be between 1 and 10000 (got 0)");
    /// ```
    pub fn build(self) -> Result<RetryPolicy, ConfigError> {
        check::between("max_attempts", self.max_attempts, 1, MAX_ATTEMPTS_LIMIT)?;
        if let Some(limit) = self.deadline {
            check::positive("deadline", limit)?;
            check::at_most("deadline", limit, DEADLINE_LIMIT)?;
        }
        self.backoff.validate()?;
        Ok(RetryPolicy { inner: Arc::new(self.into_inner()) })
    }

    fn into_inner(self) -> PolicyInner {
        PolicyInner {
            name: self.name,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            deadline: self.deadline,
            budget: self.budget,
            honor_retry_after: self.honor_retry_after,
            seed: self.seed,
            clock: self.clock.unwrap_or_else(default_clock),
            hub: self.hub.unwrap_or_default(),
            #[cfg(feature = "metrics")]
            metrics: std::sync::OnceLock::new(),
        }
    }
}

impl fmt::Debug for RetryPolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A stand-in for an unset clock, which `Debug` does not show: reading the
        // process default here would fix it (see `clock::set_default_clock`).
        let mut b = self.clone();
        b.clock.get_or_insert_with(|| Arc::new(crate::clock::MonotonicClock));
        debug_settings(f, "RetryPolicyBuilder", &b.into_inner())
    }
}

/// The retry policy's keys, for attributes (`#[retry(max_attempts = 3)]`), config files
/// and `Deserialize` alike.
///
/// The backoff keys (`backoff`, `initial_delay`, `max_delay`, `multiplier`, `jitter`)
/// reshape the base policy's backoff: what they leave out is inherited, except that a
/// new strategy starts from its own multiplier.
impl LayerConfig for RetryPolicy {
    const LAYER: &'static str = "retry";
    const KEYS: &'static [&'static str] = &[
        "max_attempts",
        "backoff",
        "initial_delay",
        "max_delay",
        "multiplier",
        "jitter",
        "deadline",
        "max_elapsed",
        "honor_retry_after",
        "budget",
    ];

    fn from_entries(
        base: Option<Self>,
        entries: &[(&str, Value<'_>)],
        registry: &Registry,
    ) -> Result<Self, ConfigError> {
        let inherited = base.as_ref().map(|p| *p.backoff()).unwrap_or_default();
        let mut b = base.map_or_else(RetryPolicy::builder, |p| p.to_builder());
        let mut shape = BackoffShape::default();
        for &(key, value) in entries {
            match key {
                "max_attempts" => b = b.max_attempts(value.count(key)?),
                "backoff" => {
                    shape.strategy = Some(value.choice(
                        key,
                        &[
                            ("constant", Strategy::Constant),
                            ("linear", Strategy::Linear),
                            ("exponential", Strategy::Exponential),
                            ("fibonacci", Strategy::Fibonacci),
                            ("decorrelated", Strategy::Decorrelated),
                        ],
                    )?)
                }
                "initial_delay" => shape.initial = Some(value.duration(key)?),
                "max_delay" => shape.max_delay = Some(value.duration(key)?),
                "multiplier" => shape.multiplier = Some(value.float(key)?),
                "jitter" => shape.jitter = Some(value.text(key)?.parse().map_err(config::at(key))?),
                "deadline" | "max_elapsed" => b = b.deadline(value.duration(key)?),
                "honor_retry_after" => b = b.honor_retry_after(value.boolean(key)?),
                "budget" => b = b.budget(registry.retry_budget(value.text(key)?)),
                _ => return Err(config::unknown(key, Self::KEYS)),
            }
        }
        if let Some(backoff) = shape.over(inherited) {
            backoff.validate()?;
            b = b.backoff(backoff);
        }
        b.build()
    }
}

/// The backoff keys of one set of entries.
#[derive(Default)]
struct BackoffShape {
    strategy: Option<Strategy>,
    initial: Option<Duration>,
    max_delay: Option<Duration>,
    multiplier: Option<f64>,
    jitter: Option<Jitter>,
}

impl BackoffShape {
    /// The backoff these keys make of `base`, or `None` when no backoff key was given.
    fn over(self, base: Backoff) -> Option<Backoff> {
        if self.strategy.is_none()
            && self.initial.is_none()
            && self.max_delay.is_none()
            && self.multiplier.is_none()
            && self.jitter.is_none()
        {
            return None;
        }
        let strategy = self.strategy.unwrap_or(base.strategy());
        let initial = self.initial.unwrap_or(base.initial());
        let mut b = match strategy {
            Strategy::Constant => Backoff::constant(initial),
            Strategy::Linear => Backoff::linear(initial),
            Strategy::Fibonacci => Backoff::fibonacci(initial),
            Strategy::Decorrelated => Backoff::decorrelated(initial),
            _ => Backoff::exponential(initial),
        };
        if strategy == base.strategy() {
            b = b.with_multiplier(base.multiplier());
        }
        if let Some(m) = self.multiplier {
            b = b.with_multiplier(m);
        }
        let cap = self.max_delay.unwrap_or_else(|| base.max_delay().max(initial));
        Some(b.with_max_delay(cap).with_jitter(self.jitter.unwrap_or(base.jitter())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backoff::Jitter;

    #[test]
    fn defaults() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 3);
        assert_eq!(p.backoff(), &Backoff::default());
        assert_eq!(p.deadline(), None);
        assert!(p.budget().is_none());
        assert!(p.honors_retry_after());
        assert_eq!(p.name(), None);
    }

    #[test]
    fn invalid_values_are_errors() {
        let field = |b: RetryPolicyBuilder| b.build().unwrap_err().field().to_owned();
        for n in [0, MAX_ATTEMPTS_LIMIT + 1, u32::MAX] {
            assert_eq!(field(RetryPolicy::builder().max_attempts(n)), "max_attempts");
        }
        for d in [Duration::ZERO, Duration::MAX] {
            assert_eq!(field(RetryPolicy::builder().deadline(d)), "deadline");
            assert_eq!(field(RetryPolicy::builder().max_elapsed(d)), "deadline", "the alias");
        }
        let bad = Backoff::default().with_jitter(Jitter::Ratio(f64::NAN));
        assert_eq!(field(RetryPolicy::builder().backoff(bad)), "jitter");
        assert!(RetryPolicy::builder().max_attempts(MAX_ATTEMPTS_LIMIT).build().is_ok());
    }

    #[test]
    fn to_builder_round_trips() {
        let p = RetryPolicy::builder()
            .name("op")
            .max_attempts(5)
            .deadline(Duration::from_secs(9))
            .honor_retry_after(false)
            .seed(4)
            .build()
            .unwrap();
        let q = p.to_builder().build().unwrap();
        assert_eq!(format!("{p:?}"), format!("{q:?}"));
        assert!(Arc::ptr_eq(p.clock(), q.clock()));
    }
}
