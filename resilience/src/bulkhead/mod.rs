//! Bulkheads: a limit on calls in flight.
//!
//! A [`Bulkhead`] lets at most `max_concurrent` calls run at once, so one slow dependency
//! cannot take every thread, connection or task of the process with it. A call that finds
//! the bulkhead full waits up to `max_wait` for a slot, then fails with
//! [`Error::BulkheadFull`] without running.
//!
//! ```
//! use resilience::bulkhead::{Bulkhead, BulkheadConfig};
//! use resilience::Error;
//!
//! let bulkhead = Bulkhead::new("payments", BulkheadConfig::builder().max_concurrent(2).build()?);
//!
//! // The same limit guards every call made through the bulkhead.
//! let total: Result<u32, Error> = bulkhead.call(|| Ok(40 + 2));
//! assert_eq!(total, Ok(42));
//!
//! // Permits can be held by hand; the third caller is turned away.
//! let _a = bulkhead.try_acquire()?;
//! let _b = bulkhead.try_acquire()?;
//! let full = bulkhead.call(|| Ok::<_, Error>(()));
//! assert!(matches!(full, Err(Error::BulkheadFull { max_concurrent: 2, .. })));
//! assert_eq!(bulkhead.stats().rejected, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Waiting
//!
//! With a non-zero [`max_wait`](BulkheadConfig::max_wait), a caller that finds no free
//! slot waits for one:
//!
//! * [`acquire_async`](Bulkhead::acquire_async) (and `call_async`/`run_async`) wait on
//!   tokio's timer, so tokio's paused clock controls the deadline in tests. Dropping the
//!   future cancels the wait and leaves every count as it was.
//! * [`acquire`](Bulkhead::acquire) (and `call`/`run`) block the thread until the
//!   deadline on the bulkhead's [`Clock`](crate::clock::Clock). A released slot wakes
//!   the waiter at once; between releases it re-reads the clock every few milliseconds,
//!   so a [`ManualClock`](crate::clock::ManualClock) advanced by a test ends the wait
//!   without real time passing for the deadline. Do not call the blocking methods from
//!   async code with a non-zero `max_wait`: they would block the executor thread.
//!
//! Under a retry with a [deadline](crate::retry::RetryPolicyBuilder::deadline), a wait
//! never outlasts the deadline of the call: the wait is cut to the time left, and a
//! caller with no time left is refused at once with [`Error::BulkheadFull`].
//!
//! A released slot wakes the longest-waiting caller, but the bulkhead is not strictly
//! fair: a caller that arrives while a slot is free takes it without queueing.
//!
//! # Cost
//!
//! Taking a free slot is one compare-and-swap on an atomic counter; releasing it is one
//! atomic decrement plus a check of the waiter count. Neither locks nor allocates unless
//! some caller is waiting.
//!
//! # Adaptive limit
//!
//! A bulkhead configured with [`adaptive`](BulkheadConfigBuilder::adaptive) (attribute
//! and config key `adaptive = "gradient"`, `"aimd"` or `"vegas"`) moves its limit with
//! the dependency's latency: it grows while calls take about as long as they do with
//! nothing queued, and shrinks when queueing shows, within `min_limit..=max_limit`. Each
//! permit measures its call from acquisition to release on the bulkhead's clock (tokio's
//! paused clock or a [`ManualClock`](crate::clock::ManualClock) drive it in tests), so
//! sync and async callers feed it alike. See [`LimitAlgorithm`] for the rules.
//!
//! ```
//! use resilience::bulkhead::{Bulkhead, BulkheadConfig, LimitAlgorithm};
//! use resilience::clock::ManualClock;
//! use std::time::Duration;
//!
//! let clock = ManualClock::new();
//! let config = BulkheadConfig::builder().adaptive(LimitAlgorithm::Aimd).initial_limit(8).build()?;
//! let bulkhead = Bulkhead::with_clock("search", config, clock.shared());
//! // Eight calls of 10 ms at the limit: a window at the lowest latency grows the limit.
//! let permits: Vec<_> = (0..8).map(|_| bulkhead.try_acquire()).collect::<Result<_, _>>()?;
//! clock.advance(Duration::from_millis(10));
//! drop(permits);
//! let stats = bulkhead.stats();
//! assert_eq!(stats.max_concurrent, 9);
//! assert_eq!(stats.adaptive.and_then(|a| a.rtt), Some(Duration::from_millis(10)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The current limit is the stats' `max_concurrent`; each change is reported as an
//! [`EventKind::LimitChanged`] event (topic [`Interest::LIMITS`]).
//!
//! # Reconfiguring
//!
//! [`Bulkhead::reconfigure`] changes the limit at run time and keeps the counters. Raising
//! it wakes waiting callers at once; lowering it lets the calls in flight finish, and new
//! calls get a slot only once the count has fallen below the new limit.

mod adaptive;
mod config;
mod permit;
mod stats;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use event_listener::{Event, Listener};
use parking_lot::Mutex;

use crate::clock::SharedClock;
use crate::events::{EventKind, Hub, Interest, Layer};
use crate::striped::StripedCounter;
use crate::{Error, Fault};

pub use adaptive::{AdaptiveStats, LimitAlgorithm, UnknownLimitAlgorithm};
pub use config::{BulkheadConfig, BulkheadConfigBuilder};
pub use permit::BulkheadPermit;
pub use stats::BulkheadStats;

/// A named limit on concurrent calls. `Send + Sync`: share it by reference or in an `Arc`.
///
/// See the [module documentation](self) for an example and for how waiting works.
pub struct Bulkhead {
    name: Arc<str>,
    /// The full configuration, read only by `config()` and written by `reconfigure`.
    config: Mutex<BulkheadConfig>,
    /// The limit, read by every acquisition: `config.max_concurrent`, or the adaptive
    /// limit, which `adaptive` moves.
    max_concurrent: AtomicU32,
    /// `config.max_wait` in nanoseconds (at most one day, so it fits).
    max_wait_nanos: AtomicU64,
    in_flight: AtomicU32,
    /// Callers inside a wait. A release notifies `released` only when this is non-zero,
    /// which keeps the release path free of the event's lock.
    waiting: AtomicU64,
    rejected: AtomicU64,
    /// Striped: every call counts here on release (a plain add per thread).
    completed: StripedCounter,
    /// Notified once per released slot (and once per slot added by `reconfigure`).
    released: Event,
    /// Times blocking waits.
    clock: SharedClock,
    /// Where this bulkhead reports its events.
    hub: Hub,
    /// The adaptive limit's measurements and algorithm (idle for a fixed limit).
    adaptive: adaptive::Controller,
}

/// How often a blocked waiter re-reads its clock between release notifications.
const CLOCK_POLL: Duration = Duration::from_millis(5);

impl Bulkhead {
    /// A bulkhead called `name` with `config`.
    pub fn new(name: impl Into<Arc<str>>, config: BulkheadConfig) -> Self {
        Self::with_clock(name, config, crate::clock::default_clock())
    }

    /// Report events to `hub` instead of the process default (for a registry's instances).
    pub(crate) fn with_hub(mut self, hub: Hub) -> Self {
        self.hub = hub;
        self
    }

    /// Report an event of this bulkhead.
    fn report(&self, topic: Interest, kind: impl FnOnce() -> EventKind) {
        self.hub.report(Layer::Bulkhead, &self.name, topic, tracing::Level::DEBUG, || {
            (self.clock.now(), kind())
        });
    }

    /// Like [`Bulkhead::new`], with blocking waits timed on `clock` (see
    /// [Waiting](self#waiting)); async waits always use tokio's timer.
    pub fn with_clock(
        name: impl Into<Arc<str>>,
        config: BulkheadConfig,
        clock: SharedClock,
    ) -> Self {
        let bulkhead = Bulkhead {
            name: name.into(),
            max_concurrent: AtomicU32::new(config.max_concurrent()),
            max_wait_nanos: AtomicU64::new(crate::clock::as_nanos(config.max_wait())),
            in_flight: AtomicU32::new(0),
            waiting: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            completed: StripedCounter::new(),
            released: Event::new(),
            hub: Hub::default(),
            adaptive: adaptive::Controller::new(),
            config: Mutex::new(config),
            clock,
        };
        let config = bulkhead.config.lock().clone();
        bulkhead.adaptive.configure(&config, bulkhead.clock.now(), &bulkhead.max_concurrent);
        bulkhead
    }

    /// The bulkhead's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The current configuration.
    pub fn config(&self) -> BulkheadConfig {
        self.config.lock().clone()
    }

    /// Calls holding a permit right now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// A permit if a slot is free now, else [`Error::BulkheadFull`] (never waits).
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_>, Error> {
        self.try_permit().ok_or_else(|| self.reject())
    }

    /// A permit, blocking the thread up to `max_wait` for a free slot; with a zero
    /// `max_wait` (the default) this is [`try_acquire`](Self::try_acquire).
    ///
    /// The wait uses a real deadline; see [Waiting](self#waiting).
    #[inline]
    pub fn acquire(&self) -> Result<BulkheadPermit<'_>, Error> {
        if let Some(permit) = self.try_permit() {
            return Ok(permit);
        }
        self.acquire_slow()
    }

    /// [`acquire`](Self::acquire) when no slot is free at first look.
    #[cold]
    #[inline(never)]
    fn acquire_slow(&self) -> Result<BulkheadPermit<'_>, Error> {
        let max_wait = crate::deadline::cap(self.max_wait());
        if max_wait.is_zero() {
            return Err(self.reject());
        }
        self.wait_blocking(max_wait).ok_or_else(|| self.reject())
    }

    /// A permit, waiting up to `max_wait` on tokio's timer for a free slot; with a zero
    /// `max_wait` (the default) this is [`try_acquire`](Self::try_acquire).
    ///
    /// Must run inside a tokio runtime with the time driver enabled when it has to wait.
    /// Dropping the future gives up the wait without leaking a slot.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn acquire_async(&self) -> Result<BulkheadPermit<'_>, Error> {
        if let Some(permit) = self.try_permit() {
            return Ok(permit);
        }
        let max_wait = crate::deadline::cap(self.max_wait());
        if max_wait.is_zero() {
            return Err(self.reject());
        }
        let _waiting = Waiting::enter(&self.waiting);
        let start = tokio::time::Instant::now();
        match tokio::time::timeout(max_wait, self.wait_async()).await {
            Ok(permit) => {
                self.report(Interest::WAITS, || EventKind::Waited { waited: start.elapsed() });
                Ok(permit)
            }
            // One last look: a slot freed right at the deadline is still taken.
            Err(_elapsed) => self.try_permit().ok_or_else(|| self.reject()),
        }
    }

    /// Runs `op` while holding a permit ([`acquire`](Self::acquire)); a rejection reaches
    /// the caller as `E::from(Error::BulkheadFull { .. })` and `op` does not run.
    #[inline]
    pub fn call<T, E, F>(&self, op: F) -> Result<T, E>
    where
        E: From<Error>,
        F: FnOnce() -> Result<T, E>,
    {
        let _permit = self.acquire()?;
        op()
    }

    /// Like [`call`](Self::call) for pipelines: a rejection is [`Fault::Rejected`], and
    /// `op`'s own faults pass through unchanged.
    #[inline]
    pub fn run<T, E, F>(&self, op: F) -> Result<T, Fault<E>>
    where
        F: FnOnce() -> Result<T, Fault<E>>,
    {
        let permit = self.acquire()?;
        let result = op();
        permit.release();
        result
    }

    /// Runs the future made by `op` while holding a permit
    /// ([`acquire_async`](Self::acquire_async)); the permit is released when the future
    /// completes or is dropped. The returned future is `Send` when `op` and its future are.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn call_async<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        E: From<Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let _permit = self.acquire_async().await?;
        op().await
    }

    /// Like [`call_async`](Self::call_async) for pipelines: a rejection is
    /// [`Fault::Rejected`].
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn run_async<T, E, F, Fut>(&self, op: F) -> Result<T, Fault<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        let _permit = self.acquire_async().await?;
        op().await
    }

    /// A snapshot of the limit, the gauges and the counters.
    pub fn stats(&self) -> BulkheadStats {
        BulkheadStats {
            name: self.name.to_string(),
            max_concurrent: self.max_concurrent.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            waiting: self.waiting.load(Ordering::SeqCst),
            rejected: self.rejected.load(Ordering::Relaxed),
            completed: self.completed.sum(),
            adaptive: self.adaptive.stats(),
        }
    }

    /// Zeroes the `rejected` and `completed` counters (and an adaptive bulkhead's count
    /// of limit changes). Permits in flight, callers waiting and an adaptive limit with
    /// its measurements are untouched.
    pub fn reset(&self) {
        self.rejected.store(0, Ordering::Relaxed);
        self.completed.reset();
        self.adaptive.reset();
    }

    /// Replaces the configuration, keeping counters and permits in flight.
    ///
    /// Raising `max_concurrent` wakes as many waiting callers as slots were added;
    /// lowering it lets the calls in flight finish (new calls wait or are rejected until
    /// the count falls below the new limit). A new `max_wait` applies to waits that
    /// start afterwards.
    ///
    /// An adaptive config with the same algorithm keeps the current limit and
    /// measurements (brought within the new bounds); switching algorithms, or from a
    /// fixed limit, starts over at `initial_limit`.
    pub fn reconfigure(&self, config: BulkheadConfig) {
        let mut current = self.config.lock();
        let old_max = self.max_concurrent.load(Ordering::SeqCst);
        self.max_wait_nanos.store(crate::clock::as_nanos(config.max_wait()), Ordering::SeqCst);
        self.adaptive.configure(&config, self.clock.now(), &self.max_concurrent);
        let new_max = self.max_concurrent.load(Ordering::SeqCst);
        *current = config;
        drop(current);
        tracing::debug!(name = %self.name, old_max, new_max, "bulkhead reconfigured");
        if new_max > old_max {
            let added = usize::try_from(new_max - old_max).unwrap_or(usize::MAX);
            self.released.notify_additional(added);
        }
    }

    fn max_wait(&self) -> Duration {
        Duration::from_nanos(self.max_wait_nanos.load(Ordering::SeqCst))
    }

    /// The fast path: one CAS when a slot is free, no lock, no allocation.
    #[inline]
    fn try_permit(&self) -> Option<BulkheadPermit<'_>> {
        let max = self.max_concurrent.load(Ordering::SeqCst);
        let mut current = self.in_flight.load(Ordering::SeqCst);
        loop {
            if current >= max {
                return None;
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    // One relaxed load, predictable: only an adaptive limit times calls.
                    let started = self.adaptive.is_on().then(|| self.clock.now());
                    return Some(BulkheadPermit::new(self, started));
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Counts and logs a rejection, returning the error for it.
    #[cold]
    fn reject(&self) -> Error {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let max_concurrent = self.max_concurrent.load(Ordering::SeqCst);
        let reason = "bulkhead full";
        self.report(Interest::REJECTIONS, || EventKind::Rejected { retry_after: None, reason });
        Error::bulkhead_full(self.name.clone(), max_concurrent)
    }

    /// Called by [`BulkheadPermit`]'s drop; `started` is when an adaptive bulkhead
    /// granted the permit. Inlined into the permit's drop: a call through a full stack
    /// of layers otherwise pays a call for it.
    #[inline(always)]
    fn release(&self, started: Option<Duration>) {
        let in_flight = self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.completed.incr();
        // A waiter increments `waiting` before it listens and re-checks `in_flight`; we
        // decrement `in_flight` before reading `waiting` (all SeqCst). So either we see
        // the waiter and notify it, or its re-check sees the freed slot.
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.released.notify_additional(1);
        }
        if let Some(started) = started {
            self.record_rtt(started, in_flight);
        }
    }

    /// Feeds one call's latency to the adaptive limit; a raised limit wakes waiters.
    #[inline(never)]
    fn record_rtt(&self, started: Duration, in_flight: u32) {
        let now = self.clock.now();
        let rtt = now.saturating_sub(started);
        let Some(update) = self.adaptive.record(rtt, in_flight, now, &self.max_concurrent) else {
            return;
        };
        if update.to > update.from && self.waiting.load(Ordering::SeqCst) > 0 {
            let added = usize::try_from(update.to - update.from).unwrap_or(usize::MAX);
            self.released.notify_additional(added);
        }
        self.report(Interest::LIMITS, || EventKind::LimitChanged {
            from: update.from,
            to: update.to,
            rtt: update.rtt,
            rtt_noload: update.rtt_noload,
        });
    }

    /// Blocks until a slot is free or `max_wait` has passed (real time).
    #[cold]
    fn wait_blocking(&self, max_wait: Duration) -> Option<BulkheadPermit<'_>> {
        // The deadline is fixed before the caller shows up as waiting in the stats.
        let start = self.clock.now();
        let deadline = start.saturating_add(max_wait);
        let _waiting = Waiting::enter(&self.waiting);
        loop {
            let listener = self.released.listen();
            if let Some(permit) = self.try_permit() {
                let waited = self.clock.now().saturating_sub(start);
                self.report(Interest::WAITS, || EventKind::Waited { waited });
                return Some(permit);
            }
            let now = self.clock.now();
            if now >= deadline {
                // One last look: a slot freed right at the deadline is still taken.
                return self.try_permit();
            }
            // A release wakes us at once; otherwise re-read the clock after a short slice,
            // so that a clock moved by hand (tests) is noticed.
            let _ = listener.wait_timeout((deadline - now).min(CLOCK_POLL));
        }
    }

    /// Waits (without a deadline) until a slot is free. The caller holds a [`Waiting`].
    #[cfg(feature = "tokio")]
    async fn wait_async(&self) -> BulkheadPermit<'_> {
        loop {
            let listener = self.released.listen();
            if let Some(permit) = self.try_permit() {
                return permit;
            }
            // A listener dropped after being notified (a cancelled waiter) passes the
            // notification on to the next one.
            listener.await;
        }
    }
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.name)
            .field("max_concurrent", &self.max_concurrent.load(Ordering::Relaxed))
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish()
    }
}

/// Counts a caller in `waiting` for as long as it lives (so a cancelled wait uncounts).
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn enter(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Waiting(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn bulkhead(max_concurrent: u32, max_wait: Duration) -> Bulkhead {
        let config = BulkheadConfig::builder()
            .max_concurrent(max_concurrent)
            .max_wait(max_wait)
            .build()
            .unwrap();
        Bulkhead::new("test", config)
    }

    use crate::test_support::AppError;

    #[test]
    fn bulkhead_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Bulkhead>();
        assert_send_sync::<BulkheadPermit<'static>>();
    }

    #[test]
    fn exactly_n_permits_then_bulkhead_full() {
        let b = bulkhead(3, Duration::ZERO);
        let permits: Vec<_> = (0..3).map(|_| b.try_acquire().unwrap()).collect();
        assert_eq!(b.in_flight(), 3);
        assert_eq!(b.try_acquire().unwrap_err(), Error::bulkhead_full("test", 3));
        assert_eq!(b.acquire().unwrap_err(), Error::bulkhead_full("test", 3));
        assert_eq!(b.stats().rejected, 2);
        assert_eq!(permits.len(), 3);
    }

    #[test]
    fn dropping_a_permit_releases_its_slot() {
        let b = bulkhead(1, Duration::ZERO);
        let permit = b.try_acquire().unwrap();
        assert!(b.try_acquire().is_err());
        drop(permit);
        assert_eq!(b.in_flight(), 0);
        assert_eq!(b.stats().completed, 1);
        let again = b.try_acquire().unwrap();
        assert_eq!(again.bulkhead().name().as_ref(), "test");
    }

    #[test]
    fn call_runs_op_under_a_permit_and_releases_it() {
        let b = bulkhead(2, Duration::ZERO);
        let seen = b.call(|| Ok::<_, AppError>(b.in_flight()));
        assert_eq!(seen, Ok(1));
        assert_eq!(b.in_flight(), 0);
        let own = b.call(|| Err::<(), _>(AppError::Own("boom")));
        assert_eq!(own, Err(AppError::Own("boom")));
        assert_eq!(b.stats().completed, 2);
    }

    #[test]
    fn call_rejected_does_not_run_op_and_converts_the_error() {
        let b = bulkhead(1, Duration::ZERO);
        let _held = b.try_acquire().unwrap();
        let mut ran = false;
        let result = b.call(|| {
            ran = true;
            Ok::<_, AppError>(())
        });
        assert!(!ran);
        assert_eq!(result, Err(AppError::Resilience(Error::bulkhead_full("test", 1))));
    }

    #[test]
    fn run_keeps_rejections_apart_from_inner_faults() {
        let b = bulkhead(1, Duration::ZERO);
        let inner = b.run(|| Err::<(), _>(Fault::Inner("db down")));
        assert_eq!(inner, Err(Fault::Inner("db down")));
        let _held = b.try_acquire().unwrap();
        let rejected = b.run(|| Ok::<_, Fault<&str>>(()));
        assert_eq!(rejected, Err(Fault::Rejected(Error::bulkhead_full("test", 1))));
    }

    #[test]
    fn panic_in_op_releases_the_permit() {
        let b = bulkhead(1, Duration::ZERO);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            b.call(|| -> Result<(), Error> { std::panic::resume_unwind(Box::new("op failed")) })
        }));
        assert!(caught.is_err());
        assert_eq!(b.in_flight(), 0);
        assert!(b.try_acquire().is_ok());
    }

    #[test]
    fn blocking_waiter_is_woken_by_release() {
        // The deadline is far away: only a release can end this wait.
        let b = bulkhead(1, Duration::from_secs(3600));
        let held = b.try_acquire().unwrap();
        let (started, waiter_started) = mpsc::channel();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                started.send(()).unwrap();
                b.acquire().map(|p| p.bulkhead().in_flight())
            });
            waiter_started.recv().unwrap();
            while b.stats().waiting == 0 {
                std::thread::yield_now();
            }
            drop(held);
            assert_eq!(waiter.join().unwrap(), Ok(1));
        });
        let stats = b.stats();
        assert_eq!((stats.in_flight, stats.waiting, stats.rejected), (0, 0, 0));
        assert_eq!(stats.completed, 2);
    }

    #[test]
    fn blocking_waiter_is_rejected_when_its_real_deadline_passes() {
        // Blocking waits use a real deadline: 1 ms passes here. Only the result is checked.
        let b = bulkhead(1, Duration::from_millis(1));
        let _held = b.try_acquire().unwrap();
        assert_eq!(b.acquire().unwrap_err(), Error::bulkhead_full("test", 1));
        assert_eq!(b.stats().waiting, 0);
        assert_eq!(b.stats().rejected, 1);
    }

    #[test]
    fn reconfigure_up_wakes_a_blocking_waiter() {
        let b = bulkhead(1, Duration::from_secs(3600));
        let _held = b.try_acquire().unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| b.acquire().map(drop));
            while b.stats().waiting == 0 {
                std::thread::yield_now();
            }
            b.reconfigure(b.config().to_builder().max_concurrent(2).build().unwrap());
            assert_eq!(waiter.join().unwrap(), Ok(()));
        });
        assert_eq!(b.stats().max_concurrent, 2);
    }

    #[test]
    fn reconfigure_down_lets_in_flight_calls_finish_and_keeps_counters() {
        let b = bulkhead(3, Duration::ZERO);
        let mut held: Vec<_> = (0..3).map(|_| b.try_acquire().unwrap()).collect();
        assert!(b.try_acquire().is_err());
        b.reconfigure(BulkheadConfig::builder().max_concurrent(1).build().unwrap());
        assert_eq!(b.in_flight(), 3);
        assert_eq!(b.config().max_concurrent(), 1);
        held.pop();
        assert!(b.try_acquire().is_err(), "2 in flight, limit 1");
        held.pop();
        assert!(b.try_acquire().is_err(), "1 in flight, limit 1");
        held.pop();
        let one = b.try_acquire().unwrap();
        assert!(b.try_acquire().is_err());
        drop(one);
        let stats = b.stats();
        assert_eq!(stats.max_concurrent, 1);
        assert_eq!(stats.rejected, 4);
        assert_eq!(stats.completed, 4);
    }

    #[test]
    fn reset_zeroes_counters_but_not_permits() {
        let b = bulkhead(1, Duration::ZERO);
        drop(b.try_acquire().unwrap());
        let held = b.try_acquire().unwrap();
        assert!(b.try_acquire().is_err());
        b.reset();
        assert_eq!(
            b.stats(),
            BulkheadStats {
                name: "test".into(),
                max_concurrent: 1,
                in_flight: 1,
                waiting: 0,
                rejected: 0,
                completed: 0,
                adaptive: None,
            }
        );
        drop(held);
        assert_eq!(b.stats().completed, 1);
    }

    #[test]
    fn with_clock_builds_the_same_bulkhead() {
        let clock = crate::clock::ManualClock::new().shared();
        let b = Bulkhead::with_clock("db", BulkheadConfig::default(), clock);
        assert_eq!(b.name().as_ref(), "db");
        assert_eq!(b.config(), BulkheadConfig::default());
    }

    #[cfg(feature = "tokio")]
    mod asynchronous {
        use super::*;
        use tokio::task::yield_now;
        use tokio::time::{Instant, advance};

        async fn until_waiting(b: &Bulkhead, n: u64) {
            while b.stats().waiting != n {
                yield_now().await;
            }
        }

        /// A task waiting for a slot of `b`: when it got one (released at once).
        fn spawn_waiter(b: &Arc<Bulkhead>) -> tokio::task::JoinHandle<Result<Instant, Error>> {
            let b = Arc::clone(b);
            tokio::spawn(async move { b.acquire_async().await.map(|_permit| Instant::now()) })
        }

        #[tokio::test(start_paused = true)]
        async fn async_waiter_gets_the_permit_when_one_is_released() {
            let b = Arc::new(bulkhead(1, Duration::from_secs(10)));
            let held = b.try_acquire().unwrap();
            let start = Instant::now();
            let waiter = spawn_waiter(&b);
            until_waiting(&b, 1).await;
            advance(Duration::from_secs(4)).await;
            drop(held);
            let got_at = waiter.await.unwrap().unwrap();
            assert_eq!(got_at - start, Duration::from_secs(4));
            let stats = b.stats();
            assert_eq!(
                (stats.in_flight, stats.waiting, stats.rejected, stats.completed),
                (0, 0, 0, 2)
            );
        }

        #[tokio::test(start_paused = true)]
        async fn async_waiter_is_rejected_when_max_wait_passes() {
            let b = Arc::new(bulkhead(1, Duration::from_secs(10)));
            let _held = b.try_acquire().unwrap();
            let start = Instant::now();
            let waiter = spawn_waiter(&b);
            until_waiting(&b, 1).await;
            advance(Duration::from_millis(9_999)).await;
            for _ in 0..10 {
                yield_now().await;
            }
            assert!(!waiter.is_finished(), "still waiting 1 ms before max_wait");
            advance(Duration::from_millis(1)).await;
            assert_eq!(waiter.await.unwrap(), Err(Error::bulkhead_full("test", 1)));
            assert_eq!(Instant::now() - start, Duration::from_secs(10));
            assert_eq!(b.stats().waiting, 0);
            assert_eq!(b.stats().rejected, 1);
        }

        #[tokio::test(start_paused = true)]
        async fn zero_max_wait_rejects_async_callers_at_once() {
            let b = bulkhead(1, Duration::ZERO);
            let _held = b.try_acquire().unwrap();
            let start = Instant::now();
            assert!(b.acquire_async().await.is_err());
            assert_eq!(Instant::now(), start);
        }

        #[tokio::test(start_paused = true)]
        async fn cancelled_async_waiter_leaves_counts_right() {
            let b = Arc::new(bulkhead(1, Duration::from_secs(10)));
            let held = b.try_acquire().unwrap();
            let waiter = spawn_waiter(&b);
            until_waiting(&b, 1).await;
            waiter.abort();
            assert!(waiter.await.unwrap_err().is_cancelled());
            let stats = b.stats();
            assert_eq!((stats.in_flight, stats.waiting, stats.rejected), (1, 0, 0));
            drop(held);
            assert_eq!(b.in_flight(), 0);
            assert!(b.acquire_async().await.is_ok());
        }

        #[tokio::test(start_paused = true)]
        async fn a_notified_then_cancelled_waiter_passes_the_slot_on() {
            let b = Arc::new(bulkhead(1, Duration::from_secs(10)));
            let held = b.try_acquire().unwrap();
            let first = spawn_waiter(&b);
            until_waiting(&b, 1).await;
            let second = spawn_waiter(&b);
            until_waiting(&b, 2).await;
            let released_at = Instant::now();
            // The release notifies `first` (the oldest waiter), which is cancelled before
            // it runs: its notification must reach `second`.
            drop(held);
            first.abort();
            assert!(first.await.unwrap_err().is_cancelled());
            assert_eq!(second.await.unwrap().unwrap(), released_at);
            assert_eq!(b.stats().waiting, 0);
            assert_eq!(b.stats().rejected, 0);
        }

        #[tokio::test(start_paused = true)]
        async fn reconfigure_up_wakes_async_waiters() {
            let b = Arc::new(bulkhead(1, Duration::from_secs(10)));
            let _held = b.try_acquire().unwrap();
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let b = b.clone();
                    tokio::spawn(async move {
                        let permit = b.acquire_async().await?;
                        let at = Instant::now();
                        // Hold the slot until the test ends.
                        std::mem::forget(permit);
                        Ok::<_, Error>(at)
                    })
                })
                .collect();
            until_waiting(&b, 2).await;
            let raised_at = Instant::now();
            b.reconfigure(b.config().to_builder().max_concurrent(3).build().unwrap());
            for waiter in waiters {
                assert_eq!(waiter.await.unwrap(), Ok(raised_at));
            }
            assert_eq!(b.in_flight(), 3);
        }

        #[tokio::test(start_paused = true)]
        async fn call_async_and_run_async_map_rejections() {
            let b = bulkhead(1, Duration::ZERO);
            let ok = b.call_async(|| async { Ok::<_, AppError>(7) }).await;
            assert_eq!(ok, Ok(7));
            let _held = b.try_acquire().unwrap();
            let rejected = b.call_async(|| async { Ok::<_, AppError>(7) }).await;
            assert_eq!(rejected, Err(AppError::Resilience(Error::bulkhead_full("test", 1))));
            let fault = b.run_async(|| async { Ok::<_, Fault<()>>(7) }).await;
            assert_eq!(fault, Err(Fault::Rejected(Error::bulkhead_full("test", 1))));
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn call_async_future_is_send() {
            let b = Arc::new(bulkhead(2, Duration::from_secs(60)));
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let b = b.clone();
                    tokio::spawn(async move {
                        b.call_async(|| async move {
                            yield_now().await;
                            Ok::<_, Error>(i)
                        })
                        .await
                    })
                })
                .collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap().unwrap();
            }
            assert_eq!(sum, 6);
            assert_eq!(b.stats().completed, 4);
        }
    }
}
