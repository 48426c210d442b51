//! [`RateLimiter`]: one token bucket.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::bucket::Bucket;
use super::config::RateLimitConfig;
use super::core::{Core, Plan};
use super::headers::{Parsed, SyncReport};
use super::rate::Rate;
use super::shared::{May, Remote, SharedLimit};
use super::stats::{RateLimiterStats, Tally};
use crate::backend::StateStore;
use crate::clock::{SharedClock, as_nanos, default_clock};
use crate::{ConfigError, Error, Fault};

/// A token-bucket rate limiter (GCRA in one atomic word: taking a permit is one
/// compare-and-swap, no lock, no allocation).
///
/// ```
/// use resilience::rate_limit::{OnLimit, RateLimitConfig, RateLimiter};
///
/// let config = RateLimitConfig::builder().per_second(2).burst(3).on_limit(OnLimit::Reject).build()?;
/// let limiter = RateLimiter::new("api", config);
/// for _ in 0..3 {
///     limiter.try_acquire(1)?;
/// }
/// let err = limiter.try_acquire(1).unwrap_err();
/// assert!(matches!(err, resilience::Error::RateLimited { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RateLimiter {
    core: Core,
    bucket: Bucket,
    /// The bucket in a state store (`Backend::Redis`, or `with_store`).
    remote: Option<Box<SharedLimit>>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.core.name)
            .field("available", &self.available())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A full limiter on the default clock.
    pub fn new(name: impl Into<Arc<str>>, config: RateLimitConfig) -> Self {
        Self::with_clock(name, config, default_clock())
    }

    /// A full limiter on `clock` (e.g. a [`ManualClock`](crate::clock::ManualClock)).
    ///
    /// A config with a shared [`Backend`](crate::Backend) gets its bucket from the
    /// process's store for that backend (a config the store cannot keep is logged as an
    /// error and the limiter stays local).
    pub fn with_clock(
        name: impl Into<Arc<str>>,
        config: RateLimitConfig,
        clock: SharedClock,
    ) -> Self {
        let name = name.into();
        RateLimiter {
            remote: SharedLimit::for_config(&name, &config).map(Box::new),
            core: Core::new(name, config, clock),
            bucket: Bucket::new(),
        }
    }

    /// A limiter whose bucket lives in `store`, shared by every limiter using the same
    /// name there, whatever `config.backend()` says (its [`FailMode`](crate::FailMode)
    /// applies when it is `Backend::Redis`; otherwise it fails open). A store that
    /// shares no buckets gives a local limiter.
    ///
    /// Errors: a config the store cannot keep.
    pub fn with_store(
        name: impl Into<Arc<str>>,
        config: RateLimitConfig,
        store: &dyn StateStore,
    ) -> Result<Self, ConfigError> {
        let name = name.into();
        Ok(RateLimiter {
            remote: SharedLimit::in_store(store, &name, &config)?.map(Box::new),
            core: Core::new(name, config, default_clock()),
            bucket: Bucket::new(),
        })
    }

    /// Whether the bucket is shared through a state store (permits are then taken
    /// there; the local bucket serves only while the store is unreachable and the
    /// limiter fails open).
    pub fn is_shared(&self) -> bool {
        self.remote.is_some()
    }

    /// Report events to `hub` instead of the process default (for a registry's instances).
    pub(crate) fn with_hub(mut self, hub: crate::events::Hub) -> Self {
        self.core.hub = hub;
        self
    }

    /// The limiter's name.
    pub fn name(&self) -> &Arc<str> {
        &self.core.name
    }

    /// The current configuration (including `set_rate` and adopted header capacities).
    pub fn config(&self) -> RateLimitConfig {
        self.core.config()
    }

    #[inline]
    fn tally(&self) -> Tally<'_> {
        Tally { key: None, totals: &self.core.totals }
    }

    /// Takes `cost` permits now or fails with [`Error::RateLimited`] carrying the time
    /// until they would be available. Never waits, whatever the policy.
    ///
    /// A `cost` of 0 always succeeds; a `cost` above the burst can never be granted and
    /// fails with [`Error::Config`] (field `cost`), which retries do not retry.
    #[inline]
    pub fn try_acquire(&self, cost: u32) -> Result<(), Error> {
        if self.remote.is_some() {
            return self.acquire_shared(cost, May::NotWait);
        }
        self.try_acquire_local(cost)
    }

    /// `try_acquire` on the local bucket.
    #[inline(always)]
    fn try_acquire_local(&self, cost: u32) -> Result<(), Error> {
        match self.core.take_now(&self.bucket, self.tally(), cost) {
            Ok(()) => Ok(()),
            Err(Some(wait)) => Err(self.core.reject_now(self.tally(), wait, None)),
            Err(None) => self.try_acquire_slow(cost),
        }
    }

    /// `try_acquire` (`May::NotWait`) or `acquire` (`May::Wait`) of a shared limiter, out
    /// of line: a local limiter's call then saves no registers for the store's call it
    /// never makes. Without an answer from the store, the local bucket decides.
    #[inline(never)]
    fn acquire_shared(&self, cost: u32, may: May) -> Result<(), Error> {
        if let Some(remote) = &self.remote
            && let Remote::Done(r) =
                remote.acquire_blocking(&self.core, self.tally(), None, cost, may)
        {
            return r;
        }
        match may {
            May::NotWait => self.try_acquire_local(cost),
            May::Wait => self.acquire_local(cost),
        }
    }

    /// Takes `cost` permits if they are available now, counting the grant; `false`
    /// (nothing taken, nothing counted) when the call needs the full decision of
    /// [`acquire_async`](Self::acquire_async): no permits now, a shared store, a zero
    /// cost or one above the burst.
    #[cfg(feature = "tower")]
    #[inline]
    pub(crate) fn take_now(&self, cost: u32) -> bool {
        self.remote.is_none() && self.core.take_now(&self.bucket, self.tally(), cost).is_ok()
    }

    /// `try_acquire` off the hot path: a cost above the burst.
    #[cold]
    #[inline(never)]
    fn try_acquire_slow(&self, cost: u32) -> Result<(), Error> {
        let plan = self.core.plan(&self.bucket, self.tally(), cost, false, None);
        self.finish(plan)
    }

    /// Takes `cost` permits, blocking the thread (on the limiter's clock) per
    /// [`OnLimit`](super::OnLimit): `Wait` and `Queue` reserve the next free slot and
    /// sleep until it (callers are served in arrival order); `Reject` fails at once.
    #[inline]
    pub fn acquire(&self, cost: u32) -> Result<(), Error> {
        if self.remote.is_some() {
            return self.acquire_shared(cost, May::Wait);
        }
        self.acquire_local(cost)
    }

    /// `acquire` on the local bucket.
    #[inline(always)]
    fn acquire_local(&self, cost: u32) -> Result<(), Error> {
        // Hot path: permits available now. Otherwise the full decision (which takes
        // nothing from a bucket that cannot serve the call at once).
        match self.core.take_now(&self.bucket, self.tally(), cost) {
            Ok(()) => Ok(()),
            Err(_) => self.acquire_slow(cost),
        }
    }

    #[cold]
    #[inline(never)]
    fn acquire_slow(&self, cost: u32) -> Result<(), Error> {
        let plan = self.core.plan(&self.bucket, self.tally(), cost, true, None);
        self.finish(plan)
    }

    fn finish(&self, plan: Plan) -> Result<(), Error> {
        // A direct limiter's bucket is never evicted.
        self.core.block(plan, self.tally()).unwrap_or(Ok(()))
    }

    /// Like [`acquire`](Self::acquire), sleeping on tokio's timer.
    ///
    /// Cancellation: a waiter dropped before its slot gives its permits back if no
    /// later caller has reserved after it (it holds the newest reservation); otherwise
    /// its slot stays consumed, so that the waiters behind it keep their times and order.
    #[cfg(feature = "tokio")]
    pub async fn acquire_async(&self, cost: u32) -> Result<(), Error> {
        if let Some(remote) = &self.remote
            && let Remote::Done(r) =
                remote.acquire_async(&self.core, self.tally(), None, cost).await
        {
            return r;
        }
        if self.core.take_now(&self.bucket, self.tally(), cost).is_ok() {
            return Ok(());
        }
        match self.core.plan(&self.bucket, self.tally(), cost, true, None) {
            Plan::Sleep { wait, tat, inc } => {
                self.core.sleep_async(&self.bucket, self.tally(), wait, tat, inc).await;
                Ok(())
            }
            Plan::Reject(e) => Err(e),
            Plan::Go | Plan::Evicted => Ok(()),
        }
    }

    /// Runs `f` after taking one permit (per the policy); a refusal becomes `E`.
    pub fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Result<T, E>,
        E: From<Error>,
    {
        self.acquire(1).map_err(E::from)?;
        f()
    }

    /// Runs `f` after taking one permit; for pipelines (a refusal is
    /// [`Fault::Rejected`]).
    pub fn run<T, E, F>(&self, f: F) -> Result<T, Fault<E>>
    where
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        self.acquire(1)?;
        f()
    }

    /// Awaits `f` after taking one permit (waiting on tokio's timer).
    #[cfg(feature = "tokio")]
    pub async fn call_async<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: AsyncFnOnce() -> Result<T, E>,
        E: From<Error>,
    {
        self.acquire_async(1).await.map_err(E::from)?;
        f().await
    }

    /// Awaits `f` after taking one permit; for pipelines.
    #[cfg(feature = "tokio")]
    pub async fn run_async<T, E, F>(&self, f: F) -> Result<T, Fault<E>>
    where
        F: AsyncFnOnce() -> Result<T, Fault<E>>,
    {
        self.acquire_async(1).await?;
        f().await
    }

    /// Whole permits available now.
    pub fn available(&self) -> u32 {
        self.bucket.available(self.core.now(), self.core.params.load())
    }

    /// Changes the refill rate, keeping the number of available permits (and any
    /// pause or reservations, counted in permits). Waiters already asleep keep their
    /// wake-up times. A zero or out-of-range rate is refused and changes nothing.
    pub fn set_rate(&self, rate: Rate) -> Result<(), ConfigError> {
        let config = self.core.config_with_rate(rate)?;
        self.reconfigure(config);
        Ok(())
    }

    /// Installs a new configuration; counters and the available permits are kept
    /// (clamped to a smaller burst).
    pub fn reconfigure(&self, config: RateLimitConfig) {
        let now = self.core.now();
        self.core.install(config, |old, new| self.bucket.rescale(now, old, new));
    }

    fn set_burst(&self, burst: u32) -> Result<(), ConfigError> {
        let config = self.core.config_with_burst(burst)?;
        self.reconfigure(config);
        Ok(())
    }

    /// Gives back `permits` taken but not used (at most up to a full bucket): the part of
    /// a GraphQL query's requested cost the server did not charge, say. Local only: a
    /// [shared](Self::is_shared) bucket is re-synced from the server's figures instead.
    ///
    /// ```
    /// use resilience::clock::ManualClock;
    /// use resilience::rate_limit::{RateLimitConfig, RateLimiter};
    ///
    /// let config = RateLimitConfig::builder().per_second(50).burst(1000).build()?;
    /// let limiter = RateLimiter::with_clock("docs-refund", config, ManualClock::new().shared());
    /// limiter.try_acquire(300)?;
    /// limiter.refund(200);
    /// assert_eq!(limiter.available(), 900);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn refund(&self, permits: u32) {
        self.bucket.refund(self.core.now(), u64::from(permits), self.core.params.load());
    }

    /// Grants nothing before clock time `at` (as read by [`Clock::now`]); at `at` the
    /// bucket holds one permit and refills from there. A time already past does nothing.
    ///
    /// On a [shared](Self::is_shared) limiter the shared bucket is paused too, for every
    /// limiter sharing it (the time left until `at` is applied on the store's clock); a
    /// store that cannot be reached is reported by a warn event.
    ///
    /// [`Clock::now`]: crate::clock::Clock::now
    pub fn pause_until(&self, at: Duration) {
        let now = self.core.now();
        self.core.pause_at(&self.bucket, now, as_nanos(at));
        self.pause_shared(Duration::from_nanos(as_nanos(at).saturating_sub(now)));
    }

    /// Grants nothing for `d` (e.g. a server's `Retry-After`); on a shared limiter, for
    /// every limiter sharing the bucket (see [`pause_until`](Self::pause_until)).
    pub fn pause_for(&self, d: Duration) {
        self.core.pause_for(&self.bucket, d);
        self.pause_shared(d);
    }

    fn pause_shared(&self, d: Duration) {
        if let (Some(remote), false) = (&self.remote, d.is_zero()) {
            remote.sync(&self.core, None, super::shared::Hold::Pause(d));
        }
    }

    /// Re-syncs from a response's headers (names case-insensitive, unknown ones ignored):
    ///
    /// * `X-Shopify-Shop-Api-Call-Limit: used/capacity`: adopts `capacity` as the burst
    ///   if it differs, then sets the bucket to `capacity - used` available permits.
    /// * `RateLimit-Remaining: n`, `X-RateLimit-Remaining: n` (GitHub and others), the
    ///   IETF `RateLimit: "default";r=n;t=s` field (of several policies, the most
    ///   restrictive): sets the bucket to `n` available (at most the burst; the fewest
    ///   when several are sent).
    /// * `RateLimit-Reset: s`, `X-RateLimit-Reset: s`, the `RateLimit` field's `t=s`,
    ///   with nothing remaining in the same family: pauses until the reset. A reset is
    ///   seconds from now (decimals allowed) or, from about 10 years of seconds on
    ///   ([`EPOCH_THRESHOLD`](super::headers::EPOCH_THRESHOLD)), an epoch time read
    ///   against the clock's wall time; an epoch more than a day away is refused.
    /// * `Retry-After`: seconds (`120`, or decimal like `2.0`) or an HTTP date (read
    ///   against the clock's wall time): pauses that long.
    /// * `RateLimit-Limit`, `X-RateLimit-Limit`, `RateLimit-Policy: "default";q=n;w=s`:
    ///   the quota is reported in [`SyncReport::limit`], not applied.
    ///
    /// A pause longer than the config's
    /// [`max_pause`](super::RateLimitConfig::max_pause) (default 15 minutes) is cut to
    /// it and reported in [`SyncReport::errors`]. Bad values are reported there too and
    /// change nothing.
    ///
    /// A server's count only ever **lowers** the local level: the server has not yet
    /// counted our own requests still in flight, so a higher figure would hand back
    /// permits already spent (and over-send). The refill raises the level; a newly
    /// adopted Shopify capacity is the one case where the server's figure is taken as is.
    ///
    /// On a [shared](Self::is_shared) limiter the shared bucket is lowered and paused the
    /// same way, for every limiter sharing it (never raised, not even for an adopted
    /// capacity); a store that cannot be reached is reported by a warn event.
    ///
    /// ```
    /// use resilience::rate_limit::{RateLimitConfig, RateLimiter};
    ///
    /// let limiter = RateLimiter::new("shopify", RateLimitConfig::builder().per_second(2).burst(40).build()?);
    /// let report = limiter.sync_from_headers([("x-shopify-shop-api-call-limit", "32/40")]);
    /// assert!(report.errors.is_empty());
    /// assert_eq!(limiter.available(), 8);
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn sync_from_headers<'h>(
        &self,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    ) -> SyncReport {
        let parsed = Parsed::read(headers, self.core.clock.wall_now());
        let adopt = |burst: u32| self.set_burst(burst);
        let report = self.core.apply_headers(&self.bucket, parsed, Some(&adopt));
        if let Some(remote) = &self.remote {
            remote.sync_report(&self.core, None, &report);
        }
        report
    }

    /// A snapshot of state and counters.
    pub fn stats(&self) -> RateLimiterStats {
        use std::sync::atomic::Ordering::Relaxed;
        let l = self.core.params.load();
        let c = &self.core.totals.counts;
        RateLimiterStats {
            name: self.core.name.to_string(),
            available: self.available(),
            capacity: l.burst(),
            rate_per_second: self.core.config.lock().rate().per_second_f64(),
            granted: self.core.totals.granted(),
            waited: c.waited.load(Relaxed),
            waiting: c.waiting.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            keys: None,
        }
    }

    /// Refills the bucket, lifts any pause and zeroes the counters (`waiting` still
    /// counts callers asleep; their reservations are forgotten).
    pub fn reset(&self) {
        self.bucket.reset();
        self.core.totals.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::rate_limit::OnLimit;

    fn limiter(rate: u32, burst: u32, on: OnLimit) -> (RateLimiter, ManualClock) {
        let clock = ManualClock::new();
        let config = RateLimitConfig::builder().per_second(rate).burst(burst).on_limit(on).build();
        let config = config.unwrap_or_else(|e| unreachable!("{e}"));
        (RateLimiter::with_clock("t", config, clock.shared()), clock)
    }

    fn retry_after(r: Result<(), Error>) -> Option<Duration> {
        match r {
            Err(Error::RateLimited { retry_after, .. }) => Some(retry_after),
            _ => None,
        }
    }

    #[test]
    fn burst_is_granted_at_once_then_refused() {
        let (l, _) = limiter(2, 5, OnLimit::Reject);
        for _ in 0..5 {
            assert_eq!(l.try_acquire(1), Ok(()));
        }
        assert!(l.try_acquire(1).is_err());
        assert_eq!(l.available(), 0);
    }

    #[test]
    fn refills_at_the_exact_rate() {
        let (l, clock) = limiter(2, 2, OnLimit::Reject);
        assert_eq!(l.try_acquire(2), Ok(()));
        clock.advance(Duration::from_millis(499));
        assert_eq!(l.available(), 0);
        clock.advance(Duration::from_millis(1));
        assert_eq!(l.available(), 1);
        assert_eq!(l.try_acquire(1), Ok(()));
        assert!(l.try_acquire(1).is_err());
    }

    #[test]
    fn a_call_may_cost_several_permits() {
        let (l, clock) = limiter(10, 10, OnLimit::Reject);
        assert_eq!(l.try_acquire(7), Ok(()));
        assert_eq!(l.available(), 3);
        assert_eq!(retry_after(l.try_acquire(5)), Some(Duration::from_millis(200)));
        clock.advance(Duration::from_millis(200));
        assert_eq!(l.try_acquire(5), Ok(()));
    }

    #[test]
    fn cost_over_the_burst_is_a_config_error_and_consumes_nothing() {
        let (l, _) = limiter(2, 40, OnLimit::Wait);
        let err = l.acquire(41).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some(
                "resilience configuration error: invalid `cost`: must be at most the burst of rate limiter `t` (40) (got 41); such a call can never be granted"
                    .to_string()
            )
        );
        assert_eq!(l.available(), 40);
        assert_eq!(l.stats().rejected, 1);
        assert_eq!(l.try_acquire(0), Ok(()));
    }

    #[test]
    fn reject_carries_the_time_until_a_permit() {
        let (l, clock) = limiter(4, 1, OnLimit::Reject);
        assert_eq!(l.acquire(1), Ok(()));
        clock.advance(Duration::from_millis(100));
        assert_eq!(retry_after(l.acquire(1)), Some(Duration::from_millis(150)));
        assert!(clock.sleeps().is_empty());
    }

    #[test]
    fn wait_sleeps_exactly_the_needed_time_in_order() {
        let (l, clock) = limiter(2, 1, OnLimit::Wait);
        for _ in 0..4 {
            assert_eq!(l.acquire(1), Ok(()));
        }
        assert_eq!(clock.sleeps(), vec![Duration::from_millis(500); 3]);
        assert_eq!(clock.now(), Duration::from_millis(1500));
        let s = l.stats();
        assert_eq!((s.granted, s.waited, s.waiting, s.rejected), (4, 3, 0, 0));
    }

    #[test]
    fn max_wait_rejects_at_once_without_consuming() {
        let clock = ManualClock::new();
        let config = RateLimitConfig::builder()
            .per_second(1)
            .burst(2)
            .max_wait(Duration::from_millis(1500))
            .build()
            .unwrap_or_else(|e| unreachable!("{e}"));
        let l = RateLimiter::with_clock("t", config, clock.shared());
        assert_eq!(l.acquire(2), Ok(()));
        assert_eq!(retry_after(l.acquire(2)), Some(Duration::from_secs(2)));
        assert!(clock.sleeps().is_empty());
        assert_eq!(l.acquire(1), Ok(()));
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(1)]);
    }

    #[test]
    fn set_rate_keeps_the_fill_level() {
        let (l, clock) = limiter(2, 10, OnLimit::Reject);
        assert_eq!(l.try_acquire(6), Ok(()));
        assert_eq!(l.set_rate(Rate::per_second(10)), Ok(()));
        assert_eq!(l.available(), 4);
        clock.advance(Duration::from_millis(100));
        assert_eq!(l.available(), 5);
        assert_eq!(l.config().rate(), Rate::per_second(10));
        assert!(l.set_rate(Rate::per_second(0)).is_err());
        assert_eq!(l.config().rate(), Rate::per_second(10));
    }

    #[test]
    fn reconfigure_keeps_counters_and_clamps_to_a_smaller_burst() {
        let (l, _) = limiter(2, 10, OnLimit::Reject);
        assert_eq!(l.try_acquire(1), Ok(()));
        let smaller =
            l.config().to_builder().burst(3).build().unwrap_or_else(|e| unreachable!("{e}"));
        l.reconfigure(smaller);
        assert_eq!(l.available(), 3);
        assert_eq!(l.stats().granted, 1);
        assert_eq!(l.stats().capacity, 3);
    }

    #[test]
    fn pause_until_blocks_grants_until_then() {
        let (l, clock) = limiter(2, 10, OnLimit::Reject);
        l.pause_until(Duration::from_secs(3));
        assert_eq!(retry_after(l.try_acquire(1)), Some(Duration::from_secs(3)));
        clock.advance(Duration::from_millis(2999));
        assert!(l.try_acquire(1).is_err());
        clock.advance(Duration::from_millis(1));
        assert_eq!(l.try_acquire(1), Ok(()));
        assert!(l.try_acquire(1).is_err());
        // A time in the past changes nothing.
        clock.advance(Duration::from_secs(60));
        l.pause_until(Duration::from_secs(1));
        assert_eq!(l.available(), 10);
    }

    #[test]
    fn pause_for_makes_waiters_sleep_past_it() {
        let clock = ManualClock::new();
        // A 30 s pause is longer than the default bound of a wait: this limiter accepts it.
        let config =
            RateLimitConfig::builder().per_second(2).burst(10).max_wait(Duration::from_secs(60));
        let config = config.build().unwrap_or_else(|e| unreachable!("{e}"));
        let l = RateLimiter::with_clock("t", config, clock.shared());
        l.pause_for(Duration::from_secs(30));
        assert_eq!(l.acquire(1), Ok(()));
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(30)]);
    }

    #[test]
    fn a_pause_longer_than_max_wait_refuses_waiters_at_once() {
        let (l, clock) = limiter(2, 10, OnLimit::Wait);
        l.pause_for(Duration::from_secs(30));
        assert_eq!(retry_after(l.acquire(1)), Some(Duration::from_secs(30)));
        assert_eq!(clock.sleeps(), Vec::<Duration>::new());
    }

    #[test]
    fn header_sync_never_hands_back_permits_spent_on_requests_in_flight() {
        let (l, _clock) = limiter(2, 40, OnLimit::Reject);
        // Four requests granted locally; the server has counted only the first when it
        // answers it, so its header says 1/40 used.
        for _ in 0..4 {
            l.try_acquire(1).expect("full bucket");
        }
        l.sync_from_headers([("X-Shopify-Shop-Api-Call-Limit", "1/40")]);
        assert_eq!(l.available(), 36, "the three in flight stay spent");
        // A server that counted more than we did (another app on the shop) lowers it.
        l.sync_from_headers([("X-Shopify-Shop-Api-Call-Limit", "30/40")]);
        assert_eq!(l.available(), 10);
        l.sync_from_headers([("RateLimit-Remaining", "3")]);
        assert_eq!(l.available(), 3);
    }

    #[test]
    fn shopify_header_sets_fill_and_adopts_capacity() {
        let (l, clock) = limiter(2, 40, OnLimit::Reject);
        let r = l.sync_from_headers([("X-Shopify-Shop-Api-Call-Limit", "32/40")]);
        assert!(r.errors.is_empty());
        assert_eq!(l.available(), 8);
        let r = l.sync_from_headers([("x-shopify-shop-api-call-limit", "10/80")]);
        assert_eq!(r.call_limit.map(|c| c.capacity), Some(80));
        assert_eq!(l.config().burst(), 80);
        assert_eq!(l.available(), 70);
        clock.advance(Duration::from_secs(5));
        assert_eq!(l.available(), 80);
    }

    #[test]
    fn ratelimit_headers_set_remaining_and_pause_until_reset() {
        let (l, clock) = limiter(1, 100, OnLimit::Reject);
        let r = l.sync_from_headers([("RateLimit-Remaining", "5"), ("RateLimit-Reset", "60")]);
        assert_eq!((r.remaining, r.paused_for), (Some(5), None));
        assert_eq!(l.available(), 5);
        let r = l.sync_from_headers([("ratelimit-remaining", "0"), ("ratelimit-reset", "60")]);
        assert_eq!(r.paused_for, Some(Duration::from_secs(60)));
        clock.advance(Duration::from_millis(59_999));
        assert!(l.try_acquire(1).is_err());
        clock.advance(Duration::from_millis(1));
        assert_eq!(l.try_acquire(1), Ok(()));
    }

    #[test]
    fn retry_after_header_pauses_by_seconds_or_date() {
        let wall = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let clock = ManualClock::with_wall_time(wall);
        let config = RateLimitConfig::builder().per_second(10).on_limit(OnLimit::Reject).build();
        let config = config.unwrap_or_else(|e| unreachable!("{e}"));
        let l = RateLimiter::with_clock("t", config, clock.shared());
        let r = l.sync_from_headers([("Retry-After", "Wed, 21 Oct 2015 07:28:10 GMT")]);
        assert_eq!(r.paused_for, Some(Duration::from_secs(10)));
        assert_eq!(retry_after(l.try_acquire(1)), Some(Duration::from_secs(10)));
        clock.advance(Duration::from_secs(10));
        let r = l.sync_from_headers([("retry-after", "2"), ("retry-after", "later")]);
        assert_eq!(r.paused_for, Some(Duration::from_secs(2)));
        assert_eq!(r.errors.len(), 1);
        assert_eq!(retry_after(l.try_acquire(1)), Some(Duration::from_secs(2)));
    }

    #[test]
    fn bad_header_values_change_nothing() {
        let (l, _) = limiter(2, 40, OnLimit::Reject);
        let r = l.sync_from_headers([
            ("X-Shopify-Shop-Api-Call-Limit", "lots"),
            ("RateLimit-Remaining", "-3"),
            ("Retry-After", "\u{1F600}"),
            ("Content-Length", "12"),
        ]);
        assert_eq!(r.errors.len(), 3);
        assert!(!r.applied_anything());
        assert_eq!(l.available(), 40);
    }

    #[test]
    fn unusable_capacity_is_reported_not_applied() {
        let (l, _) = limiter(1, 40, OnLimit::Reject);
        // 1/s with a burst of u32::MAX would span more than 365 days.
        let header = format!("0/{}", u32::MAX);
        let r = l.sync_from_headers([("X-Shopify-Shop-Api-Call-Limit", header.as_str())]);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.call_limit, None);
        assert_eq!(l.config().burst(), 40);
    }

    #[test]
    fn reset_refills_and_zeroes_counters() {
        let (l, _) = limiter(1, 2, OnLimit::Reject);
        let _ = l.try_acquire(2);
        let _ = l.try_acquire(1);
        l.pause_for(Duration::from_secs(100));
        l.reset();
        let s = l.stats();
        assert_eq!((s.available, s.granted, s.rejected, s.capacity), (2, 0, 0, 2));
        assert_eq!(s.rate_per_second, 1.0);
        assert_eq!(s.name, "t");
    }

    #[test]
    fn call_and_run_take_a_permit_first() {
        let (l, _) = limiter(1, 1, OnLimit::Reject);
        let ok: Result<u8, Error> = l.call(|| Ok(7));
        assert_eq!(ok, Ok(7));
        let mut ran = false;
        let refused: Result<(), Fault<std::io::Error>> = l.run(|| {
            ran = true;
            Ok(())
        });
        assert!(matches!(refused, Err(Fault::Rejected(Error::RateLimited { .. }))));
        assert!(!ran);
    }

    #[test]
    fn threads_on_a_frozen_clock_get_exactly_the_burst() {
        let (l, _) = limiter(1, 100, OnLimit::Reject);
        let granted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        if l.try_acquire(1).is_ok() {
                            granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(granted.into_inner(), 100);
        assert_eq!(l.stats().rejected, 3900);
    }

    #[test]
    fn limiter_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RateLimiter>();
    }
}
