//! [`RedisBucket`]: a limiter's bucket kept in Redis, one atomic script per acquire.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// `{prefix:rl:name}:holders`: the processes holding a lease.
    holders: OnceLock<String>,
    lease: Lease,
}

/// The permits this process leased from the shared bucket (a direct limiter's only),
/// spent without a round trip until they run out or the lease ends.
///
/// All atomics: the fast path ([`Lease::take`]) is a clock read, two loads and one
/// compare-and-swap.
struct Lease {
    /// Credit left (ns of bucket time: an acquire spends its increment).
    credit: AtomicU64,
    /// Backend-clock nanos at which the credit lapses (0: no lease yet).
    until: AtomicU64,
    /// Credit spent since the last renewal, and when that was: this process's demand.
    spent: AtomicU64,
    renewed_at: AtomicU64,
    /// This process's member in the holders set.
    holder: i64,
    /// After Redis refused `refused_inc` (ns) at once: backend-clock nanos until which it
    /// would refuse it again (GCRA time only moves forward), so a refusal is repeated
    /// here without a round trip.
    refused_until: AtomicU64,
    refused_inc: AtomicU64,
}

impl Lease {
    fn new() -> Self {
        Lease {
            credit: AtomicU64::new(0),
            until: AtomicU64::new(0),
            spent: AtomicU64::new(0),
            renewed_at: AtomicU64::new(0),
            holder: i64::try_from(fastrand::u64(..) >> 1).unwrap_or(1),
            refused_until: AtomicU64::new(0),
            refused_inc: AtomicU64::new(u64::MAX),
        }
    }

    /// Spends `increment` of a live lease: `false` when the lease ended or holds less.
    fn take(&self, now: u64, increment: u64) -> bool {
        if now >= self.until.load(Ordering::Acquire) {
            return false;
        }
        let mut credit = self.credit.load(Ordering::Acquire);
        loop {
            if credit < increment {
                return false;
            }
            match self.credit.compare_exchange_weak(
                credit,
                credit - increment,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.spent.fetch_add(increment, Ordering::Relaxed);
                    return true;
                }
                Err(seen) => credit = seen,
            }
        }
    }

    /// The credit to ask for: this process's demand since the last renewal, over one
    /// period, doubled (so a steady process renews about once per period and a growing
    /// one catches up in a few renewals); at least the permits asked for now.
    fn wanted(&self, now: u64, period: u64, increment: u64) -> u64 {
        // Read, not reset: a refused renewal leaves the demand measured for the next.
        let spent = self.spent.load(Ordering::Acquire);
        let since = now.saturating_sub(self.renewed_at.load(Ordering::Acquire));
        // A first renewal, or one after a long idle spell, asks for a few permits only.
        let demand = if since == 0 || since > period.saturating_mul(4) {
            0
        } else {
            let rate = u128::from(spent) * u128::from(period) / u128::from(since.max(1));
            u64::try_from(rate.saturating_mul(2)).unwrap_or(u64::MAX)
        };
        demand.max(increment.saturating_mul(4))
    }

    /// A lease of `credit` ns granted at `now` for `period`, `increment` of it spent by
    /// the call that took it. An ended lease's leftover lapses; a live one's is kept.
    fn grant(&self, now: u64, period: u64, credit: u64, increment: u64) {
        let left = credit.saturating_sub(increment);
        if now >= self.until.load(Ordering::Acquire) {
            self.credit.store(left, Ordering::Release);
        } else {
            self.credit.fetch_add(left, Ordering::AcqRel);
        }
        self.until.fetch_max(now.saturating_add(period), Ordering::AcqRel);
        // The demand is measured afresh from this renewal on.
        self.renewed_at.store(now, Ordering::Release);
        self.spent.store(increment, Ordering::Release);
    }
}

impl fmt::Debug for RedisBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBucket").finish_non_exhaustive()
    }
}

impl RedisBucket {
    pub(super) fn new(backend: BackendHandle) -> Self {
        RedisBucket { backend, key: OnceLock::new(), holders: OnceLock::new(), lease: Lease::new() }
    }

    /// Spends the permits of `request` from the lease, if it holds them; repeats a
    /// refusal Redis gave for as many permits or fewer, until it would grant them.
    fn spend(&self, backend: &RedisBackend, request: &BucketRequest<'_>) -> Option<Grant> {
        let now = as_nanos(backend.now());
        let increment = as_nanos(request.increment);
        if self.lease.take(now, increment) {
            return Some(Grant::Now);
        }
        let until = self.lease.refused_until.load(Ordering::Acquire);
        (request.max_wait.is_zero()
            && now < until
            && increment >= self.lease.refused_inc.load(Ordering::Acquire))
        .then(|| Grant::Refused { retry_after: Duration::from_nanos(until - now) })
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

/// A lease to ask Redis for: the period (backend-clock nanos), the time of asking, and
/// the lease script's extra arguments.
struct Renewal {
    period: u64,
    now: u64,
    increment: u64,
    args: [i64; 7],
}

impl RedisBucket {
    /// The renewal a direct limiter's acquire asks for, when leases are on.
    fn renewal(&self, backend: &RedisBackend, request: &BucketRequest<'_>) -> Option<Renewal> {
        let period = as_nanos(backend.config().lease());
        if period == 0 || request.key.is_some() {
            return None;
        }
        let now = as_nanos(backend.now());
        let increment = as_nanos(request.increment);
        let wanted = self.lease.wanted(now, period, increment);
        let [inc, cap, max_wait, ttl] = args(request);
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let args = [inc, cap, max_wait, ttl, n(wanted), self.lease.holder, n(period / 1000)];
        Some(Renewal { period, now, increment, args })
    }

    fn holders_key(&self, base: &str) -> &str {
        self.holders.get_or_init(|| format!("{base}:holders"))
    }

    /// The lease script's reply: a lease (this call's permits taken from it), or the
    /// exact answer.
    fn leased(
        &self,
        renewal: &Renewal,
        reply: Result<Vec<i64>, Unavailable>,
    ) -> Result<Grant, StoreError> {
        let reply = reply.map_err(StoreError::new)?;
        let &[leased, _holders, exact] = reply.as_slice() else {
            return Err(StoreError::new(format!("unexpected lease reply {reply:?}")));
        };
        if leased > 0 {
            let credit = leased.unsigned_abs().saturating_mul(1000);
            self.lease.grant(renewal.now, renewal.period, credit, renewal.increment);
            return Ok(Grant::Now);
        }
        let answer = grant(Ok(exact));
        if let Ok(Grant::Refused { retry_after }) = answer {
            // Measured from before the round trip: the repeat ends no later than Redis's.
            let until = renewal.now.saturating_add(as_nanos(retry_after));
            self.lease.refused_inc.store(renewal.increment, Ordering::Release);
            self.lease.refused_until.store(until, Ordering::Release);
        }
        answer
    }
}

impl SharedBucket for RedisBucket {
    fn acquire(&self, request: &BucketRequest<'_>) -> Result<Grant, StoreError> {
        let backend = self.backend.get().map_err(StoreError::new)?;
        let key = self.redis_key(backend, request);
        if let Some(renewal) = self.renewal(backend, request) {
            let keys = [&*key, self.holders_key(&key)];
            let reply = backend.eval_blocking(scripts::lease(), &keys, &renewal.args);
            return self.leased(&renewal, reply);
        }
        grant(backend.eval_blocking(scripts::limiter(), &[&key], &args(request)))
    }

    fn acquire_async<'a>(
        &'a self,
        request: BucketRequest<'a>,
    ) -> BoxFuture<'a, Result<Grant, StoreError>> {
        Box::pin(async move {
            let backend = self.backend.get().map_err(StoreError::new)?;
            let key = self.redis_key(backend, &request);
            if let Some(renewal) = self.renewal(backend, &request) {
                let keys = [&*key, self.holders_key(&key)];
                let reply = backend.eval_async(scripts::lease(), &keys, &renewal.args).await;
                return self.leased(&renewal, reply);
            }
            grant(backend.eval_async(scripts::limiter(), &[&key], &args(&request)).await)
        })
    }

    fn acquire_local(&self, request: &BucketRequest<'_>) -> Option<Grant> {
        if request.key.is_some() {
            return None;
        }
        // Before the first lease (or without a backend) there is nothing to spend.
        let backend = self.backend.get_if_resolved()?;
        if backend.config().lease().is_zero() {
            return None;
        }
        self.spend(backend, request)
    }

    fn hold(&self, request: &BucketRequest<'_>, ahead: Duration) -> Result<(), StoreError> {
        // A pause or a server's lower count holds back this process's lease too.
        if request.key.is_none() {
            self.lease.credit.store(0, Ordering::Release);
        }
        let backend = self.backend.get().map_err(StoreError::new)?;
        let key = self.redis_key(backend, request);
        let ahead = i64::try_from(as_nanos(ahead)).unwrap_or(i64::MAX);
        backend
            .eval_blocking::<i64>(scripts::hold(), &[&key], &[ahead])
            .map(|_| ())
            .map_err(StoreError::new)
    }
}
