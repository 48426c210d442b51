//! Where limiters and circuits keep their state: [`Backend`] and [`FailMode`] in a
//! config, and the [`StateStore`] interface a shared store implements (the crate's Redis
//! store is one; the core types know only this interface).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::circuit::{CallOutcome, CircuitBreakerConfig};
use crate::clock::SharedClock;
use crate::{ConfigError, RateLimitConfig};

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

/// The future an async method of a store handle returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a [`StateStore`] could not answer (the store is unreachable, timed out, or replied
/// with something unexpected). The instance then follows its [`FailMode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    reason: Arc<str>,
}

impl StoreError {
    /// An error carrying `reason` (shown in warn events and in
    /// [`Error::BackendUnavailable`](crate::Error::BackendUnavailable)).
    ///
    /// ```
    /// let e = resilience::backend::StoreError::new("connection refused");
    /// assert_eq!(e.reason(), "connection refused");
    /// ```
    pub fn new(reason: impl Into<Arc<str>>) -> Self {
        StoreError { reason: reason.into() }
    }

    /// Why the store did not answer.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub(crate) fn into_reason(self) -> Arc<str> {
        self.reason
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for StoreError {}

/// A place outside the process where circuits and token buckets can be shared
/// (governor's `StateStore` is the model): every instance created on the same store with
/// the same name shares one circuit or one bucket.
///
/// The core types ([`CircuitBreaker`](crate::CircuitBreaker), [`RateLimiter`](crate::RateLimiter),
/// [`KeyedRateLimiter`](crate::KeyedRateLimiter)) know only this interface: a store hands
/// out one handle per instance ([`SharedCircuit`], [`SharedBucket`]), which the instance
/// consults on every call beside its local state. What the call does while the store is
/// unreachable is the instance's [`FailMode`] (the one of its config's
/// `Backend::Redis(mode)`, else [`FailMode::Open`]).
///
/// The crate's Redis store is `resilience::redis::RedisStore` (crate feature `redis`);
/// [`Backend::Redis`] in a config picks the process-wide one. Any other store is passed
/// to `with_store` constructors:
///
/// ```
/// use std::sync::Arc;
/// use resilience::backend::{SharedBucket, SharedCircuit, StateStore};
/// use resilience::{CircuitBreakerConfig, ConfigError, RateLimitConfig};
///
/// /// A store that shares nothing (every instance keeps its state local).
/// #[derive(Debug)]
/// struct Nowhere;
///
/// impl StateStore for Nowhere {
///     fn circuit(&self, _: &str, _: &CircuitBreakerConfig) -> Result<Option<Arc<dyn SharedCircuit>>, ConfigError> {
///         Ok(None)
///     }
///     fn bucket(&self, _: &str, _: &RateLimitConfig) -> Result<Option<Arc<dyn SharedBucket>>, ConfigError> {
///         Ok(None)
///     }
/// }
///
/// let breaker = resilience::CircuitBreaker::with_store("db", CircuitBreakerConfig::default(), &Nowhere)?;
/// assert!(!breaker.is_shared());
/// # Ok::<(), ConfigError>(())
/// ```
pub trait StateStore: Send + Sync + fmt::Debug {
    /// The shared circuit named `name`, for a breaker with `config` (`None`: the store
    /// does not share circuits). Errors: a config the store cannot keep.
    fn circuit(
        &self,
        name: &str,
        config: &CircuitBreakerConfig,
    ) -> Result<Option<Arc<dyn SharedCircuit>>, ConfigError>;

    /// The shared bucket named `name` (of every key, for a keyed limiter), for a limiter
    /// with `config` (`None`: the store does not share buckets). Errors: a config the
    /// store cannot keep.
    fn bucket(
        &self,
        name: &str,
        config: &RateLimitConfig,
    ) -> Result<Option<Arc<dyn SharedBucket>>, ConfigError>;
}

/// What a shared circuit is told about the breaker asking it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CircuitCall<'a> {
    /// The breaker's name.
    pub name: &'a str,
    /// The breaker's current config (thresholds, window, recovery).
    pub config: &'a CircuitBreakerConfig,
    /// The breaker's clock.
    pub clock: &'a SharedClock,
}

impl<'a> CircuitCall<'a> {
    pub(crate) fn new(
        name: &'a str,
        config: &'a CircuitBreakerConfig,
        clock: &'a SharedClock,
    ) -> Self {
        CircuitCall { name, config, clock }
    }
}

/// A shared circuit's answer to a call asking to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The call may run; its outcome goes back with the ticket
    /// ([`SharedCircuit::report`]).
    Admitted(Ticket),
    /// The shared circuit is open (or its half-open probe slots are taken).
    Rejected {
        /// Time left in the open period (zero when unknown).
        retry_after: Duration,
    },
}

/// What a shared circuit needs back with a call's outcome: the generation of the state
/// that admitted it and, for a half-open probe, the token of its slot (0: not a probe).
/// The values are the store's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// The shared state's generation at admission.
    pub generation: u64,
    /// The probe slot's token, 0 when the call is not a probe.
    pub probe: u64,
}

/// The state of a circuit as its store holds it (see
/// [`CircuitBreaker::shared_state`](crate::CircuitBreaker::shared_state)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharedState {
    /// Calls flow.
    Closed,
    /// Calls are rejected for `retry_after` more.
    Open {
        /// Time left in the open period.
        retry_after: Duration,
    },
    /// Probes are being let through.
    HalfOpen,
}

/// One circuit in a [`StateStore`], shared by every breaker using its name there.
///
/// A breaker with a shared circuit asks it before each call run through `call`/`run`
/// (and their async forms) and reports the call's outcome after; the call must be
/// admitted by both the shared circuit and the breaker's own state machine. The breaker
/// turns a [`StoreError`] into its [`FailMode`]. Every method may do I/O: the blocking
/// ones on the caller's thread.
pub trait SharedCircuit: Send + Sync + fmt::Debug {
    /// May a call run now?
    fn admit(&self, call: &CircuitCall<'_>) -> Result<Admission, StoreError>;

    /// Async [`admit`](Self::admit).
    fn admit_async<'a>(
        &'a self,
        call: CircuitCall<'a>,
    ) -> BoxFuture<'a, Result<Admission, StoreError>>;

    /// How a call admitted with `ticket` went (a failure may open the shared circuit).
    fn report(&self, call: &CircuitCall<'_>, ticket: Ticket, outcome: CallOutcome);

    /// Async [`report`](Self::report).
    fn report_async<'a>(
        &'a self,
        call: CircuitCall<'a>,
        ticket: Ticket,
        outcome: CallOutcome,
    ) -> BoxFuture<'a, ()>;

    /// The shared state, read now (no change).
    fn state(&self, call: &CircuitCall<'_>) -> Result<SharedState, StoreError>;

    /// Closes the shared circuit and forgets its failures, for every breaker sharing it
    /// (the operator action [`CircuitBreaker::reset_shared`](crate::CircuitBreaker::reset_shared)).
    fn reset(&self, call: &CircuitCall<'_>) -> Result<(), StoreError>;
}

/// What a shared bucket is asked for: `cost` permits of a GCRA bucket.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct BucketRequest<'a> {
    /// The limiter's name.
    pub name: &'a str,
    /// A keyed limiter's key (its `Debug` form); `None` for a direct limiter.
    pub key: Option<&'a str>,
    /// The permits asked for.
    pub cost: u32,
    /// What the permits asked for add to the bucket's arrival time (the refill interval
    /// times the cost).
    pub increment: Duration,
    /// How far ahead of now the arrival time may run (the refill interval times the
    /// burst).
    pub capacity: Duration,
    /// How long the caller may wait for a reserved slot: zero for "now or never". Every
    /// wait is bounded: a slot further away than this is refused, nothing reserved.
    pub max_wait: Duration,
}

/// A shared bucket's answer to a [`BucketRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Taken now.
    Now,
    /// Reserved: the caller may go after this wait (the limiter sleeps it).
    After(Duration),
    /// Refused: nothing was taken; the permits would be there after `retry_after`.
    Refused {
        /// When the permits would be available.
        retry_after: Duration,
    },
}

/// One token bucket (or one per key) in a [`StateStore`], shared by every limiter using
/// its name there.
///
/// A limiter with a shared bucket takes its permits there (the local bucket serves only
/// while the store is unreachable and the limiter fails open). Waiting, queue bounds,
/// counters and errors stay with the limiter: the bucket only decides.
pub trait SharedBucket: Send + Sync + fmt::Debug {
    /// Takes (or reserves) the permits of `request`, atomically.
    fn acquire(&self, request: &BucketRequest<'_>) -> Result<Grant, StoreError>;

    /// Async [`acquire`](Self::acquire).
    fn acquire_async<'a>(
        &'a self,
        request: BucketRequest<'a>,
    ) -> BoxFuture<'a, Result<Grant, StoreError>>;

    /// Answers `request` without any I/O when this handle holds a local allowance (a
    /// lease: a share of the limit granted by the store for a short time, spent in this
    /// process): granted, reserved or refused by that allowance. `None` sends the
    /// limiter to [`acquire`](Self::acquire) or [`acquire_async`](Self::acquire_async).
    /// It is asked first on every acquire, blocking or async, so it must be cheap:
    /// atomics, no lock, no allocation. The default holds nothing (every acquire asks the
    /// store).
    fn acquire_local(&self, request: &BucketRequest<'_>) -> Option<Grant> {
        let _ = request;
        None
    }

    /// Moves the bucket's arrival time to at least `ahead` past now on the store's clock
    /// (never back), for every limiter sharing it: `capacity - n·interval` leaves at
    /// most `n` permits available now, `d + capacity - interval` grants nothing for `d`.
    /// A shared limiter's [`pause_for`](crate::RateLimiter::pause_for) and
    /// [`sync_from_headers`](crate::RateLimiter::sync_from_headers) come here;
    /// `request.increment` is one permit's interval.
    fn hold(&self, request: &BucketRequest<'_>, ahead: Duration) -> Result<(), StoreError>;
}

/// The fail mode of an instance created with `backend` on a store.
pub(crate) fn fail_mode(backend: Backend) -> FailMode {
    match backend {
        Backend::Redis(mode) => mode,
        Backend::Local => FailMode::Open,
    }
}

/// The store of the process for `backend` (`None`: local state).
pub(crate) fn process_store(backend: Backend) -> Option<&'static dyn StateStore> {
    match backend {
        Backend::Local => None,
        #[cfg(feature = "redis")]
        Backend::Redis(_) => Some(crate::redis::process_store()),
        #[cfg(not(feature = "redis"))]
        Backend::Redis(_) => None,
    }
}
