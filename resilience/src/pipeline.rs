//! [`Pipeline`]: every layer around one operation, in the fixed order.
//!
//! Outermost first: **retry → circuit breaker → rate limit → bulkhead → timeout** (the
//! timeout applies to each attempt). So each attempt passes the breaker and takes a
//! permit, a retried attempt counts once in the breaker's window, an open circuit is not
//! retried, and a `RateLimited` rejection is retried after its suggested wait. This is the
//! hand-written equivalent of `#[resilient(...)]`.
//!
//! ```
//! use resilience::{Pipeline, Error, presets::Preset};
//!
//! #[derive(Debug)]
//! enum AppError { Flaky, Resilience(Error) }
//! impl From<Error> for AppError {
//!     fn from(e: Error) -> Self { AppError::Resilience(e) }
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
//! assert_eq!(value.ok(), Some(3));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::bulkhead::Bulkhead;
use crate::circuit::{AllErrors, CircuitBreaker};
use crate::presets::ResilienceConfig;
use crate::rate_limit::RateLimiter;
use crate::retry::{DefaultHooks, RetryHooks, RetryPolicy};
use crate::{ConfigError, Error, Fault, registry};

/// Retry, circuit breaker, rate limiter, bulkhead and timeout around one operation.
#[derive(Clone, Default)]
pub struct Pipeline {
    retry: Option<RetryPolicy>,
    breaker: Option<Arc<CircuitBreaker>>,
    limiter: Option<Arc<RateLimiter>>,
    bulkhead: Option<Arc<Bulkhead>>,
    timeout: Option<Duration>,
    cost: u32,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("retry", &self.retry.as_ref().map(|r| r.max_attempts()))
            .field("circuit_breaker", &self.breaker.as_ref().map(|b| b.name().clone()))
            .field("rate_limiter", &self.limiter.as_ref().map(|l| l.name().clone()))
            .field("bulkhead", &self.bulkhead.as_ref().map(|b| b.name().clone()))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Pipeline {
    /// A pipeline with no layer; add them with the `with_*` methods.
    pub fn new() -> Self {
        Pipeline { cost: 1, ..Self::default() }
    }

    /// Every layer of `config`, with the named instances (circuit, limiter, bulkhead called
    /// `name`) taken from the global [`registry()`](crate::registry()).
    pub fn from_config(name: &str, config: &ResilienceConfig) -> Result<Self, ConfigError> {
        let reg = registry();
        let config = &reg.bind_budget(config.clone());
        let mut p = Pipeline::new();
        if let Some(r) = &config.retry {
            p.retry = Some(reg.resolve_retry(name, || Ok(r.clone()))?);
        }
        if let Some(c) = &config.circuit_breaker {
            p.breaker = Some(reg.circuit_breakers().resolve(name, || Ok(c.clone()))?);
        }
        if let Some(c) = &config.rate_limit {
            p.limiter = Some(reg.rate_limiters().resolve(name, || Ok(c.clone()))?);
        }
        if let Some(c) = &config.bulkhead {
            p.bulkhead = Some(reg.bulkheads().resolve(name, || Ok(c.clone()))?);
        }
        p.timeout = config.timeout;
        Ok(p)
    }

    /// With this retry policy (outermost).
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// With this circuit breaker.
    pub fn with_circuit_breaker(mut self, breaker: Arc<CircuitBreaker>) -> Self {
        self.breaker = Some(breaker);
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

    /// With a time limit on each attempt (innermost). Blocking code: see [`call`](Self::call).
    pub fn with_timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// The circuit breaker, if any.
    pub fn circuit_breaker(&self) -> Option<&Arc<CircuitBreaker>> {
        self.breaker.as_ref()
    }

    /// The rate limiter, if any.
    pub fn rate_limiter(&self) -> Option<&Arc<RateLimiter>> {
        self.limiter.as_ref()
    }

    // ----- blocking ------------------------------------------------------------------

    /// Run `op` through every layer, blocking the thread for waits and backoff.
    ///
    /// A blocking call cannot be cut short in place, so this driver applies no timeout:
    /// when the pipeline has one (every preset does), it returns `Error::Config` without
    /// calling `op`. Use [`call_timed`](Self::call_timed), which runs each attempt on a
    /// worker thread, drop the layer with [`without_timeout`](Self::without_timeout), or
    /// use the async driver.
    pub fn call<T, E, F>(&self, op: F) -> Result<T, E>
    where
        E: From<Error> + fmt::Debug,
        F: FnMut() -> Result<T, E>,
    {
        self.call_with(&DefaultHooks, op)
    }

    /// [`call`](Self::call) with retry hooks (which errors to retry, server hints, ...).
    pub fn call_with<T, E, H, F>(&self, hooks: &H, mut op: F) -> Result<T, E>
    where
        E: From<Error> + fmt::Debug,
        H: RetryHooks<T, E>,
        F: FnMut() -> Result<T, E>,
    {
        if let Some(limit) = self.timeout {
            return Err(E::from(Error::Config(ConfigError::new(
                "timeout",
                format!(
                    "a blocking call cannot be cut short in place ({limit:?} set); use Pipeline::call_timed, \
                     Pipeline::without_timeout or the async driver"
                ),
            ))));
        }
        self.drive(hooks, &mut || op().map_err(Fault::Inner))
    }

    /// Run `op` through every layer, each attempt on a worker thread so that the timeout
    /// layer can return `Error::Timeout` at the deadline.
    ///
    /// As with [`timeout::call_blocking`](crate::timeout::call_blocking): a timed-out
    /// attempt keeps running on its thread until it returns, and its result is dropped.
    /// Hence `op` is cloned into each attempt and must be `Send + 'static`, and so must its
    /// result. Without a timeout layer, attempts run on the calling thread.
    pub fn call_timed<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + fmt::Debug + Send + 'static,
        F: Fn() -> Result<T, E> + Clone + Send + 'static,
    {
        let limit = self.timeout;
        self.drive(&DefaultHooks, &mut || match limit {
            Some(limit) => {
                let op = op.clone();
                crate::timeout::run_blocking(limit, move || op().map_err(Fault::Inner))
            }
            None => op().map_err(Fault::Inner),
        })
    }

    /// This pipeline without its timeout layer (for blocking code that cannot move to a
    /// worker thread).
    pub fn without_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    fn drive<T, E, H, F>(&self, hooks: &H, op: &mut F) -> Result<T, E>
    where
        E: From<Error> + fmt::Debug,
        H: RetryHooks<T, E>,
        F: FnMut() -> Result<T, Fault<E>>,
    {
        let result = match &self.retry {
            Some(retry) => retry.run(hooks, || self.attempt(op)),
            None => self.attempt(op),
        };
        result.map_err(Fault::into_error)
    }

    fn attempt<T, E, F>(&self, op: &mut F) -> Result<T, Fault<E>>
    where
        F: FnMut() -> Result<T, Fault<E>>,
    {
        match &self.breaker {
            Some(breaker) => breaker.run(&AllErrors, || self.limited(op)),
            None => self.limited(op),
        }
    }

    fn limited<T, E, F>(&self, op: &mut F) -> Result<T, Fault<E>>
    where
        F: FnMut() -> Result<T, Fault<E>>,
    {
        if let Some(limiter) = &self.limiter {
            limiter.acquire(self.cost)?;
        }
        match &self.bulkhead {
            Some(bulkhead) => bulkhead.run(op),
            None => op(),
        }
    }

    // ----- async ---------------------------------------------------------------------

    /// Run the future `op()` makes through every layer; each attempt calls `op` again.
    #[cfg(feature = "tokio")]
    pub async fn call_async<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        E: From<Error> + fmt::Debug,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_async_with(&DefaultHooks, op).await
    }

    /// [`call_async`](Self::call_async) with retry hooks.
    #[cfg(feature = "tokio")]
    pub async fn call_async_with<T, E, H, F, Fut>(&self, hooks: &H, op: F) -> Result<T, E>
    where
        E: From<Error> + fmt::Debug,
        H: RetryHooks<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // A shared cell lets every attempt call `op` without the retry closure lending out a
        // mutable borrow of it across an await.
        let op = parking_lot::Mutex::new(op);
        let make = || (op.lock())();
        let result = match &self.retry {
            Some(retry) => retry.run_async(hooks, || self.attempt_async(&make)).await,
            None => self.attempt_async(&make).await,
        };
        result.map_err(Fault::into_error)
    }

    #[cfg(feature = "tokio")]
    async fn attempt_async<T, E, M, Fut>(&self, make: &M) -> Result<T, Fault<E>>
    where
        M: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        match &self.breaker {
            Some(breaker) => breaker.run_async(&AllErrors, || self.limited_async(make)).await,
            None => self.limited_async(make).await,
        }
    }

    #[cfg(feature = "tokio")]
    async fn limited_async<T, E, M, Fut>(&self, make: &M) -> Result<T, Fault<E>>
    where
        M: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(limiter) = &self.limiter {
            limiter.acquire_async(self.cost).await?;
        }
        let timed = async {
            let fut = async { make().await.map_err(Fault::Inner) };
            match self.timeout {
                Some(limit) => crate::timeout::run_async(limit, fut).await,
                None => fut.await,
            }
        };
        match &self.bulkhead {
            Some(bulkhead) => bulkhead.run_async(|| timed).await,
            None => timed.await,
        }
    }
}
