//! [`RetryBudget`]: retries allowed only as a fraction of recent calls.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::ConfigError;
use crate::clock::{SharedClock, as_nanos, default_clock};
use crate::config::{self, LayerConfig, Value};
use crate::error::check;
use crate::registry::Registry;

/// Buckets per window.
const BUCKETS: u64 = 10;
/// Ratios are kept in parts per million, so `0.1 · 10 calls` is exactly one retry.
const PPM: u128 = 1_000_000;
const MAX_MIN_RETRIES_PER_SEC: u32 = 1_000_000;
const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_TTL: Duration = Duration::from_secs(60);

/// The configuration of a [`RetryBudget`].
///
/// ```
/// use resilience::retry::RetryBudgetConfig;
/// use std::time::Duration;
///
/// let c = RetryBudgetConfig::default();
/// assert_eq!(c.ratio(), 0.1);
/// assert_eq!(c.min_retries_per_sec(), 10);
/// assert_eq!(c.ttl(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryBudgetConfig {
    ratio: f64,
    min_retries_per_sec: u32,
    ttl: Duration,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        RetryBudgetConfig { ratio: 0.1, min_retries_per_sec: 10, ttl: Duration::from_secs(10) }
    }
}

impl RetryBudgetConfig {
    /// A builder starting from the defaults (ratio 0.1, 10 retries/s floor, ttl 10 s).
    pub fn builder() -> RetryBudgetConfigBuilder {
        RetryBudgetConfigBuilder { config: RetryBudgetConfig::default() }
    }

    /// Retries allowed per call deposited in the window, in `(0, 1]`.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// Retries per second allowed regardless of traffic (the reserve is this times the
    /// window in seconds).
    pub fn min_retries_per_sec(&self) -> u32 {
        self.min_retries_per_sec
    }

    /// How long a deposit counts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// Builds a [`RetryBudgetConfig`].
#[derive(Debug, Clone)]
pub struct RetryBudgetConfigBuilder {
    config: RetryBudgetConfig,
}

impl RetryBudgetConfigBuilder {
    setters! {
        /// Retries allowed per call, in `(0, 1]` (default 0.1: 10 % extra load at most).
        pub fn ratio(ratio: f64) => self.config.ratio = ratio;

        /// Retries per second always allowed, `0..=1_000_000` (default 10).
        pub fn min_retries_per_sec(n: u32) => self.config.min_retries_per_sec = n;

        /// The window, from 1 s to 60 s (default 10 s).
        pub fn ttl(ttl: Duration) => self.config.ttl = ttl;
    }

    /// Validates and builds.
    pub fn build(self) -> Result<RetryBudgetConfig, ConfigError> {
        let c = self.config;
        if !(c.ratio.is_finite() && c.ratio > 0.0 && c.ratio <= 1.0) {
            return Err(ConfigError::new(
                "ratio",
                format!("must be greater than 0 and at most 1 (got {})", c.ratio),
            ));
        }
        check::at_most("min_retries_per_sec", c.min_retries_per_sec, MAX_MIN_RETRIES_PER_SEC)?;
        check::between("ttl", c.ttl, MIN_TTL, MAX_TTL)?;
        Ok(c)
    }
}

/// The retry budget's keys, for config files and `Deserialize`.
impl LayerConfig for RetryBudgetConfig {
    const LAYER: &'static str = "retry_budget";
    const KEYS: &'static [&'static str] = &["ratio", "min_retries_per_sec", "ttl"];

    fn from_entries(
        base: Option<Self>,
        entries: &[(&str, Value<'_>)],
        _: &Registry,
    ) -> Result<Self, ConfigError> {
        let mut b = RetryBudgetConfigBuilder { config: base.unwrap_or_default() };
        for &(key, value) in entries {
            b = match key {
                "ratio" => b.ratio(value.float(key)?),
                "min_retries_per_sec" => b.min_retries_per_sec(value.count(key)?),
                "ttl" => b.ttl(value.duration(key)?),
                _ => return Err(config::unknown(key, Self::KEYS)),
            };
        }
        b.build()
    }
}

/// A snapshot of a [`RetryBudget`]'s counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RetryBudgetStats {
    /// The budget's name.
    pub name: String,
    /// Calls deposited since creation (or the last reset).
    pub calls: u64,
    /// Retries allowed.
    pub retries: u64,
    /// Retries refused because the budget was empty.
    pub exhausted: u64,
    /// Retries the budget would allow right now.
    pub available: u64,
}

/// A shared allowance of retries.
///
/// Attempt limits bound one call, not a fleet: when a dependency goes down, every caller
/// retrying three times quadruples its load at the worst moment. A budget (Finagle's
/// `RetryBudget`, the Google SRE book's per-client retry ratio) shares one allowance
/// between all the calls that use it: every call deposits, every retry withdraws, and
/// retries stop when the allowance is spent, so a failing dependency sees at most about
/// `1 + ratio` times its normal traffic (plus the `min_retries_per_sec` floor that lets
/// low-traffic clients retry at all).
///
/// The window is time-bucketed: `ttl` is split into 10 buckets, each an atomic counter
/// stamped with its time slot, so deposits and withdrawals take no lock. Calls and
/// retries older than the window (between `0.9·ttl` and `ttl`, by bucket) are forgotten.
///
/// ```
/// use resilience::backoff::Backoff;
/// use resilience::retry::{RetryBudget, RetryBudgetConfig, RetryPolicy};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let config = RetryBudgetConfig::builder().ratio(0.2).min_retries_per_sec(0).build()?;
/// let budget = Arc::new(RetryBudget::new("inventory-api", config));
/// let policy = RetryPolicy::builder()
///     .max_attempts(3)
///     .backoff(Backoff::constant(Duration::ZERO))
///     .budget(budget.clone())
///     .build()?;
///
/// let mut service_calls = 0;
/// for _ in 0..10 {
///     let _ = policy.call(|| {
///         service_calls += 1;
///         Err::<(), _>("down")
///     });
/// }
/// // 10 calls, and retries limited to 20 % of them.
/// assert_eq!(budget.stats().retries, 2);
/// assert_eq!(service_calls, 12);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
pub struct RetryBudget {
    name: Arc<str>,
    clock: SharedClock,
    config: Mutex<RetryBudgetConfig>,
    /// Hot copies of the config.
    ratio_ppm: AtomicU64,
    reserve_ppm: AtomicU64,
    bucket_nanos: AtomicU64,
    deposits: [AtomicU64; BUCKETS as usize],
    withdrawals: [AtomicU64; BUCKETS as usize],
    calls: AtomicU64,
    retries: AtomicU64,
    exhausted: AtomicU64,
}

/// A bucket word: the low 32 bits of the slot number, then a 32-bit count.
fn pack(slot: u64, count: u64) -> u64 {
    (slot << 32) | count.min(u64::from(u32::MAX))
}

fn slot_of(word: u64) -> u64 {
    word >> 32
}

fn count_of(word: u64) -> u64 {
    word & u64::from(u32::MAX)
}

impl RetryBudget {
    /// A budget on the default clock.
    pub fn new(name: impl Into<Arc<str>>, config: RetryBudgetConfig) -> Self {
        Self::with_clock(name, config, default_clock())
    }

    /// A budget reading `clock` (use a `ManualClock` in tests).
    pub fn with_clock(
        name: impl Into<Arc<str>>,
        config: RetryBudgetConfig,
        clock: SharedClock,
    ) -> Self {
        let budget = RetryBudget {
            name: name.into(),
            clock,
            config: Mutex::new(config.clone()),
            ratio_ppm: AtomicU64::new(0),
            reserve_ppm: AtomicU64::new(0),
            bucket_nanos: AtomicU64::new(1),
            deposits: Default::default(),
            withdrawals: Default::default(),
            calls: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
        };
        budget.store_hot(&config);
        budget
    }

    fn store_hot(&self, c: &RetryBudgetConfig) {
        let ratio_ppm = (c.ratio * PPM as f64).round() as u64;
        // min_retries_per_sec · ttl, in millionths of a retry.
        let reserve = u128::from(c.min_retries_per_sec) * c.ttl.as_nanos() / 1_000;
        let bucket = (as_nanos(c.ttl) / BUCKETS).max(1);
        self.ratio_ppm.store(ratio_ppm, Ordering::Relaxed);
        self.reserve_ppm.store(u64::try_from(reserve).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.bucket_nanos.store(bucket, Ordering::Relaxed);
    }

    /// The budget's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current configuration.
    pub fn config(&self) -> RetryBudgetConfig {
        self.config.lock().clone()
    }

    /// Replaces the configuration, keeping the counters. A new `ttl` restarts the window.
    pub fn reconfigure(&self, config: RetryBudgetConfig) {
        let mut current = self.config.lock();
        if current.ttl != config.ttl {
            self.clear_window();
        }
        self.store_hot(&config);
        *current = config;
    }

    /// Empties the window and zeroes the counters.
    pub fn reset(&self) {
        let _guard = self.config.lock();
        self.clear_window();
        self.calls.store(0, Ordering::Relaxed);
        self.retries.store(0, Ordering::Relaxed);
        self.exhausted.store(0, Ordering::Relaxed);
    }

    fn clear_window(&self) {
        for b in self.deposits.iter().chain(self.withdrawals.iter()) {
            b.store(0, Ordering::Release);
        }
    }

    fn current_slot(&self) -> u64 {
        as_nanos(self.clock.now()) / self.bucket_nanos.load(Ordering::Relaxed).max(1)
    }

    /// Records one call (a first attempt). Lock-free.
    pub fn deposit(&self) {
        let slot = self.current_slot();
        self.calls.fetch_add(1, Ordering::Relaxed);
        bump(&self.deposits, slot);
    }

    /// Takes one retry from the budget; `false` (and counted as exhausted) when empty.
    /// Lock-free: the retry is reserved first and given back if it overdraws, so
    /// concurrent callers never overdraw the budget together.
    pub fn try_withdraw(&self) -> bool {
        let slot = self.current_slot();
        bump(&self.withdrawals, slot);
        if self.balance_ppm(slot) >= 0 {
            self.retries.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            unbump(&self.withdrawals, slot);
            self.exhausted.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Reserve + ratio·deposits − withdrawals in the window, in millionths of a retry.
    fn balance_ppm(&self, slot: u64) -> i128 {
        let deposits = window_sum(&self.deposits, slot);
        let withdrawals = window_sum(&self.withdrawals, slot);
        let ratio = u128::from(self.ratio_ppm.load(Ordering::Relaxed));
        let reserve = u128::from(self.reserve_ppm.load(Ordering::Relaxed));
        let credit = reserve.saturating_add(ratio.saturating_mul(u128::from(deposits)));
        let debit = PPM.saturating_mul(u128::from(withdrawals));
        i128::try_from(credit).unwrap_or(i128::MAX) - i128::try_from(debit).unwrap_or(i128::MAX)
    }

    /// A snapshot of the counters and of the retries available now.
    pub fn stats(&self) -> RetryBudgetStats {
        let balance = self.balance_ppm(self.current_slot()).max(0);
        RetryBudgetStats {
            name: self.name.to_string(),
            calls: self.calls.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            exhausted: self.exhausted.load(Ordering::Relaxed),
            available: u64::try_from(balance / PPM as i128).unwrap_or(u64::MAX),
        }
    }
}

/// The bucket that holds `slot` (`slot % BUCKETS` is always a valid index).
fn bucket(buckets: &[AtomicU64; BUCKETS as usize], slot: u64) -> &AtomicU64 {
    &buckets[(slot % BUCKETS) as usize]
}

fn stamp(slot: u64) -> u64 {
    slot & u64::from(u32::MAX)
}

/// Adds one to the bucket of `slot`, restarting it if it holds an older slot.
fn bump(buckets: &[AtomicU64; BUCKETS as usize], slot: u64) {
    let b = bucket(buckets, slot);
    let s = stamp(slot);
    let _ = b.fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
        Some(if slot_of(w) == s { pack(s, count_of(w).saturating_add(1)) } else { pack(s, 1) })
    });
}

/// Removes one from the bucket of `slot` if it still holds that slot.
fn unbump(buckets: &[AtomicU64; BUCKETS as usize], slot: u64) {
    let b = bucket(buckets, slot);
    let s = stamp(slot);
    let _ = b.fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
        (slot_of(w) == s).then(|| pack(s, count_of(w).saturating_sub(1)))
    });
}

/// The sum of the buckets whose stamp is one of the last `BUCKETS` slots up to `slot`.
fn window_sum(buckets: &[AtomicU64; BUCKETS as usize], slot: u64) -> u64 {
    (0..BUCKETS)
        .filter_map(|age| slot.checked_sub(age))
        .map(|s| {
            let w = bucket(buckets, s).load(Ordering::Acquire);
            if slot_of(w) == stamp(s) { count_of(w) } else { 0 }
        })
        .fold(0u64, u64::saturating_add)
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("name", &self.name)
            .field("config", &*self.config.lock())
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn budget(ratio: f64, floor: u32) -> (RetryBudget, ManualClock) {
        let clock = ManualClock::new();
        let config =
            RetryBudgetConfig::builder().ratio(ratio).min_retries_per_sec(floor).build().unwrap();
        (RetryBudget::with_clock("b", config, clock.shared()), clock)
    }

    #[test]
    fn ten_percent_of_deposits() {
        let (b, _) = budget(0.1, 0);
        assert!(!b.try_withdraw(), "nothing deposited, no floor");
        for _ in 0..30 {
            b.deposit();
        }
        assert_eq!(b.stats().available, 3);
        assert!((0..3).all(|_| b.try_withdraw()));
        assert!(!b.try_withdraw());
        let s = b.stats();
        assert_eq!((s.calls, s.retries, s.exhausted, s.available), (30, 3, 2, 0));
    }

    #[test]
    fn floor_allows_retries_without_traffic() {
        let (b, _) = budget(0.1, 2); // 2/s over 10 s = 20
        assert_eq!(b.stats().available, 20);
        assert_eq!((0..25).filter(|_| b.try_withdraw()).count(), 20);
    }

    #[test]
    fn deposits_expire_after_the_window() {
        let (b, clock) = budget(0.5, 0);
        for _ in 0..10 {
            b.deposit();
        }
        assert_eq!(b.stats().available, 5);
        clock.advance(Duration::from_secs(5));
        assert_eq!(b.stats().available, 5, "still inside the 10 s window");
        clock.advance(Duration::from_secs(5));
        assert_eq!(b.stats().available, 0, "all ten deposits are 10 s old");
        assert!(!b.try_withdraw());
    }

    #[test]
    fn withdrawals_expire_too() {
        let (b, clock) = budget(1.0, 0);
        b.deposit();
        assert!(b.try_withdraw());
        clock.advance(Duration::from_secs(11));
        b.deposit();
        assert!(b.try_withdraw(), "the old withdrawal no longer counts");
    }

    #[test]
    fn config_validation() {
        let field = |r: Result<RetryBudgetConfig, ConfigError>| r.unwrap_err().field().to_owned();
        for r in [0.0, -0.1, 1.01, f64::NAN, f64::INFINITY] {
            assert_eq!(field(RetryBudgetConfig::builder().ratio(r).build()), "ratio");
        }
        assert_eq!(
            field(RetryBudgetConfig::builder().min_retries_per_sec(u32::MAX).build()),
            "min_retries_per_sec"
        );
        for t in
            [Duration::ZERO, Duration::from_millis(999), Duration::from_secs(61), Duration::MAX]
        {
            assert_eq!(field(RetryBudgetConfig::builder().ttl(t).build()), "ttl");
        }
        assert!(
            RetryBudgetConfig::builder().ratio(1.0).ttl(Duration::from_secs(60)).build().is_ok()
        );
    }

    #[test]
    fn reconfigure_keeps_counters_and_reset_clears_them() {
        let (b, _) = budget(0.1, 0);
        for _ in 0..10 {
            b.deposit();
        }
        assert!(b.try_withdraw());
        b.reconfigure(
            RetryBudgetConfig::builder().ratio(0.5).min_retries_per_sec(0).build().unwrap(),
        );
        assert_eq!(b.config().ratio(), 0.5);
        let s = b.stats();
        assert_eq!((s.calls, s.retries, s.available), (10, 1, 4));
        b.reset();
        let s = b.stats();
        assert_eq!((s.calls, s.retries, s.exhausted, s.available), (0, 0, 0, 0));
    }

    #[test]
    fn concurrent_withdrawals_never_overdraw() {
        let (b, _) = budget(0.1, 0);
        for _ in 0..1000 {
            b.deposit();
        }
        let granted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if b.try_withdraw() {
                            granted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        // Racing reservations may refuse spuriously near the limit, but never overdraw.
        let granted = granted.load(Ordering::Relaxed);
        assert!(granted <= 100, "{granted}");
        let s = b.stats();
        assert_eq!((s.retries, s.retries + s.exhausted), (granted, 800));
        assert_eq!(s.available, 100 - granted);
    }

    #[test]
    fn concurrent_deposits_are_all_counted() {
        let (b, clock) = budget(1.0, 0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| (0..1000).for_each(|_| b.deposit()));
            }
        });
        assert_eq!(b.stats().calls, 8000);
        assert_eq!(b.stats().available, 8000);
        assert_eq!(clock.now(), Duration::ZERO);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod model {
    //! The bucketed atomics against a plain list of timestamped events.
    use super::*;
    use crate::clock::{Clock, ManualClock};

    struct Reference {
        ratio_ppm: i128,
        reserve_ppm: i128,
        bucket: u64,
        events: Vec<(u64, bool)>, // (slot, is_withdrawal)
    }

    impl Reference {
        fn in_window(&self, now: u64) -> (i128, i128) {
            let cur = now / self.bucket;
            let live = self.events.iter().filter(|(s, _)| *s + BUCKETS > cur);
            live.fold((0, 0), |(d, w), (_, is_w)| if *is_w { (d, w + 1) } else { (d + 1, w) })
        }

        fn balance(&self, now: u64) -> i128 {
            let (d, w) = self.in_window(now);
            self.reserve_ppm + self.ratio_ppm * d - PPM as i128 * w
        }

        fn withdraw(&mut self, now: u64) -> bool {
            let ok = self.balance(now) >= PPM as i128;
            if ok {
                self.events.push((now / self.bucket, true));
            }
            ok
        }
    }

    #[test]
    fn random_operation_sequences_match_the_reference_model() {
        for seed in 0..20 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let ratio = [0.05, 0.1, 0.25, 1.0][rng.usize(0..4)];
            let floor = rng.u32(0..3);
            let ttl = Duration::from_secs(rng.u64(1..=20));
            let config = RetryBudgetConfig::builder()
                .ratio(ratio)
                .min_retries_per_sec(floor)
                .ttl(ttl)
                .build()
                .unwrap();
            let clock = ManualClock::new();
            let budget = RetryBudget::with_clock("m", config, clock.shared());
            let mut reference = Reference {
                ratio_ppm: (ratio * 1e6).round() as i128,
                reserve_ppm: i128::from(floor) * ttl.as_nanos() as i128 / 1000,
                bucket: as_nanos(ttl) / BUCKETS,
                events: Vec::new(),
            };
            for step in 0..1500 {
                let now = as_nanos(clock.now());
                match rng.u8(0..10) {
                    0..=4 => {
                        budget.deposit();
                        reference.events.push((now / reference.bucket, false));
                    }
                    5..=7 => {
                        assert_eq!(
                            budget.try_withdraw(),
                            reference.withdraw(now),
                            "seed {seed} step {step}"
                        );
                    }
                    _ => {
                        clock.advance(Duration::from_millis(rng.u64(0..ttl.as_millis() as u64 / 4)))
                    }
                }
                let expected =
                    (reference.balance(as_nanos(clock.now())).max(0) / PPM as i128) as u64;
                assert_eq!(budget.stats().available, expected, "seed {seed} step {step}");
            }
        }
    }
}
