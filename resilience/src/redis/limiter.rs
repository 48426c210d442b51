//! [`RedisBucket`]: a limiter's bucket kept in Redis, one atomic script per acquire.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use super::backend::{RedisBackend, Unavailable};
use super::handle::BackendHandle;
use super::scripts;
use crate::backend::{BoxFuture, BucketRequest, Grant, SharedBucket, StoreError};
use crate::clock::as_nanos;

/// The shared side of a Redis-backed limiter (direct or keyed).
pub(crate) struct RedisBucket {
    backend: BackendHandle,
    /// `{prefix:rl:name}` (the braces are the Cluster hash tag); keyed buckets append
    /// `:{key:?}`.
    key: OnceLock<String>,
}

impl fmt::Debug for RedisBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBucket").finish_non_exhaustive()
    }
}

impl RedisBucket {
    pub(super) fn new(backend: BackendHandle) -> Self {
        RedisBucket { backend, key: OnceLock::new() }
    }

    fn base_key(&self, backend: &RedisBackend, name: &str) -> &str {
        self.key.get_or_init(|| format!("{{{}:rl:{name}}}", backend.prefix()))
    }

    /// The bucket's Redis key: the limiter's, plus the key's `Debug` form for a keyed
    /// limiter.
    fn redis_key<'s>(
        &'s self,
        backend: &RedisBackend,
        request: &BucketRequest<'_>,
    ) -> Cow<'s, str> {
        let base = self.base_key(backend, request.name);
        match request.key {
            None => Cow::Borrowed(base),
            Some(k) => Cow::Owned(format!("{base}:{k}")),
        }
    }
}

/// The limiter script's ARGV: increment (ns), capacity (ns), max_wait (µs; 0 = now or
/// never), ttl (ms).
fn args(request: &BucketRequest<'_>) -> [i64; 4] {
    let inc = u128::from(as_nanos(request.increment));
    let cap = u128::from(as_nanos(request.capacity));
    let max_wait = match request.max_wait {
        w if w.is_zero() => 0,
        w => i64::try_from(w.as_micros()).unwrap_or(i64::MAX).max(1),
    };
    // The key outlives a grant without a wait by at most one burst's refill time (plus
    // a millisecond for rounding): long enough to keep the reservation.
    let ttl = cap.div_ceil(1_000_000) + 1;
    let [inc, cap, ttl] = [inc, cap, ttl].map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    [inc, cap, max_wait, ttl]
}

/// The script's reply: `0` granted now, `> 0` granted after that many µs, `< 0`
/// refused, available in `-reply` µs.
fn grant(reply: Result<i64, Unavailable>) -> Result<Grant, StoreError> {
    match reply {
        Ok(0) => Ok(Grant::Now),
        Ok(wait) if wait > 0 => Ok(Grant::After(Duration::from_micros(wait.unsigned_abs()))),
        Ok(refused) => {
            Ok(Grant::Refused { retry_after: Duration::from_micros(refused.unsigned_abs()) })
        }
        Err(reason) => Err(StoreError::new(reason)),
    }
}

impl SharedBucket for RedisBucket {
    fn acquire(&self, request: &BucketRequest<'_>) -> Result<Grant, StoreError> {
        let backend = self.backend.get().map_err(StoreError::new)?;
        let key = self.redis_key(backend, request);
        grant(backend.eval_blocking(scripts::limiter(), &[&key], &args(request)))
    }

    fn acquire_async<'a>(
        &'a self,
        request: BucketRequest<'a>,
    ) -> BoxFuture<'a, Result<Grant, StoreError>> {
        Box::pin(async move {
            let backend = self.backend.get().map_err(StoreError::new)?;
            let key = self.redis_key(backend, &request);
            grant(backend.eval_async(scripts::limiter(), &[&key], &args(&request)).await)
        })
    }

    fn hold(&self, request: &BucketRequest<'_>, ahead: Duration) -> Result<(), StoreError> {
        let backend = self.backend.get().map_err(StoreError::new)?;
        let key = self.redis_key(backend, request);
        let ahead = i64::try_from(as_nanos(ahead)).unwrap_or(i64::MAX);
        backend
            .eval_blocking::<i64>(scripts::hold(), &[&key], &[ahead])
            .map(|_| ())
            .map_err(StoreError::new)
    }
}
