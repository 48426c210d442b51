//! Per-connector presets and [`ResilienceConfig`], the bundle of every layer.
//!
//! | preset | retry | circuit breaker | rate limit | max wait for a permit | timeout per attempt | deadline of the call | retry budget | limits per tenant |
//! |---|---|---|---|---|---|---|---|---|
//! | `database` | 3 attempts, 1 s initial, ×2, 60 s cap | 5 failures, 30 s recovery | 300/min, burst 50 | 5 s | 30 s | 60 s | per call site | no |
//! | `api` (HTTP) | 5 attempts, 2 s initial, ×2, 60 s cap | 10 failures, 60 s recovery | 60/min, burst 10 | 10 s | 30 s | 60 s | per call site | no |
//! | `file` (object store) | 4 attempts, 0.5 s initial, ×2, 60 s cap | 10 failures, 15 s recovery | 1000/min, burst 100 | 10 s | 60 s | 120 s | per call site | no |
//! | `postgres` | as `database` | as `database` | as `database` | as `database` | as `database` | as `database` | per call site | no |
//! | `shopify` | 5 attempts, 2 s initial, honours `Retry-After` | 3 failures, 60 s recovery, **per shop** | bucket of 40 refilling at 2/s, **per shop** | 30 s | 30 s | 60 s | per call site | per shop |
//! | `development` | 5 attempts, 0.5 s initial | 10 failures, 30 s recovery | 30/min, burst 5 | 5 s | 10 s | 30 s | none | no |
//!
//! **Limits per tenant.** Where a service sets its limits per tenant (Shopify's are per
//! shop: each shop has its own 40-request bucket, and one frozen or throttled shop says
//! nothing about the others), the preset says so ([`Preset::tenant`]) and the attributes
//! require a key with it: `#[resilient(preset = "shopify", key = shop)]` gives every shop
//! its own bucket *and* its own circuit ([`KeyedCircuitBreaker`](crate::KeyedCircuitBreaker)),
//! and `key = none` says explicitly that one bucket and one circuit serve every tenant.
//! Without either, the attribute does not compile.
//!
//! Every retry uses exponential backoff with full jitter. The **deadline** bounds the
//! whole call (every attempt, backoff sleep, permit wait, bulkhead wait, and each
//! attempt's timeout, cut to the time left); each preset's is at least its timeout and
//! its max wait, so a single slow attempt still fits.
//!
//! Presets for remote calls give each call site (each named instance: `module::fn`, or
//! the name a `Pipeline` or attribute is given) a [retry budget](crate::retry::RetryBudget)
//! of its own, named like it (10 % of recent calls, floor 10 retries per second), so a
//! failing dependency sees about 1.1× its normal load and spends only its own retries:
//! two call sites using `preset = "api"` against different services do not starve each
//! other. To bound retries across call sites together, name one budget for all of them:
//! `budget = "name"` in the attribute or the `[name.retry]` table, or
//! [`ResilienceConfig::with_retry_budget`] (see [`BudgetScope`]).
//! The rate limit waits for a permit (`OnLimit::Wait`), never longer than the preset's
//! max wait: a call whose permit is further away is refused at once with
//! [`Error::RateLimited`](crate::Error::RateLimited) and its `retry_after`, so under
//! overload calls fail fast instead of queueing without limit. Breakers close after 2
//! successful probes.
//!
//! What a breaker counts as a failure is the error type's to say: for one that implements
//! [`Classify`](crate::Classify), only transient errors (a 503, a reset connection); a
//! permanent error (400, 402, 403, 404: the service answered) counts as a success and a
//! throttled one (429, [`Error::RateLimited`](crate::Error::RateLimited)) as neither, so
//! a shop that throttles calls or refuses a payment does not trip the `shopify` breaker.
//! An error type without `Classify` has every error counted.
//!
//! Breakers trip on *consecutive* failures, counted per attempt. The `api` breaker needs
//! 10 (two whole calls of 5 failed attempts): with 3, a service failing 20 % of calls at
//! random gives three failures in a row on 0.8 % of calls, each trip then rejects a
//! minute of traffic, and only about 70 % of calls succeed; with 10, at least 99.5 % do
//! (see the `guarantee_success_under_failure` test).
//!
//! ```
//! use resilience::presets::{Preset, ResilienceConfig};
//!
//! let api = Preset::Api.config();
//! assert_eq!(api.retry.as_ref().map(|r| r.max_attempts()), Some(5));
//! assert_eq!(Preset::from_name("postgres"), Some(Preset::Postgres));
//!
//! // Your own bundle, registered under a name for `preset = "user:billing"` in attributes:
//! let billing = ResilienceConfig::new().with_timeout(std::time::Duration::from_secs(5));
//! resilience::registry().register_preset("billing", billing);
//! assert!(resilience::registry().preset("billing").is_some());
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::ConfigError;

/// The built-in names, shared with the attribute macros (one source file). The list and
/// the `user:` prefix serve the macros' call sites (feature `macros`).
#[path = "preset_names.rs"]
#[cfg_attr(not(feature = "macros"), allow(dead_code))]
pub(crate) mod names;
use crate::backoff::{Backoff, Jitter};
use crate::bulkhead::BulkheadConfig;
use crate::circuit::CircuitBreakerConfig;
use crate::rate_limit::{Rate, RateLimitConfig};
use crate::retry::RetryPolicy;

/// Every layer of a resilient call, each optional: retry, circuit breaker, rate limit,
/// bulkhead and a per-attempt timeout, and the deadline of the whole call (held by the
/// retry policy, see [`with_deadline`](Self::with_deadline)).
///
/// Layers run in a fixed order, outermost first: retry, hedge, circuit breaker, rate
/// limit, bulkhead, timeout (per attempt). See [`Pipeline`](crate::Pipeline).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ResilienceConfig {
    /// Retry policy.
    pub retry: Option<RetryPolicy>,
    /// Circuit breaker settings.
    pub circuit_breaker: Option<CircuitBreakerConfig>,
    /// Rate limit settings.
    pub rate_limit: Option<RateLimitConfig>,
    /// Time limit of one attempt.
    pub timeout: Option<Duration>,
    /// Concurrency limit.
    pub bulkhead: Option<BulkheadConfig>,
    /// Hedged requests (async calls only; see [`hedge`](mod@crate::hedge)).
    pub hedge: Option<crate::hedge::HedgeConfig>,
    /// The retry budget the retry policy draws on when the policy has none of its own:
    /// the named instance's own ([`BudgetScope::Instance`], what presets set) or one
    /// shared by name ([`BudgetScope::Shared`]). The registry that builds a call site
    /// from this bundle binds it ([`Pipeline::from_config`](crate::Pipeline::from_config),
    /// the attributes, [`Registry::configure`](crate::registry::Registry::configure)).
    pub retry_budget: Option<BudgetScope>,
}

/// Which [retry budget](crate::retry::RetryBudget) the retry policy of a
/// [`ResilienceConfig`] draws on.
///
/// A budget is shared by every call that draws on it: with [`Instance`](Self::Instance),
/// each named instance (each attribute call site, each `Pipeline::from_config(name, ..)`)
/// has its own, so one failing dependency spends only its own retries; with
/// [`Shared`](Self::Shared), every call site naming the budget draws on one, so retries
/// across them stay bounded together.
///
/// ```
/// use resilience::presets::{BudgetScope, Preset};
///
/// assert_eq!(Preset::Api.config().retry_budget, Some(BudgetScope::Instance));
/// let shared = Preset::Api.config().with_retry_budget("all-apis");
/// assert_eq!(shared.retry_budget, Some(BudgetScope::Shared("all-apis".into())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BudgetScope {
    /// The named instance's own budget, called like the instance (`orders::fetch`).
    Instance,
    /// The registry's budget of this name, shared by every call site that names it.
    Shared(Arc<str>),
}

impl ResilienceConfig {
    /// A bundle with no layer.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// With this retry policy.
        pub fn with_retry(retry: RetryPolicy) => self.retry = Some(retry);

        /// With this circuit breaker.
        pub fn with_circuit_breaker(config: CircuitBreakerConfig) => self.circuit_breaker = Some(config);

        /// With this rate limit.
        pub fn with_rate_limit(config: RateLimitConfig) => self.rate_limit = Some(config);

        /// With this per-attempt timeout.
        pub fn with_timeout(limit: Duration) => self.timeout = Some(limit);

        /// With this bulkhead.
        pub fn with_bulkhead(config: BulkheadConfig) => self.bulkhead = Some(config);

        /// With hedged requests (async calls only).
        pub fn with_hedge(config: crate::hedge::HedgeConfig) => self.hedge = Some(config);

        /// With the retry policy drawing on the registry's retry budget `name`, shared by
        /// every call site built from a bundle naming it.
        pub fn with_retry_budget(name: impl Into<Arc<str>>) => self.retry_budget = Some(BudgetScope::Shared(name.into()));
    }

    /// With a deadline for the whole call (every attempt, backoff sleep and wait; see
    /// [`RetryPolicy`]): the retry policy's
    /// [`deadline`](crate::retry::RetryPolicyBuilder::deadline), or without one, a retry
    /// policy of a single attempt within it. A zero deadline is refused.
    ///
    /// ```
    /// use resilience::presets::{Preset, ResilienceConfig};
    /// use std::time::Duration;
    ///
    /// let api = Preset::Api.config().with_deadline(Duration::from_secs(10))?;
    /// assert_eq!(api.deadline(), Some(Duration::from_secs(10)));
    /// let one = ResilienceConfig::new().with_deadline(Duration::from_secs(2))?;
    /// assert_eq!(one.retry.map(|r| r.max_attempts()), Some(1));
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn with_deadline(mut self, limit: Duration) -> Result<Self, ConfigError> {
        let retry = match self.retry.take() {
            Some(retry) => retry.to_builder(),
            None => RetryPolicy::builder().max_attempts(1),
        };
        self.retry = Some(retry.deadline(limit).build()?);
        Ok(self)
    }

    /// The deadline of the whole call: the retry policy's, if any.
    pub fn deadline(&self) -> Option<Duration> {
        self.retry.as_ref().and_then(RetryPolicy::deadline)
    }

    /// With the retry policy drawing on a budget of each named instance's own (what the
    /// presets set).
    pub fn with_instance_budget(mut self) -> Self {
        self.retry_budget = Some(BudgetScope::Instance);
        self
    }
}

/// The built-in presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Preset {
    /// SQL databases.
    Database,
    /// HTTP APIs.
    Api,
    /// File and object stores.
    File,
    /// PostgreSQL (the `database` values).
    Postgres,
    /// Shopify's Admin API: 40-request bucket at 2/s, `Retry-After` honoured; limits
    /// are per shop ([`tenant`](Preset::tenant)), so it is used keyed by shop. That is
    /// the REST call limit (re-sync with
    /// [`sync_from_headers`](crate::RateLimiter::sync_from_headers) from
    /// `X-Shopify-Shop-Api-Call-Limit`); the Admin GraphQL API limits by query cost
    /// instead: take each query's requested cost from a cost-point limiter and re-sync it
    /// with [`sync_from_query_cost`](crate::RateLimiter::sync_from_query_cost) (see
    /// [`rate_limit::graphql`](crate::rate_limit::graphql)).
    Shopify,
    /// Local development: fast retries, generous breaker.
    Development,
}

impl Preset {
    /// Every built-in preset.
    pub const ALL: [Preset; 6] = [
        Preset::Database,
        Preset::Api,
        Preset::File,
        Preset::Postgres,
        Preset::Shopify,
        Preset::Development,
    ];

    /// The preset's name as written in attributes and config files.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Database => names::DATABASE,
            Preset::Api => names::API,
            Preset::File => names::FILE,
            Preset::Postgres => names::POSTGRES,
            Preset::Shopify => names::SHOPIFY,
            Preset::Development => names::DEVELOPMENT,
        }
    }

    /// What the service sets its limits per, when it sets them per tenant: `Some("shop")`
    /// for [`Shopify`](Preset::Shopify) (each shop has its own bucket, and one shop's
    /// errors say nothing about another's), `None` for a preset whose limits are the
    /// service's as a whole. A preset with a tenant is used keyed: one rate-limit bucket
    /// and one circuit per tenant.
    ///
    /// ```
    /// use resilience::Preset;
    ///
    /// assert_eq!(Preset::Shopify.tenant(), Some("shop"));
    /// assert_eq!(Preset::Api.tenant(), None);
    /// ```
    pub fn tenant(self) -> Option<&'static str> {
        let name = self.name();
        names::PER_TENANT.iter().find(|(preset, _)| *preset == name).map(|(_, tenant)| *tenant)
    }

    /// The preset called `name`, if it is built in.
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The preset's layers.
    pub fn config(self) -> ResilienceConfig {
        // The values are constants that satisfy every builder check; `built` keeps the
        // code free of panics all the same.
        built(self).unwrap_or_default()
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

struct Values {
    attempts: u32,
    initial: Duration,
    budget: bool,
    failures: u32,
    recovery: Duration,
    rate: Rate,
    burst: u32,
    max_wait: Duration,
    timeout: Duration,
    deadline: Duration,
}

fn values(p: Preset) -> Values {
    let ms = Duration::from_millis;
    let s = Duration::from_secs;
    match p {
        Preset::Database | Preset::Postgres => Values {
            attempts: 3,
            initial: s(1),
            budget: true,
            failures: 5,
            recovery: s(30),
            rate: Rate::per_minute(300),
            burst: 50,
            max_wait: s(5),
            timeout: s(30),
            deadline: s(60),
        },
        Preset::Api => Values {
            attempts: 5,
            initial: s(2),
            budget: true,
            // Two calls' worth of failed attempts: random failures at 20 % do not trip it.
            failures: 10,
            recovery: s(60),
            rate: Rate::per_minute(60),
            burst: 10,
            max_wait: s(10),
            timeout: s(30),
            deadline: s(60),
        },
        Preset::File => Values {
            attempts: 4,
            initial: ms(500),
            budget: true,
            failures: 10,
            recovery: s(15),
            rate: Rate::per_minute(1000),
            burst: 100,
            max_wait: s(10),
            timeout: s(60),
            deadline: s(120),
        },
        Preset::Shopify => Values {
            attempts: 5,
            initial: s(2),
            budget: true,
            failures: 3,
            recovery: s(60),
            rate: Rate::per_second(2),
            burst: 40,
            max_wait: s(30),
            timeout: s(30),
            deadline: s(60),
        },
        Preset::Development => Values {
            attempts: 5,
            initial: ms(500),
            budget: false,
            failures: 10,
            recovery: s(30),
            rate: Rate::per_minute(30),
            burst: 5,
            max_wait: s(5),
            timeout: s(10),
            deadline: s(30),
        },
    }
}

fn built(p: Preset) -> Result<ResilienceConfig, ConfigError> {
    let v = values(p);
    let backoff = Backoff::exponential(v.initial)
        .with_max_delay(Duration::from_secs(60))
        .with_jitter(Jitter::Full);
    let retry = RetryPolicy::builder()
        .max_attempts(v.attempts)
        .backoff(backoff)
        .deadline(v.deadline)
        .name(p.name());
    let breaker = CircuitBreakerConfig::builder()
        .failure_threshold(v.failures)
        .recovery_timeout(v.recovery)
        .success_threshold(2)
        .build()?;
    let limit =
        RateLimitConfig::builder().rate(v.rate).burst(v.burst).max_wait(v.max_wait).build()?;
    let config = ResilienceConfig::new()
        .with_retry(retry.build()?)
        .with_circuit_breaker(breaker)
        .with_rate_limit(limit)
        .with_timeout(v.timeout);
    Ok(if v.budget { config.with_instance_budget() } else { config })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_builds_with_every_layer() {
        for p in Preset::ALL {
            let c = built(p).unwrap_or_else(|e| panic!("preset {p} does not build: {e}"));
            assert!(c.retry.is_some() && c.circuit_breaker.is_some() && c.rate_limit.is_some());
            assert!(c.timeout.is_some());
            assert_eq!(Preset::from_name(p.name()), Some(p));
        }
    }

    #[test]
    fn the_macros_check_presets_against_the_same_names() {
        let all: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(all, names::BUILT_IN);
    }

    #[test]
    fn preset_values_match_the_table() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // (preset, attempts, initial, budget, failures, recovery, rate, burst, max wait,
        // deadline)
        let table = [
            (Preset::Database, 3, s(1), true, 5, s(30), Rate::per_minute(300), 50, s(5), s(60)),
            (Preset::Api, 5, s(2), true, 10, s(60), Rate::per_minute(60), 10, s(10), s(60)),
            (Preset::File, 4, ms(500), true, 10, s(15), Rate::per_minute(1000), 100, s(10), s(120)),
            (Preset::Postgres, 3, s(1), true, 5, s(30), Rate::per_minute(300), 50, s(5), s(60)),
            (Preset::Shopify, 5, s(2), true, 3, s(60), Rate::per_second(2), 40, s(30), s(60)),
            (
                Preset::Development,
                5,
                ms(500),
                false,
                10,
                s(30),
                Rate::per_minute(30),
                5,
                s(5),
                s(30),
            ),
        ];
        for (p, attempts, initial, budget, failures, recovery, rate, burst, max_wait, deadline) in
            table
        {
            let c = p.config();
            let retry = c.retry.as_ref().unwrap_or_else(|| panic!("{p}: no retry"));
            assert_eq!(retry.max_attempts(), attempts, "{p}");
            assert_eq!(retry.backoff().initial(), initial, "{p}");
            assert_eq!(retry.backoff().multiplier(), 2.0, "{p}");
            assert_eq!(retry.backoff().max_delay(), s(60), "{p}");
            assert_eq!(retry.backoff().jitter(), Jitter::Full, "{p}: jitter is on");
            assert_eq!(c.retry_budget, budget.then_some(BudgetScope::Instance), "{p}");
            let registry = crate::registry::Registry::new();
            let unbound = registry.preset(p.name()).and_then(|c| c.retry);
            assert!(unbound.is_some_and(|r| r.budget().is_none()), "{p}: bound per call site");
            let bound = registry.bind_budget(c.clone(), "app::site").retry;
            let bound = bound.and_then(|r| r.budget().map(|b| b.name().to_owned()));
            assert_eq!(bound.as_deref(), budget.then_some("app::site"), "{p}: the site's own");
            assert!(retry.honors_retry_after(), "{p}");
            let cb = c.circuit_breaker.as_ref().unwrap_or_else(|| panic!("{p}: no breaker"));
            assert_eq!(cb.failure_threshold(), Some(failures), "{p}");
            assert_eq!(cb.recovery_timeout(), recovery, "{p}");
            assert_eq!(cb.success_threshold(), 2, "{p}");
            let rl = c.rate_limit.as_ref().unwrap_or_else(|| panic!("{p}: no rate limit"));
            assert_eq!((rl.rate(), rl.burst()), (rate, burst), "{p}");
            assert_eq!(rl.max_wait(), max_wait, "{p}: the wait for a permit is bounded");
            assert_eq!(retry.deadline(), Some(deadline), "{p}: the call is bounded");
            let timeout = c.timeout.unwrap_or_else(|| panic!("{p}: no timeout"));
            assert!(timeout <= deadline && max_wait <= deadline, "{p}: fits in the deadline");
        }
        assert_eq!(Preset::Postgres.config().timeout, Preset::Database.config().timeout);
    }
}
