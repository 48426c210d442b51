//! [`KeyedRateLimiter`]: one bucket per key, idle buckets dropped on their own.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::bucket::Bucket;
use super::config::RateLimitConfig;
use super::core::{Core, Plan};
use super::headers::{Parsed, SyncReport};
use super::keymap::{KeyMap, Pinned};
use super::rate::Rate;
use super::shared::{Hold, May, Remote, SharedLimit};
use super::stats::{Counters, RateLimiterStats, Tally, Totals};
use crate::backend::StateStore;
use crate::clock::{SharedClock, as_nanos, default_clock};
use crate::{ConfigError, Error};

/// The map length below which no amortised sweep runs.
const MIN_SWEEP: usize = 1024;
/// The wait an evicted bucket's take-now reports (no live bucket's wait reaches it).
const EVICTED_WAIT: u64 = u64::MAX;

#[derive(Debug)]
struct KeyBucket {
    bucket: Bucket,
    counters: Counters,
}

/// What the hot path found.
enum Fast {
    /// Permits taken, grant counted.
    Granted,
    /// No permits now for a call that may not wait: refuse it (the key's bucket, for its
    /// counters, and the wait).
    Refused(Arc<KeyBucket>, u64),
    /// The call needs the full decision.
    Decide,
}

/// What a lookup decided.
enum Decided {
    Done(Result<(), Error>),
    Sleep { kb: Arc<KeyBucket>, wait: Duration, tat: u64, inc: u64 },
}

/// One token bucket per key (per host, per shop, per API token), all with the same
/// configuration, in a lock-free map.
///
/// Memory stays bounded without help: a bucket that has been full for `idle_timeout`
/// is identical to a fresh one, so it is dropped. Inserting new keys triggers a sweep
/// each time the map doubles past 1024 entries (amortised O(1) per insert);
/// [`evict_idle`](Self::evict_idle) sweeps on demand. A sweep that leaves at most a
/// quarter of the most keys the map has held moves the live buckets to a right-sized
/// table and gives the old one back (calls never wait for it; a new key's first call
/// may wait for the copy). Looking up an existing key by a
/// borrowed form (`&str` for `String` keys) allocates nothing.
///
/// ```
/// use resilience::rate_limit::{KeyedRateLimiter, OnLimit, RateLimitConfig};
///
/// let config = RateLimitConfig::builder().per_second(2).burst(2).on_limit(OnLimit::Reject).build()?;
/// let per_shop: KeyedRateLimiter = KeyedRateLimiter::new("shops", config);
/// per_shop.try_acquire("a.myshopify.com", 2)?;
/// assert!(per_shop.try_acquire("a.myshopify.com", 1).is_err());
/// per_shop.try_acquire("b.myshopify.com", 1)?; // another bucket
/// assert_eq!(per_shop.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct KeyedRateLimiter<K = String>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    core: Core,
    map: KeyMap<K, Arc<KeyBucket>>,
    sweep_at: AtomicUsize,
    /// The buckets in a state store (`Backend::Redis`, or `with_store`).
    remote: Option<Box<SharedLimit>>,
}

impl<K> fmt::Debug for KeyedRateLimiter<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("name", &self.core.name)
            .field("keys", &self.map.len())
            .finish_non_exhaustive()
    }
}

fn tally<'a>(kb: &'a KeyBucket, totals: &'a Totals) -> Tally<'a> {
    Tally { key: Some(&kb.counters), totals }
}

impl<K> KeyedRateLimiter<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// An empty keyed limiter on the default clock.
    pub fn new(name: impl Into<Arc<str>>, config: RateLimitConfig) -> Self {
        Self::with_clock(name, config, default_clock())
    }

    /// Report events to `hub` instead of the process default (for a registry's instances).
    pub(crate) fn with_hub(mut self, hub: crate::events::Hub) -> Self {
        self.core.hub = hub;
        self
    }

    /// An empty keyed limiter on `clock` (with a shared [`Backend`](crate::Backend), its
    /// buckets come from the process's store; see
    /// [`RateLimiter::with_clock`](super::RateLimiter::with_clock)).
    pub fn with_clock(
        name: impl Into<Arc<str>>,
        config: RateLimitConfig,
        clock: SharedClock,
    ) -> Self {
        let name = name.into();
        KeyedRateLimiter {
            remote: SharedLimit::for_config(&name, &config).map(Box::new),
            core: Core::keyed(name, config, clock),
            map: KeyMap::new(),
            sweep_at: AtomicUsize::new(MIN_SWEEP),
        }
    }

    /// A keyed limiter whose buckets (one per key, told apart by the key's `Debug` form)
    /// live in `store`, shared by every limiter using the same name there; see
    /// [`RateLimiter::with_store`](super::RateLimiter::with_store).
    ///
    /// Errors: a config the store cannot keep.
    pub fn with_store(
        name: impl Into<Arc<str>>,
        config: RateLimitConfig,
        store: &dyn StateStore,
    ) -> Result<Self, ConfigError> {
        let name = name.into();
        Ok(KeyedRateLimiter {
            remote: SharedLimit::in_store(store, &name, &config)?.map(Box::new),
            core: Core::keyed(name, config, default_clock()),
            map: KeyMap::new(),
            sweep_at: AtomicUsize::new(MIN_SWEEP),
        })
    }

    /// Whether the buckets are shared through a state store.
    pub fn is_shared(&self) -> bool {
        self.remote.is_some()
    }

    /// The limiter-wide counters alone (a shared bucket has no local key entry).
    fn totals_only(&self) -> Tally<'_> {
        Tally { key: None, totals: &self.core.totals }
    }

    /// The shared bucket's decision, or `None` to use the local one.
    fn remote_blocking<Q>(&self, key: &Q, cost: u32, may: May) -> Option<Result<(), Error>>
    where
        Q: ?Sized + fmt::Debug,
    {
        let remote = self.remote.as_ref()?;
        let t = self.totals_only();
        match remote.acquire_blocking(&self.core, t, Some(&key), cost, may) {
            Remote::Done(r) => Some(r),
            Remote::Local => None,
        }
    }

    /// The limiter's name.
    pub fn name(&self) -> &Arc<str> {
        &self.core.name
    }

    /// The configuration shared by all keys.
    pub fn config(&self) -> RateLimitConfig {
        self.core.config()
    }

    /// Runs `f` on the bucket of `key`, inserted (full) if missing, and the pinned map
    /// that holds it.
    #[inline]
    fn with_bucket<Q, R>(
        &self,
        key: &Q,
        f: impl FnOnce(&Pinned<'_, K, Arc<KeyBucket>>, &Arc<KeyBucket>) -> R,
    ) -> R
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
        K: Borrow<Q>,
    {
        let fresh = || Arc::new(KeyBucket { bucket: Bucket::new(), counters: Counters::default() });
        let (r, inserted) = self.map.get_or_insert(key, fresh, f);
        if inserted {
            self.maybe_sweep();
        }
        r
    }

    /// Amortised eviction: sweeps when the map has grown to the threshold, then sets the
    /// next threshold to twice what is left (at least [`MIN_SWEEP`]).
    fn maybe_sweep(&self) {
        let at = self.sweep_at.load(Ordering::Acquire);
        if self.map.len() < at {
            return;
        }
        // One sweeper at a time: claim the threshold.
        if self
            .sweep_at
            .compare_exchange(at, usize::MAX, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let removed = self.evict_idle();
        // Twice what this sweep kept of the keys it saw (`at` of them): keys inserted by
        // other threads during the sweep must not raise the threshold, or under a stream
        // of new keys every sweep takes longer and the threshold ratchets up unbounded.
        let next = at.saturating_sub(removed).saturating_mul(2).max(MIN_SWEEP);
        self.sweep_at.store(next, Ordering::Release);
    }

    /// Drops every bucket that has been full for at least `idle_timeout`; returns how
    /// many. Runs on its own as keys are inserted; call it to reclaim memory sooner.
    pub fn evict_idle(&self) -> usize {
        let idle = as_nanos(self.core.config.lock().idle_timeout());
        let now = self.core.now();
        let removed = self.map.retain(|_, kb| !kb.bucket.try_evict(now, idle));
        if removed > 0 {
            tracing::debug!(name = %self.core.name, removed, "rate limit: evicted idle keys");
        }
        removed
    }

    fn decide<Q>(&self, key: &Q, cost: u32, may_wait: bool) -> Decided
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
    {
        loop {
            let decided = self.with_bucket(key, |map, kb| {
                let t = tally(kb, &self.core.totals);
                match self.core.plan(&kb.bucket, t, cost, may_wait, Some(&key)) {
                    Plan::Go => Some(Decided::Done(Ok(()))),
                    Plan::Reject(e) => Some(Decided::Done(Err(e))),
                    Plan::Sleep { wait, tat, inc } => {
                        Some(Decided::Sleep { kb: Arc::clone(kb), wait, tat, inc })
                    }
                    Plan::Evicted => {
                        // Swept under our feet: drop the stale entry if still there, retry.
                        let _ = map.remove_if(key, |_, v| Arc::ptr_eq(v, kb));
                        None
                    }
                }
            });
            if let Some(decided) = decided {
                return decided;
            }
        }
    }

    /// Takes `cost` permits from `key`'s bucket now, or fails with
    /// [`Error::RateLimited`]; never waits. See [`RateLimiter::try_acquire`](super::RateLimiter::try_acquire).
    #[inline]
    pub fn try_acquire<Q>(&self, key: &Q, cost: u32) -> Result<(), Error>
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
    {
        if let Some(r) = self.remote_blocking(key, cost, May::NotWait) {
            return r;
        }
        match self.take_now(key, cost, false) {
            Some(Fast::Granted) => Ok(()),
            Some(Fast::Refused(kb, wait)) => Err(self.refuse(&kb, key, wait)),
            _ => self.try_acquire_slow(key, cost),
        }
    }

    /// The hot path of a call on an existing key, in one lookup: `cost` permits available
    /// now are taken and the grant counted (`Granted`); without `may_wait`, no permits
    /// now is the refusal the full decision would make (`Refused`, nothing counted yet).
    /// `None` or `Decide` (nothing taken, nothing counted) when the call needs the full
    /// decision: a new key, a zero cost or one above the burst, an evicted bucket, or no
    /// permits now for a call that may wait.
    #[inline(always)]
    fn take_now<Q>(&self, key: &Q, cost: u32, may_wait: bool) -> Option<Fast>
    where
        Q: ?Sized + Hash + Eq,
        K: Borrow<Q>,
    {
        let totals = &self.core.totals;
        self.map.get(key, |kb| {
            Some(match self.core.take_now_in::<true>(&kb.bucket, tally(kb, totals), cost) {
                Ok(()) => Fast::Granted,
                Err(Some(wait)) if !may_wait && wait != EVICTED_WAIT => {
                    Fast::Refused(Arc::clone(kb), wait)
                }
                Err(_) => Fast::Decide,
            })
        })
    }

    /// The refusal of a call the hot path found no permit for: counted and reported as
    /// the full decision does.
    #[cold]
    #[inline(never)]
    fn refuse<Q>(&self, kb: &KeyBucket, key: &Q, wait: u64) -> Error
    where
        Q: ?Sized + fmt::Debug,
    {
        self.core.reject_now(tally(kb, &self.core.totals), wait, Some(&key))
    }

    /// `try_acquire` off the hot path.
    #[cold]
    #[inline(never)]
    fn try_acquire_slow<Q>(&self, key: &Q, cost: u32) -> Result<(), Error>
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
    {
        match self.decide(key, cost, false) {
            Decided::Done(r) => r,
            // try_acquire never plans a wait.
            Decided::Sleep { .. } => Ok(()),
        }
    }

    /// Takes `cost` permits from `key`'s bucket, blocking per the policy (the queue
    /// limit `max_queue` applies per key).
    pub fn acquire<Q>(&self, key: &Q, cost: u32) -> Result<(), Error>
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
    {
        if let Some(r) = self.remote_blocking(key, cost, May::Wait) {
            return r;
        }
        if let Some(Fast::Granted) = self.take_now(key, cost, true) {
            return Ok(());
        }
        match self.decide(key, cost, true) {
            Decided::Done(r) => r,
            Decided::Sleep { kb, wait, tat, inc } => {
                let plan = Plan::Sleep { wait, tat, inc };
                self.core.block(plan, tally(&kb, &self.core.totals)).unwrap_or(Ok(()))
            }
        }
    }

    /// Like [`acquire`](Self::acquire), sleeping on tokio's timer. A cancelled waiter
    /// gives its permits back under the same rule as
    /// [`RateLimiter::acquire_async`](super::RateLimiter::acquire_async).
    #[cfg(feature = "tokio")]
    pub async fn acquire_async<Q>(&self, key: &Q, cost: u32) -> Result<(), Error>
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug + Sync,
        K: Borrow<Q>,
    {
        if let Some(remote) = &self.remote {
            let t = self.totals_only();
            let k: &(dyn fmt::Debug + Sync) = &key;
            if let Remote::Done(r) = remote.acquire_async(&self.core, t, Some(k), cost).await {
                return r;
            }
        }
        if let Some(Fast::Granted) = self.take_now(key, cost, true) {
            return Ok(());
        }
        match self.decide(key, cost, true) {
            Decided::Done(r) => r,
            Decided::Sleep { kb, wait, tat, inc } => {
                let t = tally(&kb, &self.core.totals);
                self.core.sleep_async(&kb.bucket, t, wait, tat, inc).await;
                Ok(())
            }
        }
    }

    /// Permits available now to `key` (the burst for an unknown key).
    pub fn available<Q>(&self, key: &Q) -> u32
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
        K: Borrow<Q>,
    {
        let l = self.core.params.load();
        self.map.pinned(|map| match map.get(key) {
            Some(kb) => kb.bucket.available(self.core.now(), l),
            None => l.burst(),
        })
    }

    /// Grants nothing to `key` before clock time `at`; see
    /// [`RateLimiter::pause_until`](super::RateLimiter::pause_until) (on a shared
    /// limiter, `key`'s shared bucket is paused too).
    pub fn pause_until<Q>(&self, key: &Q, at: Duration)
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
    {
        let now = self.core.now();
        self.with_bucket(key, |_, kb| self.core.pause_at(&kb.bucket, now, as_nanos(at)));
        self.pause_shared(key, Duration::from_nanos(as_nanos(at).saturating_sub(now)));
    }

    /// Grants nothing to `key` for `d` (on a shared limiter, in `key`'s shared bucket
    /// too).
    pub fn pause_for<Q>(&self, key: &Q, d: Duration)
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
    {
        self.with_bucket(key, |_, kb| self.core.pause_for(&kb.bucket, d));
        self.pause_shared(key, d);
    }

    fn pause_shared<Q: ?Sized + fmt::Debug>(&self, key: &Q, d: Duration) {
        if let (Some(remote), false) = (&self.remote, d.is_zero()) {
            remote.sync(&self.core, Some(&key), Hold::Pause(d));
        }
    }

    /// Re-syncs `key`'s bucket from response headers, like
    /// [`RateLimiter::sync_from_headers`](super::RateLimiter::sync_from_headers), except
    /// that a Shopify `capacity` is not adopted as the burst (the burst is shared by all
    /// keys): the bucket is set to `capacity - used` permits, at most the burst. On a
    /// shared limiter, `key`'s shared bucket is lowered and paused the same way.
    pub fn sync_from_headers<'h, Q>(
        &self,
        key: &Q,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    ) -> SyncReport
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
    {
        let parsed = Parsed::read(headers, self.core.clock.wall_now());
        let report =
            self.with_bucket(key, |_, kb| self.core.apply_headers(&kb.bucket, parsed, None));
        if let Some(remote) = &self.remote {
            remote.sync_report(&self.core, Some(&key), &report);
        }
        report
    }

    /// Changes the rate of every key, keeping each bucket's available permits.
    pub fn set_rate(&self, rate: Rate) -> Result<(), ConfigError> {
        let config = self.core.config_with_rate(rate)?;
        self.reconfigure(config);
        Ok(())
    }

    /// Installs a new configuration for every key; counters and fill levels are kept.
    pub fn reconfigure(&self, config: RateLimitConfig) {
        let now = self.core.now();
        self.core.install(config, |old, new| {
            self.map.pinned(|map| {
                for kb in map.values() {
                    kb.bucket.rescale(now, old, new);
                }
            });
        });
    }

    /// Keys in memory.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is in memory.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    fn snapshot(
        &self,
        available: u32,
        c: &Counters,
        granted: u64,
        keys: Option<u64>,
    ) -> RateLimiterStats {
        let l = self.core.params.load();
        RateLimiterStats {
            name: self.core.name.to_string(),
            available,
            capacity: l.burst(),
            rate_per_second: self.core.config.lock().rate().per_second_f64(),
            granted,
            waited: c.waited.load(Ordering::Relaxed),
            waiting: c.waiting.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            keys,
        }
    }

    /// Totals over all keys since creation or `reset()` (evicted keys included), with
    /// `keys` set and `available` = the burst a new key starts with.
    pub fn stats(&self) -> RateLimiterStats {
        let burst = self.core.params.load().burst();
        let keys = u64::try_from(self.map.len()).unwrap_or(u64::MAX);
        let totals = &self.core.totals;
        self.snapshot(burst, &totals.counts, totals.granted(), Some(keys))
    }

    /// `key`'s bucket: its available permits and its counters since the bucket was
    /// created (an unknown or evicted key reads as a fresh bucket).
    pub fn stats_for<Q>(&self, key: &Q) -> RateLimiterStats
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
        K: Borrow<Q>,
    {
        self.map.pinned(|map| match map.get(key) {
            Some(kb) => {
                let l = self.core.params.load();
                let available = kb.bucket.available(self.core.now(), l);
                let granted = kb.counters.granted.load(Ordering::Relaxed);
                self.snapshot(available, &kb.counters, granted, None)
            }
            None => self.snapshot(self.core.params.load().burst(), &Counters::default(), 0, None),
        })
    }

    /// Forgets every key and zeroes the counters.
    pub fn reset(&self) {
        self.map.clear();
        self.core.totals.reset();
        self.sweep_at.store(MIN_SWEEP, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::rate_limit::OnLimit;

    fn keyed(burst: u32, on: OnLimit) -> (KeyedRateLimiter, ManualClock) {
        let clock = ManualClock::new();
        let config = RateLimitConfig::builder()
            .per_second(2)
            .burst(burst)
            .on_limit(on)
            .idle_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|e| unreachable!("{e}"));
        (KeyedRateLimiter::with_clock("k", config, clock.shared()), clock)
    }

    #[test]
    fn keys_have_independent_buckets() {
        let (l, _) = keyed(2, OnLimit::Reject);
        assert_eq!(l.try_acquire("a", 2), Ok(()));
        assert!(l.try_acquire("a", 1).is_err());
        assert_eq!(l.available("a"), 0);
        assert_eq!(l.available("b"), 2);
        assert_eq!(l.try_acquire("b", 2), Ok(()));
        let (a, total) = (l.stats_for("a"), l.stats());
        assert_eq!((a.granted, a.rejected), (1, 1));
        assert_eq!((total.granted, total.rejected, total.keys), (2, 1, Some(2)));
    }

    #[test]
    fn calls_on_an_existing_key_are_decided_and_counted_once_on_the_hot_path() {
        let (l, clock) = keyed(2, OnLimit::Reject);
        assert_eq!(l.try_acquire("a", 1), Ok(())); // inserts the key
        assert_eq!(l.try_acquire("a", 1), Ok(())); // existing key, permit left
        // No permit now: refused at once with the exact wait, counted once.
        let err = l.try_acquire("a", 1);
        assert_eq!(err, Err(Error::rate_limited("k", Duration::from_millis(500))));
        // A zero cost is granted; a cost over the burst is a config error.
        assert_eq!(l.try_acquire("a", 0), Ok(()));
        assert!(matches!(l.try_acquire("a", 3), Err(Error::Config(_))));
        let (a, total) = (l.stats_for("a"), l.stats());
        assert_eq!((a.granted, a.rejected), (3, 2));
        assert_eq!((total.granted, total.rejected), (3, 2));
        // `acquire` on an existing key without a permit follows the policy (here:
        // refuses), and with one takes it.
        assert!(l.acquire("a", 1).is_err());
        clock.advance(Duration::from_millis(500));
        assert_eq!(l.acquire("a", 1), Ok(()));
        let a = l.stats_for("a");
        assert_eq!((a.granted, a.rejected, a.available), (4, 3, 0));
    }

    #[test]
    fn wait_sleeps_per_key() {
        let (l, clock) = keyed(1, OnLimit::Wait);
        assert_eq!(l.acquire("a", 1), Ok(()));
        assert_eq!(l.acquire("b", 1), Ok(()));
        assert!(clock.sleeps().is_empty());
        assert_eq!(l.acquire("a", 1), Ok(()));
        assert_eq!(clock.sleeps(), vec![Duration::from_millis(500)]);
    }

    #[test]
    fn evict_idle_drops_only_buckets_full_for_the_idle_timeout() {
        let (l, clock) = keyed(4, OnLimit::Reject);
        for i in 0..10_000 {
            assert_eq!(l.try_acquire(format!("host-{i}").as_str(), 1), Ok(()));
        }
        assert_eq!(l.evict_idle(), 0);
        // Full again after 500 ms; idle for 10 s after that.
        clock.advance(Duration::from_millis(10_499));
        assert_eq!(l.evict_idle(), 0);
        clock.advance(Duration::from_millis(1));
        assert_eq!(l.evict_idle(), 10_000);
        assert_eq!(l.len(), 0);
        assert_eq!(l.stats().granted, 10_000);
    }

    #[test]
    fn eviction_is_amortised_on_insert() {
        let (l, clock) = keyed(4, OnLimit::Reject);
        for round in 0..5 {
            for i in 0..10_000 {
                let _ = l.try_acquire(format!("r{round}-{i}").as_str(), 1);
            }
            clock.advance(Duration::from_secs(11));
            // Never more than twice the live keys plus one round's growth.
            assert!(l.len() <= 2 * 10_000 + MIN_SWEEP, "round {round}: {} keys", l.len());
        }
        assert!(l.len() < 50_000);
    }

    #[test]
    fn an_evicted_bucket_is_replaced_by_a_fresh_one() {
        let (l, clock) = keyed(2, OnLimit::Reject);
        assert_eq!(l.try_acquire("a", 2), Ok(()));
        clock.advance(Duration::from_secs(11));
        assert_eq!(l.evict_idle(), 1);
        assert_eq!(l.try_acquire("a", 2), Ok(()));
        assert!(l.try_acquire("a", 1).is_err());
    }

    #[test]
    fn pause_and_headers_apply_to_one_key() {
        let (l, clock) = keyed(40, OnLimit::Reject);
        l.pause_until("a", Duration::from_secs(5));
        assert!(l.try_acquire("a", 1).is_err());
        assert_eq!(l.try_acquire("b", 1), Ok(()));
        clock.advance(Duration::from_secs(5));
        assert_eq!(l.try_acquire("a", 1), Ok(()));
        let r = l.sync_from_headers("c", [("X-Shopify-Shop-Api-Call-Limit", "30/80")]);
        assert!(r.errors.is_empty());
        // Capacity is not adopted: 50 remaining, clamped to the shared burst of 40.
        assert_eq!(l.available("c"), 40);
        let _ = l.sync_from_headers("c", [("X-Shopify-Shop-Api-Call-Limit", "36/40")]);
        assert_eq!(l.available("c"), 4);
        l.pause_for("c", Duration::from_secs(1));
        assert_eq!(l.available("c"), 0);
    }

    #[test]
    fn set_rate_rescales_every_key() {
        let (l, clock) = keyed(10, OnLimit::Reject);
        assert_eq!(l.try_acquire("a", 6), Ok(()));
        assert_eq!(l.set_rate(Rate::per_second(10)), Ok(()));
        assert_eq!(l.available("a"), 4);
        clock.advance(Duration::from_millis(100));
        assert_eq!(l.available("a"), 5);
    }

    #[test]
    fn keys_of_other_types_work() {
        let clock = ManualClock::new();
        let config = RateLimitConfig::builder().per_second(1).burst(1).on_limit(OnLimit::Reject);
        let config = config.build().unwrap_or_else(|e| unreachable!("{e}"));
        let l: KeyedRateLimiter<u64> = KeyedRateLimiter::with_clock("ids", config, clock.shared());
        assert_eq!(l.try_acquire(&7, 1), Ok(()));
        assert!(l.try_acquire(&7, 1).is_err());
        assert_eq!(l.try_acquire(&8, 1), Ok(()));
        l.reset();
        assert!(l.is_empty());
    }

    #[test]
    fn no_grant_is_lost_or_doubled_across_map_rebuilds() {
        // A frozen clock: each key grants exactly its burst, whichever map generation the
        // calls find, while another thread keeps swapping the map for a fresh copy.
        const KEYS: u64 = 64;
        const BURST: u32 = 5;
        let clock = ManualClock::new();
        let config = RateLimitConfig::builder()
            .per_second(1)
            .burst(BURST)
            .on_limit(OnLimit::Reject)
            .build()
            .unwrap_or_else(|e| unreachable!("{e}"));
        let l: KeyedRateLimiter<u64> = KeyedRateLimiter::with_clock("r", config, clock.shared());
        let granted = std::sync::atomic::AtomicU64::new(0);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let takers: Vec<_> = (0..3)
                .map(|t| {
                    let (l, granted) = (&l, &granted);
                    s.spawn(move || {
                        for round in 0..20 {
                            for i in 0..KEYS {
                                // New keys keep arriving while the map is being swapped.
                                let key = (i * 7 + t + round) % KEYS;
                                if l.try_acquire(&key, 1).is_ok() {
                                    granted.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    })
                })
                .collect();
            let (l, done) = (&l, &done);
            s.spawn(move || {
                let mut rebuilds = 0;
                while !done.load(Ordering::Acquire) || rebuilds < 10 {
                    l.map.rebuild_now();
                    rebuilds += 1;
                }
            });
            for t in takers {
                let _ = t.join();
            }
            done.store(true, Ordering::Release);
        });
        assert_eq!(granted.into_inner(), KEYS * u64::from(BURST));
        assert_eq!(l.len(), usize::try_from(KEYS).unwrap_or(usize::MAX));
        for key in 0..KEYS {
            assert_eq!(l.stats_for(&key).granted, u64::from(BURST), "key {key}");
            assert!(l.try_acquire(&key, 1).is_err());
        }
    }

    #[test]
    fn evicting_most_keys_moves_the_rest_to_a_fresh_map() {
        let (l, clock) = keyed(2, OnLimit::Reject);
        for i in 0..4_000 {
            assert_eq!(l.try_acquire(format!("old-{i}").as_str(), 2), Ok(()));
        }
        clock.advance(Duration::from_secs(11));
        assert_eq!(l.try_acquire("live", 2), Ok(()));
        let before = l.map.generation();
        assert_eq!(l.evict_idle(), 4_000);
        assert_ne!(l.map.generation(), before, "the map was rebuilt");
        assert_eq!(l.len(), 1);
        // The live key kept its empty bucket through the move.
        assert!(l.try_acquire("live", 1).is_err());
        assert_eq!(l.stats().granted, 4_001);
    }

    #[test]
    fn threads_on_a_frozen_clock_get_exactly_the_burst_per_key() {
        let (l, _) = keyed(50, OnLimit::Reject);
        let granted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..4 {
                let (l, granted) = (&l, &granted);
                s.spawn(move || {
                    for i in 0..400 {
                        let key = if (i + t) % 2 == 0 { "a" } else { "b" };
                        if l.try_acquire(key, 1).is_ok() {
                            granted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(granted.into_inner(), 100);
        assert_eq!(l.stats_for("a").granted, 50);
    }
}
