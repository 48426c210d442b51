//! [`RedisStore`]: Redis as a [`StateStore`], and the `with_redis` constructors.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::RedisBackend;
use super::breaker::RedisCircuit;
use super::handle::BackendHandle;
use super::limiter::RedisBucket;
use crate::backend::{SharedBucket, SharedCircuit, StateStore};
use crate::{
    Backend, CircuitBreaker, CircuitBreakerConfig, ConfigError, FailMode, KeyedRateLimiter,
    RateLimitConfig, RateLimiter,
};

/// Redis as a [`StateStore`]: circuits in one hash per name
/// (`{prefix:cb:name}`), buckets in one key per name (and per key of a keyed limiter:
/// `{prefix:rl:name}:{key:?}`). See [the module](super) for the consistency model and
/// the limits it checks (a config outside them is a [`ConfigError`] from `with_store`).
///
/// ```
/// use std::sync::Arc;
/// use resilience::redis::{RedisBackend, RedisConfig, RedisStore};
/// use resilience::{CircuitBreaker, CircuitBreakerConfig};
///
/// let backend = Arc::new(RedisBackend::new(RedisConfig::builder("redis://127.0.0.1:6379").build()?)?);
/// let store = RedisStore::new(backend);
/// // Nothing connects before the first call.
/// let breaker = CircuitBreaker::with_store("db", CircuitBreakerConfig::default(), &store)?;
/// assert!(breaker.is_shared());
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RedisStore {
    /// `None`: the process-wide backend, resolved by each instance on its first call.
    backend: Option<Arc<RedisBackend>>,
}

impl RedisStore {
    /// The store on `backend`.
    pub fn new(backend: Arc<RedisBackend>) -> Self {
        RedisStore { backend: Some(backend) }
    }

    /// The store on the process-wide backend (the one set by [`configure`](super::configure),
    /// else one for `RESILIENCE_REDIS_URL`), which `Backend::Redis` instances use. Each
    /// instance resolves it on its first call, and again on later calls while there is
    /// none.
    pub fn process() -> Self {
        RedisStore { backend: None }
    }

    /// The lease period of the store's backend (the process-wide one if configured
    /// already; zero otherwise).
    fn lease(&self) -> Duration {
        match &self.backend {
            Some(b) => b.config().lease(),
            None => super::GLOBAL.load().as_ref().map(|b| b.config().lease()).unwrap_or_default(),
        }
    }

    fn handle(&self) -> BackendHandle {
        match &self.backend {
            Some(b) => BackendHandle::Given(Arc::clone(b)),
            None => BackendHandle::Global(OnceLock::new()),
        }
    }
}

/// The shortest refill interval of a Redis-backed limiter in exact mode (10 000 permits
/// per second): Redis keeps the bucket's time in whole microseconds, so the rounding
/// stays under 0.5 %. Leased shares have no such cap.
const MIN_SHARED_INTERVAL: Duration = Duration::from_micros(100);

/// The Redis backend of a config (`Local` becomes Redis failing open).
fn redis_backend(backend: Backend) -> Backend {
    match backend {
        Backend::Local => Backend::Redis(FailMode::Open),
        redis => redis,
    }
}

impl StateStore for RedisStore {
    fn circuit(
        &self,
        _name: &str,
        config: &CircuitBreakerConfig,
    ) -> Result<Option<Arc<dyn SharedCircuit>>, ConfigError> {
        // The builder checks what Redis can keep for a Redis backend.
        config.to_builder().backend(redis_backend(config.backend())).build()?;
        Ok(Some(Arc::new(RedisCircuit::new(self.handle()))))
    }

    fn bucket(
        &self,
        _name: &str,
        config: &RateLimitConfig,
    ) -> Result<Option<Arc<dyn SharedBucket>>, ConfigError> {
        let config = config.to_builder().backend(redis_backend(config.backend())).build()?;
        // Exact mode keeps time in whole microseconds in Redis; leased shares do not.
        let interval = config.rate().interval();
        if interval < MIN_SHARED_INTERVAL && self.lease().is_zero() {
            return Err(ConfigError::new(
                "rate",
                format!(
                    "a Redis-backed limiter without leases keeps time in whole microseconds: at most 10 000 permits per second (got one per {interval:?}); leases (RedisConfigBuilder::lease) lift the cap for direct limiters"
                ),
            ));
        }
        Ok(Some(Arc::new(RedisBucket::new(self.handle()))))
    }
}

/// The store `Backend::Redis` instances use.
pub(crate) fn process_store() -> &'static RedisStore {
    static STORE: OnceLock<RedisStore> = OnceLock::new();
    STORE.get_or_init(RedisStore::process)
}

/// The `with_redis` constructor of a breaker or limiter whose config type is `$config`:
/// `with_store` on a [`RedisStore`] of `backend`, with the config's backend set to Redis.
/// The docs given come first.
macro_rules! with_redis {
    ($config:ty, $(#[$doc:meta])*) => {
        $(#[$doc])*
        ///
        /// Errors: a config Redis cannot keep (see [`crate::redis`] for the limits).
        pub fn with_redis(
            name: impl Into<Arc<str>>,
            config: $config,
            backend: Arc<RedisBackend>,
        ) -> Result<Self, ConfigError> {
            let config = config.to_builder().backend(redis_backend(config.backend())).build()?;
            Self::with_store(name, config, &RedisStore::new(backend))
        }
    };
}

impl CircuitBreaker {
    with_redis! {
        CircuitBreakerConfig,
        /// A breaker whose state is shared through `backend`'s Redis with every process
        /// using the same name there: [`with_store`](Self::with_store) on a
        /// [`RedisStore`], with `config.backend()` set to `Backend::Redis` (failing open
        /// unless it already says otherwise).
    }
}

impl RateLimiter {
    with_redis! {
        RateLimitConfig,
        /// A limiter whose bucket lives in `backend`'s Redis, shared by every process using
        /// the same name there: [`with_store`](Self::with_store) on a [`RedisStore`], with
        /// `config.backend()` set to `Backend::Redis` (failing open unless it already says
        /// otherwise).
    }
}

impl<K> KeyedRateLimiter<K>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
{
    with_redis! {
        RateLimitConfig,
        /// A keyed limiter whose buckets live in `backend`'s Redis (key
        /// `{prefix:rl:name}:{key:?}`), shared by every process using the same name there;
        /// see [`RateLimiter::with_redis`].
    }
}
