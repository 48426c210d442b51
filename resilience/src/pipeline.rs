//! [`Pipeline`]: every layer around one operation, in the fixed order.
//!
//! Outermost first: **fallback → retry → hedge → circuit breaker → rate limit → bulkhead →
//! timeout** (the timeout applies to each attempt; the hedge, async only, starts extra
//! attempts of a slow one, each through the layers inside it: see
//! [`hedge`](mod@crate::hedge); the fallback, when there is one ([`Pipeline::fallback`]),
//! answers the final error only). So each attempt passes the breaker and takes a permit, a
//! retried attempt counts once in the breaker's window, an open circuit is not retried,
//! and a `RateLimited` rejection is retried after its suggested wait. This is the
//! hand-written equivalent of `#[resilient(...)]`. A deadline
//! ([`with_deadline`](Pipeline::with_deadline), or the retry policy's) bounds the whole
//! call: no layer waits past it, and each attempt's timeout is cut to the time left.
//!
//! Whether there is a timeout layer is part of the type: a blocking call cannot be cut
//! short where it runs, so only a [`Pipeline<Untimed>`](Untimed) has the in-place
//! blocking driver [`call`](Pipeline::call). A [`Pipeline<Timed>`](Timed) (every preset
//! sets a timeout) runs blocking attempts on a worker thread with
//! [`call_blocking`](Pipeline::call_blocking); [`call_async`](Pipeline::call_async) works
//! for both.
//!
//! [`layer`] has each layer as a function around one attempt, for another order or a
//! layer a `Pipeline` does not hold (a keyed circuit breaker, a keyed rate limit); the
//! attribute macros expand to
//! these functions.
//!
//! Errors are classified as the attributes classify them: `call`, `call_blocking` and
//! `call_async` take an error type that implements [`Classify`] and [`RetryAfter`],
//! retry only its transient (and throttled) errors and honour its server hints, and the
//! circuit breaker counts only its transient errors as failures ([`ByClass`]: a permanent
//! error is the service answering, a throttled one counts as neither). The `*_with`
//! drivers take any error type and the [`RetryHooks`] to decide with
//! ([`DefaultHooks`] retries every error); their breaker counts every error as a failure.
//!
//! ```
//! use resilience::{Classify, Error, ErrorClass, Pipeline, RetryAfter, presets::Preset};
//! use std::time::Duration;
//!
//! #[derive(Debug)]
//! enum AppError { Flaky, NotFound, Resilience(Error) }
//! impl From<Error> for AppError {
//!     fn from(e: Error) -> Self { AppError::Resilience(e) }
//! }
//! impl Classify for AppError {
//!     fn class(&self) -> ErrorClass {
//!         match self {
//!             AppError::Flaky => ErrorClass::Transient,
//!             AppError::NotFound => ErrorClass::Permanent,
//!             AppError::Resilience(e) => e.class(),
//!         }
//!     }
//! }
//! impl RetryAfter for AppError {
//!     fn retry_after(&self) -> Option<Duration> {
//!         match self {
//!             AppError::Resilience(e) => e.retry_after(),
//!             _ => None,
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pipeline = Pipeline::from_config("docs-pipeline", &Preset::Development.config())?;
//! let mut calls = 0;
//! let value = pipeline
//!     .call_async(|| {
//!         calls += 1;
//!         let n = calls;
//!         async move { if n < 3 { Err(AppError::Flaky) } else { Ok(n) } }
//!     })
//!     .await;
//! assert_eq!(value.ok(), Some(3), "transient: retried");
//!
//! let mut calls = 0;
//! let missing: Result<(), AppError> = pipeline
//!     .call_async(|| {
//!         calls += 1;
//!         async { Err(AppError::NotFound) }
//!     })
//!     .await;
//! assert!(matches!(missing, Err(AppError::NotFound)));
//! assert_eq!(calls, 1, "permanent: tried once");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::bulkhead::Bulkhead;
use crate::circuit::{
    AdaptiveThrottle, AllErrors, ByClass, Circuit, CircuitBreaker, FailureIfOk, ResultClassifier,
};
use crate::fallback::{FallbackOn, decide_named};
use crate::hedge::Hedge;
use crate::presets::ResilienceConfig;
use crate::rate_limit::RateLimiter;
#[cfg(doc)]
use crate::retry::DefaultHooks;
use crate::retry::{Classified, RetryHooks, RetryPolicy};
use crate::{Classify, ConfigError, Error, Fault, RetryAfter, registry};

/// Marks a [`Pipeline`] without a timeout layer: the blocking driver
/// [`call`](Pipeline::call) runs each attempt in place, on the calling thread, and the
/// operation may borrow from the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Untimed;

/// Marks a [`Pipeline`] with a per-attempt timeout layer: the blocking driver is
/// [`call_blocking`](Pipeline::call_blocking), which runs each attempt on a worker thread
/// so that the deadline can end it, and [`call_async`](Pipeline::call_async) works as for
/// any pipeline.
///
/// A pipeline built by [`Pipeline::from_config`] is `Timed` whether or not the config
/// sets a timeout (presets all do); without one, `call_blocking` runs attempts on the
/// calling thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timed;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Untimed {}
    impl Sealed for super::Timed {}
}

/// The pipelines whose blocking attempts can run in place: those without a timeout
/// layer ([`Untimed`]). A blocking call cannot be cut short where it runs, so a timed
/// pipeline runs blocking attempts with [`Pipeline::call_blocking`] instead. Sealed.
#[diagnostic::on_unimplemented(
    message = "a pipeline with a timeout cannot run a blocking operation in place",
    label = "this pipeline has a timeout layer (`Pipeline<Timed>`)",
    note = "a blocking call cannot be cut short where it runs: use `call_blocking`, which runs each attempt on a worker thread, or `call_async`",
    note = "or drop the timeout layer with `.without_timeout()` to call in place"
)]
pub trait InPlace: sealed::Sealed {}

impl InPlace for Untimed {}

/// Retry, circuit breaker, rate limiter, bulkhead and timeout around one operation.
///
/// The type parameter says whether there is a timeout layer: [`Untimed`] (the default,
/// so `Pipeline` alone names it) or [`Timed`]. [`with_timeout`](Self::with_timeout) and
/// [`from_config`](Self::from_config) make a `Pipeline<Timed>`,
/// [`without_timeout`](Self::without_timeout) a `Pipeline<Untimed>`.
///
/// | driver | `Pipeline<Untimed>` | `Pipeline<Timed>` |
/// |---|---|---|
/// | [`call`](Self::call): blocking, in place, `op` may borrow | yes | no (compile error) |
/// | [`call_blocking`](Self::call_blocking): blocking, attempts on a worker | yes | yes |
/// | [`call_async`](Self::call_async) | yes | yes |
///
/// ```
/// use resilience::{Error, Pipeline, Preset};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), resilience::ConfigError> {
/// let api = Pipeline::from_config("docs-both-drivers", &Preset::Api.config())?;
/// // Blocking code: each attempt runs on a worker thread, cut short at the deadline.
/// let sync: Result<u32, Error> = api.call_blocking(|| Ok(1));
/// assert_eq!(sync, Ok(1));
/// // Async code: the attempt's future is dropped at the deadline.
/// let r: Result<u32, Error> = api.call_async(|| async { Ok(2) }).await;
/// assert_eq!(r, Ok(2));
/// // In place, borrowing from the caller: only without the timeout layer.
/// let mut seen = Vec::new();
/// let r: Result<(), Error> = api.clone().without_timeout().call(|| {
///     seen.push(3);
///     Ok(())
/// });
/// assert_eq!((r, seen), (Ok(()), vec![3]));
/// # Ok(())
/// # }
/// ```
pub struct Pipeline<L = Untimed> {
    retry: Option<RetryPolicy>,
    breaker: Option<Arc<CircuitBreaker>>,
    /// The circuit in mode `adaptive_throttle`, in the breaker's place.
    throttle: Option<Arc<AdaptiveThrottle>>,
    limiter: Option<Arc<RateLimiter>>,
    bulkhead: Option<Arc<Bulkhead>>,
    hedge: Option<Arc<Hedge>>,
    /// Always `None` in a `Pipeline<Untimed>`.
    timeout: Option<Duration>,
    /// Set with `with_deadline`: kept across a later `with_retry`.
    deadline: Option<Duration>,
    cost: u32,
    /// The name its fallback reports under ([`named`](Pipeline::named)).
    name: Option<Arc<str>>,
    layer: PhantomData<L>,
}

impl<L> Clone for Pipeline<L> {
    fn clone(&self) -> Self {
        Pipeline {
            retry: self.retry.clone(),
            breaker: self.breaker.clone(),
            throttle: self.throttle.clone(),
            limiter: self.limiter.clone(),
            bulkhead: self.bulkhead.clone(),
            hedge: self.hedge.clone(),
            timeout: self.timeout,
            deadline: self.deadline,
            cost: self.cost,
            name: self.name.clone(),
            layer: PhantomData,
        }
    }
}

impl Default for Pipeline<Untimed> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L> fmt::Debug for Pipeline<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("retry", &self.retry.as_ref().map(|r| r.max_attempts()))
            .field("circuit_breaker", &self.breaker.as_ref().map(|b| b.name().clone()))
            .field("adaptive_throttle", &self.throttle.as_ref().map(|t| t.name().to_owned()))
            .field("rate_limiter", &self.limiter.as_ref().map(|l| l.name().clone()))
            .field("bulkhead", &self.bulkhead.as_ref().map(|b| b.name().clone()))
            .field("hedge", &self.hedge.as_ref().map(|h| h.name().clone()))
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline())
            .field("name", &self.name)
            .finish()
    }
}

impl Pipeline<Untimed> {
    /// A pipeline with no layer; add them with the `with_*` methods.
    pub fn new() -> Self {
        Pipeline {
            retry: None,
            breaker: None,
            throttle: None,
            limiter: None,
            bulkhead: None,
            hedge: None,
            timeout: None,
            deadline: None,
            cost: 1,
            name: None,
            layer: PhantomData,
        }
    }
}

impl Pipeline<Timed> {
    /// Every layer of `config`, with the named instances (circuit, limiter, bulkhead called
    /// `name`) taken from the global [`registry()`].
    ///
    /// The pipeline is [`Timed`] whatever the config says, so one type serves every
    /// config: run it with [`call_blocking`](Self::call_blocking) or
    /// [`call_async`](Self::call_async).
    pub fn from_config(name: &str, config: &ResilienceConfig) -> Result<Self, ConfigError> {
        let reg = registry();
        let config = &reg.bind_budget(config.clone(), name);
        let mut p = Pipeline::new().named(name).retype::<Timed>();
        if let Some(r) = &config.retry {
            p.retry = Some(reg.resolve_retry(name, || Ok(r.clone()))?);
        }
        if let Some(c) = &config.circuit_breaker {
            match reg.resolve_circuit(name, || Ok(c.clone()))? {
                Circuit::Breaker(b) => p.breaker = Some(b),
                Circuit::Throttle(t) => p.throttle = Some(t),
            }
        }
        if let Some(c) = &config.rate_limit {
            p.limiter = Some(reg.rate_limiters().resolve(name, || Ok(c.clone()))?);
        }
        if let Some(c) = &config.bulkhead {
            p.bulkhead = Some(reg.bulkheads().resolve(name, || Ok(c.clone()))?);
        }
        if let Some(c) = &config.hedge {
            p.hedge = Some(reg.hedges().resolve(name, || Ok(c.clone()))?);
        }
        p.timeout = config.timeout;
        Ok(p)
    }

    /// This pipeline without its timeout layer, for blocking code that must run in place
    /// (it borrows from the caller, or is not `Send`).
    pub fn without_timeout(self) -> Pipeline<Untimed> {
        let mut p = self.retype::<Untimed>();
        p.timeout = None;
        p
    }
}

impl<L> Pipeline<L> {
    fn retype<M>(self) -> Pipeline<M> {
        Pipeline {
            retry: self.retry,
            breaker: self.breaker,
            throttle: self.throttle,
            limiter: self.limiter,
            bulkhead: self.bulkhead,
            hedge: self.hedge,
            timeout: self.timeout,
            deadline: self.deadline,
            cost: self.cost,
            name: self.name,
            layer: PhantomData,
        }
    }

    /// With a name, which its [`fallback`](Self::fallback) reports its answers under
    /// ([`EventKind::FallbackUsed`](crate::events::EventKind::FallbackUsed) and the
    /// metric `resilience_fallback_used_total`). [`from_config`](Pipeline::from_config)
    /// names the pipeline after its instances; a pipeline without a name reports nothing.
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The name set with [`named`](Self::named) or [`from_config`](Pipeline::from_config).
    pub fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    /// With this retry policy (outermost). A deadline set with
    /// [`with_deadline`](Self::with_deadline) replaces the policy's.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        let policy = match self.deadline {
            // The deadline was validated by `with_deadline`.
            Some(limit) => policy.to_builder().deadline(limit).build().unwrap_or(policy),
            None => policy,
        };
        self.retry = Some(policy);
        self
    }

    /// With a deadline for the whole call: every attempt, backoff sleep, rate-limit and
    /// bulkhead wait, and each attempt's timeout (cut to the time left) end by it. A wait
    /// that would end past it is refused at once, and the retry never starts a sleep that
    /// would end past it (see [`RetryPolicy`]). It is the retry policy's
    /// [`deadline`](crate::retry::RetryPolicyBuilder::deadline); without a retry policy,
    /// the pipeline gets one of a single attempt. A zero deadline is refused.
    ///
    /// ```
    /// use resilience::{Error, Pipeline};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), resilience::ConfigError> {
    /// let pipeline = Pipeline::new()
    ///     .with_timeout(Duration::from_secs(30))
    ///     .with_deadline(Duration::from_secs(2))?;
    /// // The 30 s timeout of the attempt is cut to the 2 s left.
    /// let start = tokio::time::Instant::now();
    /// let r: Result<(), Error> = pipeline
    ///     .call_async(|| async {
    ///         tokio::time::sleep(Duration::from_secs(60)).await;
    ///         Ok(())
    ///     })
    ///     .await;
    /// assert!(matches!(r, Err(Error::Timeout { .. })));
    /// assert_eq!(start.elapsed(), Duration::from_secs(2));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_deadline(mut self, limit: Duration) -> Result<Self, ConfigError> {
        let policy = match self.retry.take() {
            Some(policy) => policy.to_builder(),
            None => RetryPolicy::builder().max_attempts(1),
        };
        self.retry = Some(policy.deadline(limit).build()?);
        self.deadline = Some(limit);
        Ok(self)
    }

    /// The deadline of the whole call, if any (the retry policy's).
    pub fn deadline(&self) -> Option<Duration> {
        self.retry.as_ref().and_then(RetryPolicy::deadline)
    }

    /// With this circuit breaker (in place of an adaptive throttle, if any).
    pub fn with_circuit_breaker(mut self, breaker: Arc<CircuitBreaker>) -> Self {
        self.breaker = Some(breaker);
        self.throttle = None;
        self
    }

    /// With this adaptive throttle in the circuit breaker's place (mode
    /// `adaptive_throttle`).
    ///
    /// ```
    /// use resilience::circuit::{AdaptiveThrottle, ThrottleConfig};
    /// use resilience::{Error, Pipeline};
    /// use std::sync::Arc;
    ///
    /// let throttle = Arc::new(AdaptiveThrottle::new("docs-pipeline-throttle", ThrottleConfig::default()));
    /// let pipeline = Pipeline::new().with_adaptive_throttle(throttle.clone());
    /// let r: Result<u32, Error> = pipeline.call(|| Ok(1));
    /// assert_eq!(r, Ok(1));
    /// assert_eq!(throttle.stats().accepts, 1);
    /// ```
    pub fn with_adaptive_throttle(mut self, throttle: Arc<AdaptiveThrottle>) -> Self {
        self.throttle = Some(throttle);
        self.breaker = None;
        self
    }

    /// With this rate limiter; each attempt takes `cost` permits (see [`with_cost`](Self::with_cost)).
    pub fn with_rate_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Permits each attempt takes from the rate limiter (default 1).
    pub fn with_cost(mut self, cost: u32) -> Self {
        self.cost = cost;
        self
    }

    /// With this bulkhead.
    pub fn with_bulkhead(mut self, bulkhead: Arc<Bulkhead>) -> Self {
        self.bulkhead = Some(bulkhead);
        self
    }

    /// With hedged requests for the async drivers: an attempt still running after the
    /// hedge's delay gets a concurrent twin, each through the circuit breaker, rate limit,
    /// bulkhead and timeout, and the first success is kept (see [`hedge`](mod@crate::hedge)).
    /// The blocking drivers cannot run attempts side by side and do not hedge.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use resilience::hedge::{Hedge, HedgeConfig, HedgeDelay};
    /// use resilience::{Error, Pipeline};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), resilience::ConfigError> {
    /// let budget = resilience::retry::RetryBudgetConfig::builder().min_retries_per_sec(10).build()?;
    /// let config = HedgeConfig::builder()
    ///     .delay(HedgeDelay::Fixed(Duration::from_millis(50)))
    ///     .budget(budget)
    ///     .build()?;
    /// let hedge = Arc::new(Hedge::new("docs-pipeline-hedge", config));
    /// let pipeline = Pipeline::new().with_hedge(hedge.clone()).with_timeout(Duration::from_secs(1));
    /// let mut attempts = 0;
    /// let r: Result<u32, Error> = pipeline
    ///     .call_async(|| {
    ///         attempts += 1;
    ///         let n = attempts;
    ///         async move {
    ///             // The first attempt hangs (its timeout would end it at 1 s).
    ///             let took = if n == 1 { 10_000 } else { 10 };
    ///             tokio::time::sleep(Duration::from_millis(took)).await;
    ///             Ok(n)
    ///         }
    ///     })
    ///     .await;
    /// assert_eq!(r, Ok(2));
    /// assert_eq!(hedge.stats().hedges_won, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_hedge(mut self, hedge: Arc<Hedge>) -> Self {
        self.hedge = Some(hedge);
        self
    }

    /// The hedge, if any.
    pub fn hedge(&self) -> Option<&Arc<Hedge>> {
        self.hedge.as_ref()
    }

    /// With a time limit on each attempt (innermost). The pipeline becomes [`Timed`]:
    /// blocking code runs through [`call_blocking`](Self::call_blocking).
    pub fn with_timeout(self, limit: Duration) -> Pipeline<Timed> {
        let mut p = self.retype::<Timed>();
        p.timeout = Some(limit);
        p
    }

    /// The circuit breaker, if any.
    pub fn circuit_breaker(&self) -> Option<&Arc<CircuitBreaker>> {
        self.breaker.as_ref()
    }

    /// The adaptive throttle in the circuit breaker's place, if any.
    pub fn adaptive_throttle(&self) -> Option<&Arc<AdaptiveThrottle>> {
        self.throttle.as_ref()
    }

    /// The rate limiter, if any.
    pub fn rate_limiter(&self) -> Option<&Arc<RateLimiter>> {
        self.limiter.as_ref()
    }

    /// The per-attempt time limit, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// This pipeline's drivers with a circuit breaker that also counts the `Ok` values
    /// `failure_if_ok` matches as failures, like resilience4j's `recordResult` (and
    /// `#[resilient(circuit_breaker(failure_if_ok = ..))]`). The caller still gets the
    /// value, and the retry layer does not look at it; errors count as with
    /// [`call`](Self::call).
    ///
    /// ```
    /// use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
    /// use resilience::{Error, Pipeline};
    /// use std::sync::Arc;
    ///
    /// let config = CircuitBreakerConfig::builder().failure_threshold(2).build()?;
    /// let breaker = Arc::new(CircuitBreaker::new("docs-pipeline-failure-if-ok", config));
    /// let pipeline = Pipeline::new().with_circuit_breaker(breaker.clone());
    /// let empty_pages = pipeline.failure_if_ok(|page: &Vec<u32>| page.is_empty());
    /// for _ in 0..2 {
    ///     let page: Result<Vec<u32>, Error> = empty_pages.call(|| Ok(Vec::new()));
    ///     assert_eq!(page, Ok(vec![]));
    /// }
    /// assert_eq!(breaker.state(), CircuitState::Open);
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn failure_if_ok<P>(&self, failure_if_ok: P) -> FailureIfOkCalls<'_, L, P> {
        FailureIfOkCalls { pipeline: self, failure_if_ok }
    }

    /// This pipeline's drivers with a fallback around them (the outermost layer, see
    /// [`fallback`](mod@crate::fallback)): when the call's final error is one `on` answers
    /// ([`Rejections`](crate::fallback::Rejections),
    /// [`AnyError`](crate::fallback::AnyError) or a closure `Fn(&E) -> bool`), the caller
    /// gets `handler`'s answer to it instead. The retry and the circuit breaker still see
    /// what the operation did: only the caller sees the fallback's answer.
    ///
    /// ```
    /// use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig};
    /// use resilience::fallback::Rejections;
    /// use resilience::{Error, Pipeline};
    /// use std::sync::Arc;
    ///
    /// let config = CircuitBreakerConfig::builder().failure_threshold(1).build()?;
    /// let breaker = Arc::new(CircuitBreaker::new("docs-pipeline-fallback", config));
    /// let pipeline = Pipeline::new().with_circuit_breaker(breaker);
    /// let cached = pipeline.fallback(Rejections, |_: Error| Ok("cached"));
    /// // The failure itself reaches the caller and opens the circuit ...
    /// let first: Result<&str, Error> = cached.call(|| Err(Error::timeout(std::time::Duration::from_secs(1))));
    /// assert!(first.is_err());
    /// // ... whose rejections the fallback answers.
    /// assert_eq!(cached.call(|| Ok("fresh")), Ok("cached"));
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn fallback<O, H>(&self, on: O, handler: H) -> FallbackCalls<'_, L, O, H> {
        FallbackCalls { pipeline: self, on, handler }
    }

    // ----- blocking ------------------------------------------------------------------

    /// Run `op` through every layer on the calling thread, blocking it for waits and
    /// backoff. `op` may borrow from the caller.
    ///
    /// Only transient errors are retried, each after the wait its [`RetryAfter`] hint
    /// asks for, if any (the [`Classified`] hooks), as the attribute macros do for an
    /// error type that implements [`Classify`]. For an error type that does not, or to
    /// decide otherwise, use [`call_with`](Self::call_with): `call_with(&DefaultHooks, op)`
    /// retries every error.
    ///
    /// Only for a pipeline without a timeout layer ([`Untimed`]): a blocking call cannot
    /// be cut short where it runs. A [`Timed`] pipeline runs blocking code with
    /// [`call_blocking`](Self::call_blocking).
    pub fn call<T, E, F>(&self, op: F) -> Result<T, E>
    where
        L: InPlace,
        E: From<Error> + Classify + RetryAfter + fmt::Debug,
        F: FnMut() -> Result<T, E>,
    {
        let mut op = op;
        self.drive(&Classified, &ByClass, &mut || op().map_err(Fault::Inner))
    }

    /// [`call`](Self::call) with retry hooks (which errors to retry, server hints, ...),
    /// for any error type: [`DefaultHooks`] retries every error.
    pub fn call_with<T, E, H, F>(&self, hooks: &H, mut op: F) -> Result<T, E>
    where
        L: InPlace,
        E: From<Error> + fmt::Debug,
        H: RetryHooks<T, E>,
        F: FnMut() -> Result<T, E>,
    {
        self.drive(hooks, &AllErrors, &mut || op().map_err(Fault::Inner))
    }

    /// Run `op` through every layer, each attempt on a worker thread when there is a
    /// timeout, so that the timeout layer returns `Error::Timeout` at the deadline.
    ///
    /// As with [`timeout::call_blocking`](crate::timeout::call_blocking): a timed-out
    /// attempt keeps running on its thread until it returns, and its result is dropped.
    /// Hence `op` is cloned into each attempt and must be `Send + 'static`, and so must its
    /// result. Without a timeout layer, attempts run on the calling thread. Waits and
    /// backoff block the calling thread.
    ///
    /// Errors are classified as by [`call`](Self::call): only transient ones are retried,
    /// honouring their [`RetryAfter`] hint.
    pub fn call_blocking<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Classify + RetryAfter + fmt::Debug + Send + 'static,
        F: Fn() -> Result<T, E> + Clone + Send + 'static,
    {
        self.blocking(&Classified, &ByClass, op)
    }

    /// [`call_blocking`](Self::call_blocking) with retry hooks (they run on the calling
    /// thread), for any error type: [`DefaultHooks`] retries every error.
    pub fn call_blocking_with<T, E, H, F>(&self, hooks: &H, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + fmt::Debug + Send + 'static,
        H: RetryHooks<T, E>,
        F: Fn() -> Result<T, E> + Clone + Send + 'static,
    {
        self.blocking(hooks, &AllErrors, op)
    }

    fn blocking<T, E, H, C, F>(&self, hooks: &H, classifier: &C, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + fmt::Debug + Send + 'static,
        H: RetryHooks<T, E>,
        C: ResultClassifier<T, E>,
        F: Fn() -> Result<T, E> + Clone + Send + 'static,
    {
        self.blocking_fault(hooks, classifier, op).map_err(Fault::into_error)
    }

    fn blocking_fault<T, E, H, C, F>(&self, hooks: &H, classifier: &C, op: F) -> Result<T, Fault<E>>
    where
        T: Send + 'static,
        E: From<Error> + fmt::Debug + Send + 'static,
        H: RetryHooks<T, E>,
        C: ResultClassifier<T, E>,
        F: Fn() -> Result<T, E> + Clone + Send + 'static,
    {
        let limit = self.timeout;
        self.drive_fault(hooks, classifier, &mut || match limit {
            Some(limit) => {
                let op = op.clone();
                let limit = crate::deadline::cap(limit);
                crate::timeout::run_blocking(limit, move || op().map_err(Fault::Inner))
            }
            None => op().map_err(Fault::Inner),
        })
    }

    fn drive<T, E, H, C, F>(&self, hooks: &H, classifier: &C, op: &mut F) -> Result<T, E>
    where
        E: From<Error> + fmt::Debug,
        H: RetryHooks<T, E>,
        C: ResultClassifier<T, E>,
        F: FnMut() -> Result<T, Fault<E>>,
    {
        self.drive_fault(hooks, classifier, op).map_err(Fault::into_error)
    }

    /// Every layer but the fallback: the final result, a rejection still told apart.
    fn drive_fault<T, E, H, C, F>(
        &self,
        hooks: &H,
        classifier: &C,
        op: &mut F,
    ) -> Result<T, Fault<E>>
    where
        E: From<Error> + fmt::Debug,
        H: RetryHooks<T, E>,
        C: ResultClassifier<T, E>,
        F: FnMut() -> Result<T, Fault<E>>,
    {
        match &self.retry {
            Some(retry) => retry.run(hooks, || self.attempt(classifier, op)),
            None => self.attempt(classifier, op),
        }
    }

    fn attempt<T, E, C, F>(&self, classifier: &C, op: &mut F) -> Result<T, Fault<E>>
    where
        C: ResultClassifier<T, E>,
        F: FnMut() -> Result<T, Fault<E>>,
    {
        let limited = || {
            layer::rate_limit(self.limiter.as_deref(), self.cost, || {
                layer::bulkhead(self.bulkhead.as_deref(), op)
            })
        };
        match &self.throttle {
            Some(throttle) => throttle.run(classifier, limited),
            None => layer::circuit(self.breaker.as_deref(), classifier, limited),
        }
    }

    // ----- async ---------------------------------------------------------------------

    /// Run the future `op()` makes through every layer; each attempt calls `op` again.
    ///
    /// Errors are classified as by [`call`](Self::call): only transient ones are retried,
    /// honouring their [`RetryAfter`] hint.
    #[cfg(feature = "tokio")]
    pub async fn call_async<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        E: From<Error> + Classify + RetryAfter + fmt::Debug,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_async(&Classified, &ByClass, op).await
    }

    /// [`call_async`](Self::call_async) with retry hooks, for any error type:
    /// [`DefaultHooks`] retries every error.
    #[cfg(feature = "tokio")]
    pub async fn call_async_with<T, E, H, F, Fut>(&self, hooks: &H, op: F) -> Result<T, E>
    where
        E: From<Error> + fmt::Debug,
        H: RetryHooks<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_async(hooks, &AllErrors, op).await
    }

    #[cfg(feature = "tokio")]
    async fn run_async<T, E, H, C, F, Fut>(&self, hooks: &H, classifier: &C, op: F) -> Result<T, E>
    where
        E: From<Error> + fmt::Debug,
        H: RetryHooks<T, E>,
        C: ResultClassifier<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_async_fault(hooks, classifier, op).await.map_err(Fault::into_error)
    }

    /// Every layer but the fallback, async: the final result, a rejection still told apart.
    #[cfg(feature = "tokio")]
    async fn run_async_fault<T, E, H, C, F, Fut>(
        &self,
        hooks: &H,
        classifier: &C,
        op: F,
    ) -> Result<T, Fault<E>>
    where
        E: From<Error> + fmt::Debug,
        H: RetryHooks<T, E>,
        C: ResultClassifier<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // A shared cell lets every attempt call `op` without the retry closure lending out a
        // mutable borrow of it across an await.
        let op = parking_lot::Mutex::new(op);
        let make = || (op.lock())();
        match &self.retry {
            Some(retry) => retry.run_async(hooks, || self.attempt_async(classifier, &make)).await,
            None => self.attempt_async(classifier, &make).await,
        }
    }

    #[cfg(feature = "tokio")]
    async fn attempt_async<T, E, C, M, Fut>(&self, classifier: &C, make: &M) -> Result<T, Fault<E>>
    where
        C: ResultClassifier<T, E>,
        M: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        match &self.hedge {
            Some(hedge) => hedge.call_async(|| self.layered_async(classifier, make)).await,
            None => self.layered_async(classifier, make).await,
        }
    }

    /// One attempt through the layers inside the hedge.
    #[cfg(feature = "tokio")]
    async fn layered_async<T, E, C, M, Fut>(&self, classifier: &C, make: &M) -> Result<T, Fault<E>>
    where
        C: ResultClassifier<T, E>,
        M: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let attempt = async { make().await.map_err(Fault::Inner) };
        let limited = layer::rate_limit_async(
            self.limiter.as_deref(),
            self.cost,
            layer::bulkhead_async(
                self.bulkhead.as_deref(),
                layer::timeout_async(self.timeout, attempt),
            ),
        );
        match &self.throttle {
            Some(throttle) => throttle.run_async(classifier, limited).await,
            None => layer::circuit_async(self.breaker.as_deref(), classifier, limited).await,
        }
    }
}

/// A [`Pipeline`]'s drivers with a circuit breaker that also counts some `Ok` values as
/// failures: see [`Pipeline::failure_if_ok`]. Each driver is the pipeline's driver of the
/// same name.
pub struct FailureIfOkCalls<'p, L, P> {
    pipeline: &'p Pipeline<L>,
    failure_if_ok: P,
}

impl<L, P> fmt::Debug for FailureIfOkCalls<'_, L, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailureIfOkCalls").field("pipeline", self.pipeline).finish_non_exhaustive()
    }
}

impl<L, P> FailureIfOkCalls<'_, L, P> {
    /// [`Pipeline::call`].
    pub fn call<T, E, F>(&self, mut op: F) -> Result<T, E>
    where
        L: InPlace,
        E: From<Error> + Classify + RetryAfter + fmt::Debug,
        P: Fn(&T) -> bool,
        F: FnMut() -> Result<T, E>,
    {
        let classifier = FailureIfOk::new(ByClass, &self.failure_if_ok);
        self.pipeline.drive(&Classified, &classifier, &mut || op().map_err(Fault::Inner))
    }

    /// [`Pipeline::call_blocking`].
    pub fn call_blocking<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Classify + RetryAfter + fmt::Debug + Send + 'static,
        P: Fn(&T) -> bool,
        F: Fn() -> Result<T, E> + Clone + Send + 'static,
    {
        let classifier = FailureIfOk::new(ByClass, &self.failure_if_ok);
        self.pipeline.blocking(&Classified, &classifier, op)
    }

    /// [`Pipeline::call_async`].
    #[cfg(feature = "tokio")]
    pub async fn call_async<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        E: From<Error> + Classify + RetryAfter + fmt::Debug,
        P: Fn(&T) -> bool,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let classifier = FailureIfOk::new(ByClass, &self.failure_if_ok);
        self.pipeline.run_async(&Classified, &classifier, op).await
    }
}

/// A [`Pipeline`]'s drivers with a fallback around them: see [`Pipeline::fallback`].
/// Each driver is the pipeline's driver of the same name; the handler is a
/// `Fn(E) -> Result<T, E>` for the blocking ones and makes a future for
/// [`call_async`](Self::call_async).
pub struct FallbackCalls<'p, L, O, H> {
    pipeline: &'p Pipeline<L>,
    on: O,
    handler: H,
}

impl<L, O, H> fmt::Debug for FallbackCalls<'_, L, O, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackCalls").field("pipeline", self.pipeline).finish_non_exhaustive()
    }
}

impl<L, O, H> FallbackCalls<'_, L, O, H> {
    /// [`Pipeline::call`], then the fallback.
    pub fn call<T, E, F>(&self, mut op: F) -> Result<T, E>
    where
        L: InPlace,
        E: From<Error> + Classify + RetryAfter + fmt::Debug,
        O: FallbackOn<E>,
        H: Fn(E) -> Result<T, E>,
        F: FnMut() -> Result<T, E>,
    {
        let result =
            self.pipeline.drive_fault(&Classified, &ByClass, &mut || op().map_err(Fault::Inner));
        match decide_named(&self.on, self.pipeline.name.as_ref(), result) {
            Ok(done) => done,
            Err(error) => (self.handler)(error),
        }
    }

    /// [`Pipeline::call_blocking`], then the fallback (on the calling thread).
    pub fn call_blocking<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Classify + RetryAfter + fmt::Debug + Send + 'static,
        O: FallbackOn<E>,
        H: Fn(E) -> Result<T, E>,
        F: Fn() -> Result<T, E> + Clone + Send + 'static,
    {
        let result = self.pipeline.blocking_fault(&Classified, &ByClass, op);
        match decide_named(&self.on, self.pipeline.name.as_ref(), result) {
            Ok(done) => done,
            Err(error) => (self.handler)(error),
        }
    }

    /// [`Pipeline::call_async`], then the fallback, whose future is awaited.
    #[cfg(feature = "tokio")]
    pub async fn call_async<T, E, F, Fut, HFut>(&self, op: F) -> Result<T, E>
    where
        E: From<Error> + Classify + RetryAfter + fmt::Debug,
        O: FallbackOn<E>,
        H: Fn(E) -> HFut,
        HFut: Future<Output = Result<T, E>>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let result = self.pipeline.run_async_fault(&Classified, &ByClass, op).await;
        match decide_named(&self.on, self.pipeline.name.as_ref(), result) {
            Ok(done) => done,
            Err(error) => (self.handler)(error).await,
        }
    }
}

/// The layers of a pipeline one at a time, each around an attempt that yields
/// `Result<T, Fault<E>>` (an operation error stays [`Fault::Inner`], a rejection by a layer
/// is [`Fault::Rejected`]). Each takes its layer's [`Instance`](layer::Instance): an
/// `Option` (`None`: the layer is absent and the attempt runs as it is).
///
/// [`Pipeline`] nests them in its fixed order, and so does the code the attribute macros
/// generate; nest them yourself for another order or for a layer a `Pipeline` does not
/// have (a keyed circuit breaker, a keyed rate limit).
///
/// ```
/// use resilience::circuit::AllErrors;
/// use resilience::pipeline::layer;
/// use resilience::{Bulkhead, BulkheadConfig, Error, Fault};
///
/// let bulkhead = Bulkhead::new("docs-layer", BulkheadConfig::builder().max_concurrent(2).build()?);
/// let r: Result<u32, Fault<Error>> = layer::circuit(None, &AllErrors, || {
///     layer::bulkhead(Some(&bulkhead), || Ok(7))
/// });
/// assert_eq!(r.map_err(Fault::into_error), Ok(7));
/// # Ok::<(), resilience::ConfigError>(())
/// ```
pub mod layer {
    use std::borrow::Borrow;
    use std::fmt;
    use std::hash::Hash;
    use std::ops::Deref;
    use std::time::Duration;

    use crate::bulkhead::Bulkhead;
    use crate::circuit::{AdaptiveThrottle, CircuitBreaker, KeyedCircuitBreaker, ResultClassifier};
    use crate::fallback::FallbackOn;
    use crate::rate_limit::{KeyedRateLimiter, RateLimiter};
    use crate::{Error, Fault};

    /// What a layer runs with: its instance `R` (a `&CircuitBreaker`, a `Duration`, ...),
    /// none (the layer is absent), or the error that kept it from being built (each
    /// attempt is then rejected with it).
    ///
    /// An `Option<R>` is an instance that is there or not; the code the attribute macros
    /// generate passes its call site's resolved instance, which may have failed.
    pub trait Instance<'a, R> {
        /// The instance, `None`, or why there is none.
        fn get(self) -> Result<Option<R>, &'a Error>;
    }

    impl<'a, R> Instance<'a, R> for Option<R> {
        #[inline(always)]
        fn get(self) -> Result<Option<R>, &'a Error> {
            Ok(self)
        }
    }

    /// The attempt of an absent layer, out of line: the attempt is inlined once, on the
    /// path through the layer, which keeps the caller small.
    #[inline(never)]
    fn absent<T, E, F>(attempt: F) -> Result<T, Fault<E>>
    where
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        attempt()
    }

    #[cold]
    #[inline(never)]
    fn rejected<T, E>(e: &Error) -> Result<T, Fault<E>> {
        Err(Fault::Rejected(e.clone()))
    }

    /// The call's final result, or `handler`'s answer to the final error when `on`
    /// answers it (see [`fallback`](mod@crate::fallback)): the outermost layer, so it returns
    /// the caller's `Result<T, E>` (a rejection converted with `E::from`). `handler`
    /// receives that error.
    ///
    /// ```
    /// use resilience::fallback::Rejections;
    /// use resilience::pipeline::layer;
    /// use resilience::{Bulkhead, BulkheadConfig, Error, Fault};
    ///
    /// let bulkhead = Bulkhead::new("docs-layer-fallback", BulkheadConfig::builder().max_concurrent(1).build()?);
    /// let _held = bulkhead.try_acquire()?;
    /// let r: Result<&str, Error> = layer::fallback(&Rejections, |_| Ok("cached"), || {
    ///     layer::bulkhead(Some(&bulkhead), || Ok("fresh"))
    /// });
    /// assert_eq!(r, Ok("cached"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn fallback<T, E, O, H, F>(on: &O, handler: H, attempt: F) -> Result<T, E>
    where
        E: From<Error>,
        O: FallbackOn<E> + ?Sized,
        H: FnOnce(E) -> Result<T, E>,
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        match crate::fallback::decide(on, attempt()) {
            Ok(done) => done,
            Err(error) => handler(error),
        }
    }

    /// [`fallback`] for a future; `handler` makes the answer's future.
    #[cfg(feature = "tokio")]
    pub async fn fallback_async<T, E, O, H, HFut, Fut>(
        on: &O,
        handler: H,
        attempt: Fut,
    ) -> Result<T, E>
    where
        E: From<Error>,
        O: FallbackOn<E> + ?Sized,
        H: FnOnce(E) -> HFut,
        HFut: Future<Output = Result<T, E>>,
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        match crate::fallback::decide(on, attempt.await) {
            Ok(done) => done,
            Err(error) => handler(error).await,
        }
    }

    /// The attempt through `breaker` (see [`CircuitBreaker::run`]).
    #[inline(always)]
    pub fn circuit<'a, T, E, C, F>(
        breaker: impl Instance<'a, &'a CircuitBreaker>,
        classifier: &C,
        attempt: F,
    ) -> Result<T, Fault<E>>
    where
        C: ResultClassifier<T, E>,
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        match breaker.get() {
            Ok(Some(breaker)) => breaker.run(classifier, attempt),
            Ok(None) => absent(attempt),
            Err(e) => rejected(e),
        }
    }

    /// The attempt through `throttle` (see [`AdaptiveThrottle::run`]): a circuit in mode
    /// `adaptive_throttle`, in the circuit breaker's place.
    #[inline(always)]
    pub fn throttle<'a, T, E, C, F>(
        throttle: impl Instance<'a, &'a AdaptiveThrottle>,
        classifier: &C,
        attempt: F,
    ) -> Result<T, Fault<E>>
    where
        C: ResultClassifier<T, E>,
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        match throttle.get() {
            Ok(Some(throttle)) => throttle.run(classifier, attempt),
            Ok(None) => absent(attempt),
            Err(e) => rejected(e),
        }
    }

    /// [`throttle`] for a future (see [`AdaptiveThrottle::run_async`]).
    #[cfg(feature = "tokio")]
    pub async fn throttle_async<'a, T, E, C, Fut>(
        throttle: impl Instance<'a, &'a AdaptiveThrottle>,
        classifier: &C,
        attempt: Fut,
    ) -> Result<T, Fault<E>>
    where
        C: ResultClassifier<T, E>,
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        match throttle.get() {
            Ok(Some(throttle)) => throttle.run_async(classifier, attempt).await,
            Ok(None) => attempt.await,
            Err(e) => rejected(e),
        }
    }

    /// The attempt through `key`'s circuit of `breaker` (see [`KeyedCircuitBreaker::run`]).
    /// The key is anything that dereferences to the breaker's borrowed key type: a `&str`
    /// or a `Cow<str>` for a `String` key.
    ///
    /// ```
    /// use resilience::circuit::{AllErrors, CircuitBreakerConfig, KeyedCircuitBreaker};
    /// use resilience::pipeline::layer;
    /// use resilience::{Error, Fault};
    ///
    /// let per_shop: KeyedCircuitBreaker = KeyedCircuitBreaker::new("docs-shops", CircuitBreakerConfig::default());
    /// let shop = "a.myshopify.com";
    /// let r: Result<u32, Fault<Error>> = layer::keyed_circuit(Some(&per_shop), shop, &AllErrors, || Ok(7));
    /// assert_eq!(r.map_err(Fault::into_error), Ok(7));
    /// assert_eq!(per_shop.len(), 1);
    /// ```
    #[inline(always)]
    pub fn keyed_circuit<'a, K, Q, D, T, E, C, F>(
        breaker: impl Instance<'a, &'a KeyedCircuitBreaker<K>>,
        key: D,
        classifier: &C,
        attempt: F,
    ) -> Result<T, Fault<E>>
    where
        K: Hash + Eq + Clone + Send + Sync + fmt::Debug + 'static,
        D: Deref<Target = Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
        C: ResultClassifier<T, E>,
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        match breaker.get() {
            Ok(Some(breaker)) => breaker.run(&*key, classifier, attempt),
            Ok(None) => absent(attempt),
            Err(e) => rejected(e),
        }
    }

    /// The attempt once `limiter` grants `cost` permits (see [`RateLimiter::acquire`]).
    #[inline(always)]
    pub fn rate_limit<'a, T, E, F>(
        limiter: impl Instance<'a, &'a RateLimiter>,
        cost: u32,
        attempt: F,
    ) -> Result<T, Fault<E>>
    where
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        match limiter.get() {
            Ok(Some(limiter)) => limiter.acquire(cost)?,
            Ok(None) => {}
            Err(e) => return rejected(e),
        }
        attempt()
    }

    /// The attempt once `key`'s bucket of `limiter` grants `cost` permits (see
    /// [`KeyedRateLimiter::acquire`]). The key is anything that dereferences to the
    /// limiter's borrowed key type: a `&str` or a `Cow<str>` for a `String` key.
    #[inline(always)]
    pub fn keyed_rate_limit<'a, K, Q, D, T, E, F>(
        limiter: impl Instance<'a, &'a KeyedRateLimiter<K>>,
        key: D,
        cost: u32,
        attempt: F,
    ) -> Result<T, Fault<E>>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        D: Deref<Target = Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        match limiter.get() {
            Ok(Some(limiter)) => limiter.acquire(&*key, cost)?,
            Ok(None) => {}
            Err(e) => return rejected(e),
        }
        attempt()
    }

    /// The attempt inside `bulkhead` (see [`Bulkhead::run`]).
    #[inline(always)]
    pub fn bulkhead<'a, T, E, F>(
        bulkhead: impl Instance<'a, &'a Bulkhead>,
        attempt: F,
    ) -> Result<T, Fault<E>>
    where
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        match bulkhead.get() {
            Ok(Some(bulkhead)) => bulkhead.run(attempt),
            Ok(None) => absent(attempt),
            Err(e) => rejected(e),
        }
    }

    /// The attempt on a worker thread, cut short at `limit`, or sooner when the deadline of
    /// the call (a retry's) leaves less time (see
    /// [`timeout::run_blocking`](crate::timeout::run_blocking)); on the calling thread
    /// without a limit.
    #[inline(always)]
    pub fn timeout_blocking<'a, T, E, F>(
        limit: impl Instance<'a, Duration>,
        attempt: F,
    ) -> Result<T, Fault<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce() -> Result<T, Fault<E>> + Send + 'static,
    {
        match limit.get() {
            Ok(Some(limit)) => crate::timeout::run_blocking(crate::deadline::cap(limit), attempt),
            Ok(None) => attempt(),
            Err(e) => rejected(e),
        }
    }

    /// [`circuit`] for a future (see [`CircuitBreaker::run_async`]).
    #[cfg(feature = "tokio")]
    pub async fn circuit_async<'a, T, E, C, Fut>(
        breaker: impl Instance<'a, &'a CircuitBreaker>,
        classifier: &C,
        attempt: Fut,
    ) -> Result<T, Fault<E>>
    where
        C: ResultClassifier<T, E>,
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        match breaker.get() {
            Ok(Some(breaker)) => breaker.run_async(classifier, move || attempt).await,
            Ok(None) => attempt.await,
            Err(e) => rejected(e),
        }
    }

    /// [`keyed_circuit`] for a future (see [`KeyedCircuitBreaker::run_async`]).
    #[cfg(feature = "tokio")]
    pub async fn keyed_circuit_async<'a, K, Q, D, T, E, C, Fut>(
        breaker: impl Instance<'a, &'a KeyedCircuitBreaker<K>>,
        key: D,
        classifier: &C,
        attempt: Fut,
    ) -> Result<T, Fault<E>>
    where
        K: Hash + Eq + Clone + Send + Sync + fmt::Debug + 'static,
        D: Deref<Target = Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
        C: ResultClassifier<T, E>,
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        match breaker.get() {
            Ok(Some(breaker)) => breaker.run_async(&*key, classifier, move || attempt).await,
            Ok(None) => attempt.await,
            Err(e) => rejected(e),
        }
    }

    /// [`rate_limit`] for a future, waiting on tokio's timer (see
    /// [`RateLimiter::acquire_async`]).
    #[cfg(feature = "tokio")]
    pub async fn rate_limit_async<'a, T, E, Fut>(
        limiter: impl Instance<'a, &'a RateLimiter>,
        cost: u32,
        attempt: Fut,
    ) -> Result<T, Fault<E>>
    where
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        match limiter.get() {
            Ok(Some(limiter)) => {
                limiter.acquire_async(cost).await?;
                attempt.await
            }
            Ok(None) => attempt.await,
            Err(e) => rejected(e),
        }
    }

    /// [`keyed_rate_limit`] for a future (see [`KeyedRateLimiter::acquire_async`]).
    #[cfg(feature = "tokio")]
    pub async fn keyed_rate_limit_async<'a, K, Q, D, T, E, Fut>(
        limiter: impl Instance<'a, &'a KeyedRateLimiter<K>>,
        key: D,
        cost: u32,
        attempt: Fut,
    ) -> Result<T, Fault<E>>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        D: Deref<Target = Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug + Sync,
        K: Borrow<Q>,
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        match limiter.get() {
            Ok(Some(limiter)) => {
                limiter.acquire_async(&*key, cost).await?;
                attempt.await
            }
            Ok(None) => attempt.await,
            Err(e) => rejected(e),
        }
    }

    /// [`bulkhead`] for a future (see [`Bulkhead::run_async`]).
    #[cfg(feature = "tokio")]
    pub async fn bulkhead_async<'a, T, E, Fut>(
        bulkhead: impl Instance<'a, &'a Bulkhead>,
        attempt: Fut,
    ) -> Result<T, Fault<E>>
    where
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        match bulkhead.get() {
            Ok(Some(bulkhead)) => bulkhead.run_async(move || attempt).await,
            Ok(None) => attempt.await,
            Err(e) => rejected(e),
        }
    }

    /// The attempts `make` builds, hedged: after the hedge's delay another one starts
    /// beside the first, and the first success wins (see
    /// [`Hedge::call_async`](crate::hedge::Hedge::call_async)).
    #[cfg(feature = "tokio")]
    pub async fn hedge_async<'a, T, E, F, Fut>(
        hedge: impl Instance<'a, &'a crate::hedge::Hedge>,
        mut make: F,
    ) -> Result<T, Fault<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        match hedge.get() {
            Ok(Some(hedge)) => hedge.call_async(make).await,
            Ok(None) => make().await,
            Err(e) => rejected(e),
        }
    }

    /// The future, dropped at `limit` (see [`timeout::run_async`](crate::timeout::run_async)),
    /// or sooner when the deadline of the call (a retry's) leaves less time.
    #[cfg(feature = "tokio")]
    pub async fn timeout_async<'a, T, E, Fut>(
        limit: impl Instance<'a, Duration>,
        attempt: Fut,
    ) -> Result<T, Fault<E>>
    where
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        match limit.get() {
            Ok(Some(limit)) => {
                crate::timeout::run_async(crate::deadline::cap(limit), attempt).await
            }
            Ok(None) => attempt.await,
            Err(e) => rejected(e),
        }
    }
}
