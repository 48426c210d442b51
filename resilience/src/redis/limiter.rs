//! [`RedisBucket`]: a limiter's bucket kept in Redis: one atomic script per acquire, or a
//! leased share of the rate spent with the in-process bucket.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::backend::{RedisBackend, Unavailable};
use super::handle::BackendHandle;
use super::scripts;
use crate::backend::{BoxFuture, BucketRequest, Grant, SharedBucket, StoreError};
use crate::clock::as_nanos;
use crate::rate_limit::bucket::{Bucket, Limits, Params, Take};

/// The shared side of a Redis-backed limiter (direct or keyed).
pub(crate) struct RedisBucket {
    backend: BackendHandle,
    /// `{prefix:rl:name}` (the braces are the Cluster hash tag); keyed buckets append
    /// `:{key:?}`.
    key: OnceLock<String>,
    /// `{prefix:rl:name}:shares`: the leased shares of the processes holding one.
    shares: OnceLock<String>,
    share: Share,
}

/// A refusal while no share is held is retried no sooner than this.
const MIN_RETRY: Duration = Duration::from_millis(1);

/// The share of the limit this process leased (a direct limiter's only): rate `r` and
/// burst `b`, spent by the in-process GCRA bucket until the lease ends, renewed every
/// half period (an eighth while it holds less than its fair share).
///
/// The fast path ([`Share::spend`]) is a clock read, three loads, the limits' sequence
/// lock and the bucket's compare-and-swap: no lock, no allocation.
struct Share {
    /// The local bucket, at the share's limits.
    bucket: Bucket,
    /// The share as GCRA limits (`interval` = 1/r, `tau` = b/r), while `held`.
    limits: Params,
    /// Whether the lease holds a share above zero.
    held: AtomicBool,
    /// The share in thousandths (of a permit per second, of a permit), as Redis granted.
    rate_milli: AtomicU64,
    burst_milli: AtomicU64,
    /// Backend-clock nanos at which the lease ends (0: none taken yet).
    until: AtomicU64,
    /// Backend-clock nanos at which the next renewal is due.
    renew_at: AtomicU64,
    /// Set while one call renews a live lease (the others keep spending it).
    renewing: AtomicBool,
    /// Serialises the writers of `limits` (renewals, which may race on a lapsed lease).
    apply: Mutex<()>,
    /// Permits granted and refused here since `since` (backend-clock nanos): the
    /// demand a renewal reports.
    granted: AtomicU64,
    refused: AtomicU64,
    since: AtomicU64,
    /// This process's field in the shares hash.
    holder: i64,
}

/// A renewal being asked for: its time, the period, the script's arguments.
struct Renewal {
    now: u64,
    period: u64,
    args: [i64; 7],
    /// Whether this call holds the `renewing` flag (released by [`Share::finish`]).
    flagged: bool,
}

/// Releases the `renewing` flag if a renewing future is dropped mid-flight.
struct Unflag<'a>(&'a Share, bool);

impl Drop for Unflag<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.renewing.store(false, Ordering::Release);
        }
    }
}

impl Share {
    fn new() -> Self {
        Share {
            bucket: Bucket::new(),
            limits: Params::new(Limits { interval: 1, tau: 0 }),
            held: AtomicBool::new(false),
            rate_milli: AtomicU64::new(0),
            burst_milli: AtomicU64::new(0),
            until: AtomicU64::new(0),
            renew_at: AtomicU64::new(0),
            renewing: AtomicBool::new(false),
            apply: Mutex::new(()),
            granted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            since: AtomicU64::new(0),
            holder: i64::try_from(fastrand::u64(..) >> 1).unwrap_or(1),
        }
    }

    /// Answers `request` from the lease: `None` when no lease is live, or a renewal is
    /// due (unless `due_ok`: another call is renewing, or this one just did).
    #[inline]
    fn spend(&self, now: u64, request: &BucketRequest<'_>, due_ok: bool) -> Option<Grant> {
        let until = self.until.load(Ordering::Acquire);
        let renew_at = self.renew_at.load(Ordering::Acquire);
        if now >= until || (now >= renew_at && !due_ok) {
            return None;
        }
        let cost = u64::from(request.cost);
        let refuse = || {
            self.refused.fetch_add(cost, Ordering::Relaxed);
            let retry = Duration::from_nanos(renew_at.saturating_sub(now)).max(MIN_RETRY);
            Some(Grant::Refused { retry_after: retry })
        };
        if !self.held.load(Ordering::Acquire) {
            return refuse();
        }
        let l = self.limits.load();
        let inc = l.cost(request.cost);
        if inc > l.tau {
            // More than this process's burst share: not before the share grows.
            return refuse();
        }
        // A reservation never reaches past the lease.
        let max_wait = as_nanos(request.max_wait).min(until - now);
        match self.bucket.take(now, inc, l.tau, max_wait) {
            Take::Granted { wait, .. } => {
                self.granted.fetch_add(cost, Ordering::Relaxed);
                Some(if wait == 0 { Grant::Now } else { Grant::After(Duration::from_nanos(wait)) })
            }
            Take::Denied { wait } => {
                self.refused.fetch_add(cost, Ordering::Relaxed);
                Some(Grant::Refused { retry_after: Duration::from_nanos(wait) })
            }
            Take::Evicted => None,
        }
    }

    /// The renewal to ask for at `now`; `None` when another call is renewing a live
    /// lease (spend it meanwhile). A lapsed lease is renewed by every call that finds it
    /// so (as many round trips as exact mode, until one answer arrives).
    fn begin(&self, now: u64, period: u64, request: &BucketRequest<'_>) -> Option<Renewal> {
        let live = now < self.until.load(Ordering::Acquire);
        let flagged = live
            && self
                .renewing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if live && !flagged {
            return None;
        }
        let n = |v: u128| i64::try_from(v).unwrap_or(i64::MAX);
        // The demand since the last renewal: the permits granted here per second (in
        // thousandths), with half again as much headroom. A process refused anything
        // meanwhile has a demand its refusals hide (its callers back off): it asks for
        // all of the rate (`-1`, as a newcomer or a lapsed lease does) and is granted its
        // max-min fair share.
        let since = self.since.swap(now, Ordering::AcqRel);
        let refused = self.refused.swap(0, Ordering::AcqRel);
        // The call renewing counts: a process idle until now asks for what it needs.
        let asked = self.granted.swap(0, Ordering::AcqRel) + u64::from(request.cost);
        let elapsed = now.saturating_sub(since);
        let want = if !live || since == 0 || elapsed == 0 || refused > 0 {
            -1
        } else {
            n(u128::from(asked) * 1_500_000_000_000 / u128::from(elapsed))
        };
        // The limit: R = cost / increment, B = capacity / interval (in thousandths).
        let inc = u128::from(as_nanos(request.increment)).max(1);
        let cost = u128::from(request.cost.max(1));
        let rate = n(cost * 1_000_000_000_000 / inc);
        let burst = n(u128::from(as_nanos(request.capacity)) * cost * 1000 / inc);
        let (prev_rate, prev_burst) = if !live {
            (-1, -1)
        } else if self.held.load(Ordering::Acquire) {
            let load = |a: &AtomicU64| n(u128::from(a.load(Ordering::Acquire)));
            (load(&self.rate_milli), load(&self.burst_milli))
        } else {
            (0, 0)
        };
        let args =
            [rate, burst, want, self.holder, n(u128::from(period / 1000)), prev_rate, prev_burst];
        Some(Renewal { now, period, args, flagged })
    }

    /// Takes Redis's answer to `renewal` (`{rate, burst, holders, fair}`, thousandths):
    /// the local bucket moves to the new share. A new share starts with one permit (its
    /// burst fills at its rate); a changed one keeps the permits it had, at most its new
    /// burst.
    /// An error leaves the lease as it was, retried after an eighth of the period.
    fn finish(
        &self,
        renewal: &Renewal,
        reply: Result<Vec<i64>, Unavailable>,
    ) -> Result<(), StoreError> {
        let _unflag = Unflag(self, renewal.flagged);
        let Renewal { now, period, .. } = *renewal;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                self.renew_at.fetch_max(now.saturating_add(period / 8), Ordering::AcqRel);
                return Err(StoreError::new(e));
            }
        };
        let &[rate, burst, _holders, fair] = reply.as_slice() else {
            return Err(StoreError::new(format!("unexpected share reply {reply:?}")));
        };
        let [rate, burst, fair] = [rate, burst, fair].map(|v| u64::try_from(v).unwrap_or(0));
        let _apply = self.apply.lock();
        let was_live =
            now < self.until.load(Ordering::Acquire) && self.held.load(Ordering::Acquire);
        match share_limits(rate, burst) {
            Some(new) => {
                let old = self.limits.load();
                self.limits.store(new);
                if was_live {
                    self.bucket.rescale(now, old, new);
                } else {
                    self.bucket.set_available(now, 1, new, true);
                }
                self.held.store(true, Ordering::Release);
            }
            None => self.held.store(false, Ordering::Release),
        }
        self.rate_milli.store(rate, Ordering::Release);
        self.burst_milli.store(burst, Ordering::Release);
        // Short of the fair share (the others have not shrunk yet): ask again soon.
        let next = if rate == 0 || rate < fair - fair / 100 { period / 8 } else { period / 2 };
        self.renew_at.store(now.saturating_add(next), Ordering::Release);
        // Measured from before the round trip: the lease ends here no later than in Redis.
        self.until.store(now.saturating_add(period), Ordering::Release);
        Ok(())
    }

    /// A pause or a server's lower count (see [`SharedBucket::hold`]) holds back the
    /// lease's bucket too.
    fn hold(&self, now: u64, request: &BucketRequest<'_>, ahead: Duration) {
        if !self.held.load(Ordering::Acquire) {
            return;
        }
        let _apply = self.apply.lock();
        let l = self.limits.load();
        let (ahead, interval) = (as_nanos(ahead), as_nanos(request.increment).max(1));
        let cap = as_nanos(request.capacity);
        match ahead.checked_sub(cap.saturating_sub(interval)) {
            Some(pause) if pause > 0 => {
                self.bucket.pause_until(now, now.saturating_add(pause), l);
            }
            _ => self.bucket.set_available(now, cap.saturating_sub(ahead) / interval, l, false),
        }
    }
}

/// The local bucket's limits for a share of `rate` and `burst` thousandths (`None`: no
/// share). The interval rounds up and the burst down, so the bucket never grants more.
fn share_limits(rate: u64, burst: u64) -> Option<Limits> {
    if rate == 0 || burst < 1000 {
        return None;
    }
    let interval = 1_000_000_000_000u64.div_ceil(rate).max(1);
    let tau = u128::from(burst) * 1_000_000_000 / u128::from(rate);
    let tau = u64::try_from(tau).unwrap_or(u64::MAX).max(interval);
    Some(Limits { interval, tau })
}

impl fmt::Debug for RedisBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBucket").finish_non_exhaustive()
    }
}

impl RedisBucket {
    pub(super) fn new(backend: BackendHandle) -> Self {
        RedisBucket { backend, key: OnceLock::new(), shares: OnceLock::new(), share: Share::new() }
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

    fn shares_key(&self, base: &str) -> &str {
        self.shares.get_or_init(|| format!("{base}:shares"))
    }

    /// The lease period when `request` is served by a lease (a direct limiter with
    /// leases on).
    fn period(backend: &RedisBackend, request: &BucketRequest<'_>) -> Option<u64> {
        let period = as_nanos(backend.config().lease());
        (period > 0 && request.key.is_none()).then_some(period)
    }

    /// After a renewal (or while another call renews): the lease answers, or, with no
    /// lease live, the renewal's error.
    fn after_renewal(
        &self,
        backend: &RedisBackend,
        request: &BucketRequest<'_>,
        renewed: Result<(), StoreError>,
    ) -> Result<Grant, StoreError> {
        let now = as_nanos(backend.now());
        match self.share.spend(now, request, true) {
            Some(grant) => Ok(grant),
            None => Err(renewed.err().unwrap_or_else(|| StoreError::new("the lease lapsed"))),
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
        let Some(period) = Self::period(backend, request) else {
            return grant(backend.eval_blocking(scripts::limiter(), &[&key], &args(request)));
        };
        let now = as_nanos(backend.now());
        if let Some(grant) = self.share.spend(now, request, false) {
            return Ok(grant);
        }
        let renewed = match self.share.begin(now, period, request) {
            Some(renewal) => {
                let keys = [self.shares_key(&key)];
                let reply = backend.eval_blocking(scripts::share(), &keys, &renewal.args);
                self.share.finish(&renewal, reply)
            }
            None => Ok(()),
        };
        self.after_renewal(backend, request, renewed)
    }

    fn acquire_async<'a>(
        &'a self,
        request: BucketRequest<'a>,
    ) -> BoxFuture<'a, Result<Grant, StoreError>> {
        Box::pin(async move {
            let backend = self.backend.get().map_err(StoreError::new)?;
            let key = self.redis_key(backend, &request);
            let Some(period) = Self::period(backend, &request) else {
                return grant(
                    backend.eval_async(scripts::limiter(), &[&key], &args(&request)).await,
                );
            };
            let now = as_nanos(backend.now());
            if let Some(grant) = self.share.spend(now, &request, false) {
                return Ok(grant);
            }
            let renewed = match self.share.begin(now, period, &request) {
                Some(renewal) => {
                    // A dropped future releases the renewal flag.
                    let unflag = Unflag(&self.share, renewal.flagged);
                    let keys = [self.shares_key(&key)];
                    let reply = backend.eval_async(scripts::share(), &keys, &renewal.args).await;
                    std::mem::forget(unflag);
                    self.share.finish(&renewal, reply)
                }
                None => Ok(()),
            };
            self.after_renewal(backend, &request, renewed)
        })
    }

    #[inline]
    fn acquire_local(&self, request: &BucketRequest<'_>) -> Option<Grant> {
        // Before the first lease (or without a backend) there is nothing to spend.
        let backend = self.backend.get_if_resolved()?;
        if request.key.is_some() || backend.config().lease().is_zero() {
            return None;
        }
        self.share.spend(as_nanos(backend.now()), request, false)
    }

    fn hold(&self, request: &BucketRequest<'_>, ahead: Duration) -> Result<(), StoreError> {
        let backend = self.backend.get().map_err(StoreError::new)?;
        // A pause or a server's lower count holds back this process's lease too.
        if request.key.is_none() {
            self.share.hold(as_nanos(backend.now()), request, ahead);
        }
        let key = self.redis_key(backend, request);
        let ahead = i64::try_from(as_nanos(ahead)).unwrap_or(i64::MAX);
        backend
            .eval_blocking::<i64>(scripts::hold(), &[&key], &[ahead])
            .map(|_| ())
            .map_err(StoreError::new)
    }
}
