//! The lock-free core: GCRA in one `AtomicU64`.
//!
//! A bucket stores its *theoretical arrival time* (TAT) in clock nanoseconds. With `T` the
//! time one permit takes to refill and `tau = burst × T`, a call of cost `n` at `now` is
//! allowed when `max(TAT, now) + n·T - now <= tau`, and then moves TAT there. The bucket
//! is full when `TAT <= now`. Permits available: `(now + tau - max(TAT, now)) / T`.
//! A waiter takes a future slot by moving TAT past `now + tau`; it then sleeps
//! `TAT - tau - now`, so waiters are served in the order their CAS succeeded.

use super::config::RateLimitConfig;
use crate::clock::as_nanos;
use crate::sync::{AtomicU64, Ordering, fence, spin_loop};

/// TAT value of a keyed bucket removed from its map: callers that still hold it look it
/// up again.
pub(crate) const EVICTED: u64 = u64::MAX;
/// Largest TAT a live bucket holds (saturating arithmetic stops here).
const MAX_TAT: u64 = u64::MAX - 1;

/// `T` and `tau` in nanoseconds, read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) interval: u64,
    pub(crate) tau: u64,
}

impl Limits {
    pub(crate) fn of(config: &RateLimitConfig) -> Limits {
        let interval = as_nanos(config.rate().interval()).max(1);
        Limits { interval, tau: interval.saturating_mul(u64::from(config.burst())) }
    }

    pub(crate) fn burst(&self) -> u32 {
        u32::try_from(self.tau / self.interval.max(1)).unwrap_or(u32::MAX)
    }

    /// Nanoseconds that `cost` permits take to refill.
    pub(crate) fn cost(&self, cost: u32) -> u64 {
        self.interval.saturating_mul(u64::from(cost))
    }
}

/// [`Limits`] behind a sequence lock: readers never block and never see a torn pair;
/// writers are serialised by the owner's config mutex.
#[derive(Debug)]
pub(crate) struct Params {
    seq: AtomicU64,
    interval: AtomicU64,
    tau: AtomicU64,
}

impl Params {
    pub(crate) fn new(l: Limits) -> Params {
        Params {
            seq: AtomicU64::new(0),
            interval: AtomicU64::new(l.interval),
            tau: AtomicU64::new(l.tau),
        }
    }

    #[inline]
    pub(crate) fn load(&self) -> Limits {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            let interval = self.interval.load(Ordering::Relaxed);
            let tau = self.tau.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            let s2 = self.seq.load(Ordering::Relaxed);
            if s1 == s2 && s1.is_multiple_of(2) {
                return Limits { interval, tau };
            }
            spin_loop();
        }
    }

    /// Callers must hold the owner's config lock (one writer at a time).
    pub(crate) fn store(&self, l: Limits) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.interval.store(l.interval, Ordering::Relaxed);
        self.tau.store(l.tau, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }
}

/// Outcome of [`Bucket::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// Granted after `wait` nanoseconds (0: now); `tat` is the TAT this call set.
    Granted { wait: u64, tat: u64 },
    /// Would have to wait `wait` nanoseconds, more than allowed; nothing consumed.
    Denied { wait: u64 },
    /// The bucket was evicted from its map.
    Evicted,
}

/// One GCRA bucket.
#[derive(Debug)]
pub(crate) struct Bucket {
    tat: AtomicU64,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new() -> Bucket {
        Bucket { tat: AtomicU64::new(0) }
    }

    /// Takes `inc` nanoseconds' worth of permits if the wait is at most `max_wait`
    /// (0: only if available now). Callers ensure `inc <= tau`.
    #[inline]
    pub(crate) fn take(&self, now: u64, inc: u64, tau: u64, max_wait: u64) -> Take {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            if tat == EVICTED {
                return Take::Evicted;
            }
            let new = tat.max(now).saturating_add(inc).min(MAX_TAT);
            let wait = new.saturating_sub(now).saturating_sub(tau);
            if wait > max_wait {
                return Take::Denied { wait };
            }
            match self.tat.compare_exchange_weak(tat, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Take::Granted { wait, tat: new },
                Err(actual) => tat = actual,
            }
        }
    }

    /// Takes `inc` nanoseconds' worth of permits if they are available now; otherwise
    /// `Err(wait)`, nothing consumed. No precondition on `inc` (a cost above the burst is
    /// always refused, since its wait is at least `inc - tau`). With `EVICTABLE` (a keyed
    /// limiter's bucket) an evicted bucket refuses with `Err(u64::MAX)` and keeps its
    /// mark; without it (a direct limiter's bucket, never evicted) there is no check for
    /// the mark.
    #[inline(always)]
    pub(crate) fn take_now<const EVICTABLE: bool>(
        &self,
        now: u64,
        inc: u64,
        tau: u64,
    ) -> Result<(), u64> {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            // Without this check a burst whose `tau` saturates near `u64::MAX` would let
            // the take move the mark down to a live time.
            if EVICTABLE && tat == EVICTED {
                return Err(u64::MAX);
            }
            let new = tat.max(now).saturating_add(inc).min(MAX_TAT);
            let wait = new.saturating_sub(now).saturating_sub(tau);
            if wait > 0 {
                return Err(wait);
            }
            match self.tat.compare_exchange_weak(tat, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }

    /// Gives back a reservation that set TAT to `tat`, if nobody reserved after it.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn give_back(&self, tat: u64, inc: u64) -> bool {
        self.tat
            .compare_exchange(tat, tat.saturating_sub(inc), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whole permits available at `now`.
    pub(crate) fn available(&self, now: u64, l: Limits) -> u32 {
        let tat = self.tat.load(Ordering::Acquire);
        if tat == EVICTED {
            return l.burst();
        }
        let free = now.saturating_add(l.tau).saturating_sub(tat.max(now));
        u32::try_from(free / l.interval.max(1)).unwrap_or(u32::MAX)
    }

    /// Nothing is granted before `at`; at `at` one permit, then one per interval.
    /// A time not after `now` changes nothing.
    pub(crate) fn pause_until(&self, now: u64, at: u64, l: Limits) {
        if at <= now {
            return;
        }
        let target = at.saturating_add(l.tau.saturating_sub(l.interval)).min(MAX_TAT);
        self.update(|tat| Some(tat.max(target)));
    }

    /// Lowers the bucket so that at most `permits` (clamped to the burst) are available
    /// now; raises it only when `exact` (the server's figure is then the only reference,
    /// e.g. right after adopting a new capacity). A server's count lags behind our own
    /// requests still in flight, so adopting a higher figure would hand back permits
    /// already spent; the refill raises the level soon enough.
    pub(crate) fn set_available(&self, now: u64, permits: u64, l: Limits, exact: bool) {
        let free = l.interval.saturating_mul(permits).min(l.tau);
        let target = now.saturating_add(l.tau - free).min(MAX_TAT);
        self.update(|tat| Some(if exact { target } else { tat.max(target) }));
    }

    /// Re-expresses the state under new limits, keeping the available permits (a
    /// negative balance, i.e. reservations or a pause, is kept in permits too).
    pub(crate) fn rescale(&self, now: u64, old: Limits, new: Limits) {
        self.update(|tat| {
            let free_old = i128::from(now) + i128::from(old.tau) - i128::from(tat.max(now));
            let free_new = (free_old * i128::from(new.interval) / i128::from(old.interval.max(1)))
                .min(i128::from(new.tau));
            let target = i128::from(now) + i128::from(new.tau) - free_new;
            Some(u64::try_from(target.clamp(0, i128::from(MAX_TAT))).unwrap_or(MAX_TAT))
        });
    }

    /// Adds `permits` back (at most up to a full bucket): permits taken but not used.
    pub(crate) fn refund(&self, now: u64, permits: u64, l: Limits) {
        let inc = l.interval.saturating_mul(permits);
        self.update(|tat| {
            if tat == EVICTED || tat <= now {
                return None;
            }
            Some(tat.saturating_sub(inc).max(now))
        });
    }

    /// Full, as if new.
    pub(crate) fn reset(&self) {
        self.update(|_| Some(0));
    }

    /// Marks an idle bucket evicted; false if it was used meanwhile.
    pub(crate) fn try_evict(&self, now: u64, idle: u64) -> bool {
        let tat = self.tat.load(Ordering::Acquire);
        tat != EVICTED
            && tat.saturating_add(idle) <= now
            && self.tat.compare_exchange(tat, EVICTED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// CAS loop applying `f` to a live TAT; does nothing on an evicted bucket.
    fn update(&self, mut f: impl FnMut(u64) -> Option<u64>) {
        let _ = self.tat.fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
            if tat == EVICTED { None } else { f(tat) }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    // 2 per second, burst 4.
    const L: Limits = Limits { interval: 500 * MS, tau: 2_000 * MS };

    #[test]
    fn burst_then_refusal_with_exact_wait() {
        let b = Bucket::new();
        let now = 10_000 * MS;
        for _ in 0..4 {
            assert!(matches!(b.take(now, L.interval, L.tau, 0), Take::Granted { wait: 0, .. }));
        }
        assert_eq!(b.take(now, L.interval, L.tau, 0), Take::Denied { wait: 500 * MS });
        assert_eq!(b.available(now + 499 * MS, L), 0);
        assert_eq!(b.available(now + 500 * MS, L), 1);
    }

    #[test]
    fn take_now_grants_the_burst_then_refuses_with_the_wait_and_never_a_cost_over_it() {
        let b = Bucket::new();
        let now = 10_000 * MS;
        assert_eq!(b.take_now::<false>(now, L.tau + 1, L.tau), Err(1));
        for _ in 0..4 {
            assert_eq!(b.take_now::<false>(now, L.interval, L.tau), Ok(()));
        }
        assert_eq!(b.take_now::<false>(now, L.interval, L.tau), Err(500 * MS));
        assert_eq!(b.take_now::<false>(now + 500 * MS, L.interval, L.tau), Ok(()));
        assert_eq!(b.available(now + 500 * MS, L), 0);
    }

    #[test]
    fn take_now_on_an_evicted_bucket_refuses_and_keeps_the_mark_even_with_a_saturated_burst() {
        let b = Bucket::new();
        assert!(b.try_evict(10, 10));
        // A `tau` at the top of the range: the wait computed from the mark would be 0.
        assert_eq!(b.take_now::<true>(10, 1, u64::MAX), Err(u64::MAX));
        assert_eq!(b.take_now::<true>(10, L.interval, L.tau), Err(u64::MAX));
        assert_eq!(b.take(10, 1, u64::MAX, 0), Take::Evicted, "still marked evicted");
        // A live bucket is served as by the unchecked form.
        let live = Bucket::new();
        assert_eq!(live.take_now::<true>(10_000 * MS, L.interval, L.tau), Ok(()));
        assert_eq!(live.available(10_000 * MS, L), 3);
    }

    #[test]
    fn reservation_and_give_back() {
        let b = Bucket::new();
        let now = 10_000 * MS;
        assert!(matches!(b.take(now, L.tau, L.tau, 0), Take::Granted { .. }));
        let tat = now + L.tau + L.interval;
        assert_eq!(b.take(now, L.interval, L.tau, u64::MAX), Take::Granted { wait: 500 * MS, tat });
        assert!(b.give_back(tat, L.interval));
        assert_eq!(b.take(now, L.interval, L.tau, 0), Take::Denied { wait: 500 * MS });
    }

    #[test]
    fn give_back_fails_after_a_later_reservation() {
        let b = Bucket::new();
        let now = 10_000 * MS;
        let _ = b.take(now, L.tau, L.tau, 0);
        let tat = now + L.tau + L.interval;
        assert_eq!(b.take(now, L.interval, L.tau, u64::MAX), Take::Granted { wait: 500 * MS, tat });
        let second = b.take(now, L.interval, L.tau, u64::MAX);
        assert_eq!(second, Take::Granted { wait: 1_000 * MS, tat: tat + L.interval });
        assert!(!b.give_back(tat, L.interval));
    }

    #[test]
    fn rescale_keeps_available_permits() {
        let b = Bucket::new();
        let now = 10_000 * MS;
        let _ = b.take(now, 3 * L.interval, L.tau, 0); // 1 left
        let faster = Limits { interval: 100 * MS, tau: 400 * MS };
        b.rescale(now, L, faster);
        assert_eq!(b.available(now, faster), 1);
        assert_eq!(b.available(now + 100 * MS, faster), 2);
    }

    #[test]
    fn eviction_marks_and_blocks_takes() {
        let b = Bucket::new();
        assert!(!b.try_evict(5, 10));
        assert!(b.try_evict(10, 10));
        assert_eq!(b.take(10, 1, 1, 0), Take::Evicted);
    }

    #[test]
    fn params_round_trip() {
        let p = Params::new(L);
        assert_eq!(p.load(), L);
        let n = Limits { interval: 1, tau: 7 };
        p.store(n);
        assert_eq!(p.load(), n);
        assert_eq!(n.burst(), 7);
    }
}

/// Model checks of the bucket's atomics (`RUSTFLAGS="--cfg resilience_loom" cargo test -p resilience
/// --release --lib loom`): every interleaving of a few threads.
#[cfg(all(test, resilience_loom))]
mod loom_tests {
    use std::sync::Arc;

    use loom::thread;

    use super::*;

    // 1 permit per 10 ns, burst 2.
    const L: Limits = Limits { interval: 10, tau: 20 };
    const NOW: u64 = 100;

    /// `f` on one bucket from three threads at once: what each returned.
    fn on_three_threads<T: Send + 'static>(b: &Arc<Bucket>, f: fn(&Bucket) -> T) -> Vec<T> {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || f(&b))
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    }

    #[test]
    fn loom_concurrent_takes_never_exceed_the_burst() {
        loom::model(|| {
            let b = Arc::new(Bucket::new());
            let outcomes: Vec<Take> = on_three_threads(&b, |b| b.take(NOW, L.interval, L.tau, 0));
            let granted = outcomes.iter().filter(|t| matches!(t, Take::Granted { .. })).count();
            assert_eq!(granted, 2, "exactly the burst is granted: {outcomes:?}");
            // Each grant set a distinct TAT: no two threads took the same permit.
            let mut tats: Vec<u64> = outcomes
                .iter()
                .filter_map(|t| match t {
                    Take::Granted { tat, .. } => Some(*tat),
                    _ => None,
                })
                .collect();
            tats.sort_unstable();
            assert_eq!(tats, [NOW + 10, NOW + 20]);
            assert_eq!(b.available(NOW, L), 0);
        });
    }

    #[test]
    fn loom_concurrent_take_now_never_exceeds_the_burst() {
        loom::model(|| {
            let b = Arc::new(Bucket::new());
            let outcomes: Vec<Result<(), u64>> =
                on_three_threads(&b, |b| b.take_now::<false>(NOW, L.interval, L.tau));
            // Exactly the burst is granted; the refused call waits one interval.
            assert_eq!(outcomes.iter().filter(|t| t.is_ok()).count(), 2, "{outcomes:?}");
            assert!(outcomes.iter().all(|t| matches!(t, Ok(()) | Err(10))), "{outcomes:?}");
            assert_eq!(b.tat.load(Ordering::Acquire), NOW + 20);
        });
    }

    /// A keyed call's hot-path take racing the sweep's eviction of the same idle bucket:
    /// exactly one wins; an evicted bucket keeps its mark (the call then looks the key
    /// up again), a granted one stays live.
    #[test]
    fn loom_keyed_take_now_races_eviction() {
        loom::model(|| {
            let b = Arc::new(Bucket::new());
            let taker = {
                let b = b.clone();
                thread::spawn(move || b.take_now::<true>(NOW, L.interval, L.tau))
            };
            let evicted = b.try_evict(NOW, 0);
            let taken = taker.join().unwrap_or(Err(0));
            let tat = b.tat.load(Ordering::Acquire);
            if evicted {
                assert_eq!(taken, Err(u64::MAX));
                assert_eq!(tat, EVICTED);
            } else {
                assert_eq!(taken, Ok(()));
                assert_eq!(tat, NOW + L.interval);
            }
        });
    }

    #[test]
    fn loom_give_back_races_a_later_reservation() {
        loom::model(|| {
            let b = Arc::new(Bucket::new());
            // Drain the bucket, then reserve one future slot.
            assert!(matches!(b.take(NOW, L.tau, L.tau, 0), Take::Granted { .. }));
            let Take::Granted { tat, .. } = b.take(NOW, L.interval, L.tau, u64::MAX) else {
                unreachable!("a waiter may always reserve")
            };
            let giver = {
                let b = b.clone();
                thread::spawn(move || b.give_back(tat, L.interval))
            };
            let taker = {
                let b = b.clone();
                thread::spawn(move || b.take(NOW, L.interval, L.tau, u64::MAX))
            };
            let gave = giver.join().unwrap_or(false);
            let took = taker.join().unwrap_or(Take::Evicted);
            let Take::Granted { tat: later, wait } = took else {
                unreachable!("a waiter may always reserve: {took:?}")
            };
            // The give-back succeeds only if it ran before the later reservation, which
            // then takes the freed slot; otherwise both slots stay consumed.
            if gave {
                assert_eq!((later, wait), (tat, 10));
            } else {
                assert_eq!((later, wait), (tat + L.interval, 20));
            }
            // Never a double count: TAT is exactly the reservations that remain.
            assert_eq!(b.tat.load(Ordering::Acquire), later);
        });
    }

    #[test]
    fn loom_eviction_and_take_agree() {
        loom::model(|| {
            let b = Arc::new(Bucket::new());
            let evictor = {
                let b = b.clone();
                thread::spawn(move || b.try_evict(NOW, 0))
            };
            let taken = b.take(NOW, L.interval, L.tau, 0);
            let evicted = evictor.join().unwrap_or(false);
            match taken {
                // The take moved TAT past `now`: the bucket is no longer idle, and an
                // eviction that read the old TAT loses its compare-and-swap.
                Take::Granted { .. } => assert!(!evicted),
                Take::Evicted => assert!(evicted),
                Take::Denied { .. } => unreachable!("a full bucket grants"),
            }
        });
    }

    #[test]
    fn loom_params_are_never_torn() {
        loom::model(|| {
            let p = Arc::new(Params::new(L));
            let newer = Limits { interval: 7, tau: 70 };
            let reader = {
                let p = p.clone();
                thread::spawn(move || p.load())
            };
            p.store(newer);
            let seen = reader.join().unwrap_or(Limits { interval: 0, tau: 0 });
            assert!(seen == L || seen == newer, "torn read {seen:?}");
        });
    }
}
