//! Time as the library sees it: a monotonic clock that tests can control.
//!
//! Every timing decision (breaker recovery, token refill, retry sleeps in blocking code,
//! budget windows) reads a [`Clock`]. Two clocks ship:
//!
//! * The default: [`QuantaClock`] (the CPU's time-stamp counter) with the default
//!   features, or [`MonotonicClock`] with the `test-util` feature or without `quanta`.
//!   [`MonotonicClock`] reads `tokio::time::Instant` with the `tokio` feature, so it
//!   follows tokio's paused clock in tests (`#[tokio::test(start_paused = true)]`,
//!   `tokio::time::advance`); see below for the choice. Blocking sleeps are
//!   `std::thread::sleep`.
//! * [`ManualClock`], for synchronous tests: time moves only when the test advances it,
//!   and a blocking sleep advances it instantly (and is recorded), so a retry loop with
//!   a 30 s backoff runs in microseconds and the test can assert the exact delays.
//!
//! Async drivers always sleep on tokio's timer, so async tests control time with tokio's
//! paused clock and the `test-util` feature.
//!
//! # Production clock vs paused time in tests
//!
//! A rate limiter's `try_acquire` is dominated by its clock read. `std::time::Instant`
//! is a `clock_gettime` call (tens of nanoseconds on some virtual machines); the CPU's
//! time-stamp counter, read through [`QuantaClock`], costs a few (it is what `governor`
//! reads). But only `tokio::time::Instant` follows tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`), and a dependent crate
//! cannot see whether tokio was built with its `test-util` feature. So the choice is made
//! by a feature of this crate, the way tokio makes it:
//!
//! * **Production** (default features, which include `quanta`): the default clock is
//!   [`QuantaClock`]. It does **not** follow tokio's paused clock.
//! * **Tests that pause tokio's clock**: enable this crate's `test-util` feature next to
//!   tokio's, in the dev-dependencies only, so release builds keep the fast clock:
//!
//!   ```toml
//!   [dev-dependencies]
//!   tokio = { version = "1", features = ["test-util", "macros", "rt"] }
//!   resilience = { version = "0.1", features = ["test-util"] }
//!   ```
//!
//!   With `test-util` (or without `quanta`) the default clock is [`MonotonicClock`],
//!   which reads `tokio::time::Instant` and so follows a paused runtime. Cargo enables a
//!   dev-dependency's features only for tests, examples and benches of that package.
//! * A test binary can also pick the clock itself, before any instance is created:
//!   `let _ = resilience::clock::set_default_clock(std::sync::Arc::new(MonotonicClock));`
//!   (the first call in a process wins, so every test of the binary should make it).
//!
//! The trade-off: a test that pauses tokio's clock without either sees the library's
//! time run at wall-clock speed while tokio's stands still, so waits computed by a
//! limiter or breaker do not match `tokio::time::advance`. Synchronous tests are not
//! affected: they pass a [`ManualClock`] (`with_clock`) or install one with
//! [`set_default_clock`].
//!
//! Every instance captures the default clock when it is created (`new`); an instance
//! created before [`set_default_clock`] keeps the clock it captured, and once anything
//! has read the default, [`set_default_clock`] is refused.
//!
//! ```
//! use resilience::clock::{Clock, ManualClock};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new();
//! let start = clock.now();
//! clock.sleep(Duration::from_secs(30)); // returns at once
//! assert_eq!(clock.now() - start, Duration::from_secs(30));
//! assert_eq!(clock.sleeps(), vec![Duration::from_secs(30)]);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

/// A monotonic time source plus a way to block the current thread.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Time elapsed since this clock's fixed epoch. Never goes backwards.
    fn now(&self) -> Duration;

    /// [`now`](Self::now) in whole nanoseconds, saturating at `u64::MAX` (584 years):
    /// what a rate limiter reads on every call. A clock that counts nanoseconds natively
    /// overrides it to skip the round trip through `Duration`; it must agree with `now`.
    ///
    /// ```
    /// use resilience::clock::{Clock, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_micros(1500));
    /// assert_eq!(clock.now_nanos(), 1_500_000);
    /// ```
    #[inline]
    fn now_nanos(&self) -> u64 {
        as_nanos(self.now())
    }

    /// Block the current thread for `duration` (used by the blocking drivers).
    fn sleep(&self, duration: Duration);

    /// Wall-clock time, used to read HTTP dates such as `Retry-After: <date>`.
    fn wall_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A shared, dynamically chosen clock.
pub type SharedClock = Arc<dyn Clock>;

static DEFAULT: OnceLock<SharedClock> = OnceLock::new();

/// The process-wide default clock, shared: [`QuantaClock`] with the default features,
/// [`MonotonicClock`] with the `test-util` feature or without `quanta` (see the
/// [module docs](self)), unless [`set_default_clock`] installed another one first.
///
/// Instances created with `new` capture it at creation.
pub fn default_clock() -> SharedClock {
    default_clock_ref().clone()
}

/// [`default_clock`] without the reference count (for per-call readings).
pub(crate) fn default_clock_ref() -> &'static SharedClock {
    DEFAULT.get_or_init(initial_default)
}

/// The fast clock: production builds with the `quanta` feature.
#[cfg(all(feature = "quanta", not(any(test, feature = "test-util"))))]
fn initial_default() -> SharedClock {
    Arc::new(default_quanta().clone())
}

/// The `QuantaClock` behind the initial default clock (its clones read the same time).
#[cfg(all(feature = "quanta", not(any(test, feature = "test-util"))))]
fn default_quanta() -> &'static QuantaClock {
    static QUANTA: OnceLock<QuantaClock> = OnceLock::new();
    QUANTA.get_or_init(QuantaClock::new)
}

/// The clock a rate limiter reads on every call: the initial default [`QuantaClock`]
/// read directly (inlined, no dynamic call), or any other clock through its trait object.
/// The two read the same time: the first is only a faster path to the same clock.
#[derive(Clone)]
pub(crate) enum ClockRef {
    /// The process's initial default clock.
    #[cfg(all(feature = "quanta", not(any(test, feature = "test-util"))))]
    Quanta(&'static QuantaClock),
    /// Any other clock.
    Dyn(SharedClock),
}

impl fmt::Debug for ClockRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(all(feature = "quanta", not(any(test, feature = "test-util"))))]
            ClockRef::Quanta(q) => q.fmt(f),
            ClockRef::Dyn(c) => c.fmt(f),
        }
    }
}

impl ClockRef {
    /// `clock`, read directly when it is the initial default `QuantaClock`.
    pub(crate) fn of(clock: SharedClock) -> ClockRef {
        #[cfg(all(feature = "quanta", not(any(test, feature = "test-util"))))]
        if !CHOSEN.load(std::sync::atomic::Ordering::Relaxed)
            && Arc::ptr_eq(&clock, default_clock_ref())
        {
            return ClockRef::Quanta(default_quanta());
        }
        ClockRef::Dyn(clock)
    }

    /// [`Clock::now_nanos`].
    #[inline(always)]
    pub(crate) fn now_nanos(&self) -> u64 {
        match self {
            #[cfg(all(feature = "quanta", not(any(test, feature = "test-util"))))]
            ClockRef::Quanta(q) => q.now_nanos(),
            ClockRef::Dyn(c) => c.now_nanos(),
        }
    }

    /// [`Clock::now`].
    pub(crate) fn now(&self) -> Duration {
        match self {
            #[cfg(all(feature = "quanta", not(any(test, feature = "test-util"))))]
            ClockRef::Quanta(q) => q.now(),
            ClockRef::Dyn(c) => c.now(),
        }
    }

    /// [`Clock::sleep`].
    pub(crate) fn sleep(&self, duration: Duration) {
        match self {
            #[cfg(all(feature = "quanta", not(any(test, feature = "test-util"))))]
            ClockRef::Quanta(q) => q.sleep(duration),
            ClockRef::Dyn(c) => c.sleep(duration),
        }
    }

    /// [`Clock::wall_now`].
    pub(crate) fn wall_now(&self) -> SystemTime {
        match self {
            #[cfg(all(feature = "quanta", not(any(test, feature = "test-util"))))]
            ClockRef::Quanta(q) => q.wall_now(),
            ClockRef::Dyn(c) => c.wall_now(),
        }
    }
}

/// The clock that follows tokio's paused clock: the `test-util` feature, this crate's
/// own tests, or no `quanta`.
#[cfg(not(all(feature = "quanta", not(any(test, feature = "test-util")))))]
fn initial_default() -> SharedClock {
    Arc::new(MonotonicClock)
}

/// Makes `clock` the process-wide default, for every instance created with `new` from
/// now on (explicit `with_clock` calls are unaffected).
///
/// The first call wins, and only if it comes before anything has read the default
/// (creating any instance with `new` does): call it at the start of `main`. Otherwise
/// the clock is handed back in `Err` and the default is unchanged.
///
/// Meant for binaries that want another clock than the default: a test binary that
/// pauses tokio's clock without the `test-util` feature installs [`MonotonicClock`],
/// say. See the [module docs](self) for the trade-off.
///
/// ```
/// use resilience::clock::{ManualClock, default_clock, set_default_clock};
///
/// let manual = ManualClock::new();
/// assert!(set_default_clock(manual.shared()).is_ok());
/// // Too late now: the first call won.
/// assert!(set_default_clock(ManualClock::new().shared()).is_err());
/// manual.advance(std::time::Duration::from_secs(5));
/// assert_eq!(default_clock().now(), std::time::Duration::from_secs(5));
/// ```
pub fn set_default_clock(clock: SharedClock) -> Result<(), SharedClock> {
    DEFAULT.set(clock)?;
    CHOSEN.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Whether [`set_default_clock`] chose the default clock.
static CHOSEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The cheapest reading of time for a duration measured in-process (the metrics'
/// whole-call histogram), in nanoseconds: the default clock when [`set_default_clock`]
/// chose one, else [`QuantaClock`] with the `quanta` feature, else the default clock.
#[cfg(feature = "metrics")]
#[inline]
pub(crate) fn cheap_now_nanos() -> u64 {
    #[cfg(feature = "quanta")]
    if !CHOSEN.load(std::sync::atomic::Ordering::Relaxed) {
        static QUANTA: OnceLock<QuantaClock> = OnceLock::new();
        return QUANTA.get_or_init(QuantaClock::new).now_nanos();
    }
    default_clock_ref().now_nanos()
}

/// Saturating conversion of a duration to nanoseconds in a `u64` (584 years).
pub(crate) fn as_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A clock reading `tokio::time::Instant` with the `tokio` feature (so tokio's paused
/// clock drives it in tests), `std::time::Instant` without: the default clock with the
/// `test-util` feature or without `quanta`.
#[derive(Debug, Default, Clone, Copy)]
pub struct MonotonicClock;

fn epoch() -> std::time::Instant {
    // Anchored a day back so that a paused tokio clock whose base predates the first
    // reading never reads as before the epoch.
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(|| {
        let now = std::time::Instant::now();
        [86_400, 3_600, 60, 1]
            .iter()
            .find_map(|s| now.checked_sub(Duration::from_secs(*s)))
            .unwrap_or(now)
    })
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> Duration {
        #[cfg(feature = "tokio")]
        let now = tokio::time::Instant::now().into_std();
        #[cfg(not(feature = "tokio"))]
        let now = std::time::Instant::now();
        now.saturating_duration_since(epoch())
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A clock reading the CPU's time-stamp counter through the [`quanta`] crate (the
/// clock `governor` uses): a few nanoseconds per read where `clock_gettime` can cost
/// tens, and monotonic across threads.
///
/// The default clock with the default features. It does **not** follow tokio's paused
/// clock: tests that pause time enable the `test-util` feature (see the
/// [module docs](self)). Blocking sleeps are `std::thread::sleep`.
///
/// ```
/// use resilience::clock::{Clock, QuantaClock};
///
/// let clock = QuantaClock::new();
/// let t0 = clock.now();
/// assert!(clock.now() >= t0);
/// ```
#[cfg(feature = "quanta")]
#[derive(Debug, Clone)]
pub struct QuantaClock {
    clock: quanta::Clock,
    start: u64,
}

#[cfg(feature = "quanta")]
impl QuantaClock {
    /// A clock whose zero is the moment of this call (calibrates the counter once per
    /// process).
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let start = clock.raw();
        QuantaClock { clock, start }
    }
}

#[cfg(feature = "quanta")]
impl Default for QuantaClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "quanta")]
impl Clock for QuantaClock {
    #[inline]
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        let raw = self.clock.raw();
        self.clock.delta_as_nanos(self.start, raw)
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A clock that moves only when told to; blocking sleeps advance it at once.
///
/// Clones share the same time.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    nanos: AtomicU64,
    wall_base: SystemTime,
    sleeps: Mutex<Vec<Duration>>,
}

impl ManualClock {
    /// A clock at time zero whose wall clock starts at the current system time.
    pub fn new() -> Self {
        Self::with_wall_time(SystemTime::now())
    }

    /// A clock at time zero whose wall clock starts at `wall`.
    pub fn with_wall_time(wall: SystemTime) -> Self {
        ManualClock {
            inner: Arc::new(ManualInner {
                nanos: AtomicU64::new(0),
                wall_base: wall,
                sleeps: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Move time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = as_nanos(by);
        // fetch_update cannot fail with a closure that always returns Some.
        let _ = self
            .inner
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_add(by)));
    }

    /// Every blocking sleep taken on this clock so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.inner.sleeps.lock().clone()
    }

    /// Forget the recorded sleeps.
    pub fn clear_sleeps(&self) {
        self.inner.sleeps.lock().clear();
    }

    /// This clock as a [`SharedClock`].
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock").field("now", &self.now()).finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    fn now_nanos(&self) -> u64 {
        self.inner.nanos.load(Ordering::Acquire)
    }

    fn sleep(&self, duration: Duration) {
        self.inner.sleeps.lock().push(duration);
        self.advance(duration);
    }

    fn wall_now(&self) -> SystemTime {
        self.inner.wall_base.checked_add(self.now()).unwrap_or(self.inner.wall_base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new();
        assert_eq!(c.now(), Duration::ZERO);
        c.advance(Duration::from_millis(250));
        assert_eq!(c.now(), Duration::from_millis(250));
        let clone = c.clone();
        clone.sleep(Duration::from_secs(1));
        assert_eq!(c.now(), Duration::from_millis(1250));
        assert_eq!(c.sleeps(), vec![Duration::from_secs(1)]);
    }

    #[test]
    fn manual_clock_saturates_instead_of_overflowing() {
        let c = ManualClock::new();
        c.advance(Duration::MAX);
        c.advance(Duration::MAX);
        assert_eq!(c.now(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn wall_time_follows_manual_time() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let c = ManualClock::with_wall_time(base);
        c.advance(Duration::from_secs(5));
        assert_eq!(c.wall_now(), base + Duration::from_secs(5));
    }

    #[cfg(feature = "quanta")]
    #[test]
    fn quanta_clock_is_monotonic_and_sleeps_for_real() {
        let c = QuantaClock::new();
        let mut last = c.now();
        for _ in 0..1_000 {
            let t = c.now();
            assert!(t >= last);
            last = t;
        }
        // A blocking sleep returns no earlier than asked, on this clock too (a lower
        // bound only: no wall-clock upper bound is asserted).
        let t0 = c.now();
        c.sleep(Duration::from_millis(1));
        assert!(c.now() - t0 >= Duration::from_micros(900));
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(start_paused = true)]
    async fn monotonic_clock_follows_tokio_paused_time() {
        let c = MonotonicClock;
        let t0 = c.now();
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(c.now() - t0 >= Duration::from_secs(3600));
    }
}
