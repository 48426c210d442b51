//! Backoff strategies: infinite iterators of the delays to wait between attempts.
//!
//! A [`Backoff`] is a small `Copy`-cheap description (strategy, initial delay, growth,
//! cap, [`Jitter`]); [`Backoff::iter`] starts a fresh [`BackoffIter`] whose `n`-th item
//! is the delay before retry `n`. Every delay, jitter included, is at most
//! [`Backoff::max_delay`], and the arithmetic saturates: a multiplier of `1e300` or a
//! million retries yields the cap, never an overflow or a panic.
//!
//! Randomness comes from a seedable generator: [`Backoff::iter_seeded`] gives the same
//! sequence every time, so tests assert exact delays.
//!
//! ```
//! use resilience::backoff::{Backoff, Jitter};
//! use std::time::Duration;
//!
//! let ms = Duration::from_millis;
//! let b = Backoff::exponential(ms(100)).with_max_delay(ms(500));
//! let delays: Vec<_> = b.iter().take(5).collect();
//! assert_eq!(delays, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
//!
//! // The default: exponential from 1 s, x2, capped at 60 s, with full jitter.
//! let d = Backoff::default();
//! assert_eq!(d.jitter(), Jitter::Full);
//! assert!(d.iter_seeded(42).take(20).all(|x| x <= Duration::from_secs(60)));
//! ```

mod jitter;

use std::time::Duration;

use fastrand::Rng;

pub use jitter::Jitter;

use crate::ConfigError;
use crate::clock::as_nanos;

/// The cap a constructor sets when the initial delay is below it.
const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(60);

/// The largest accepted `max_delay`: `u64::MAX` nanoseconds (about 584 years).
const LIMIT: Duration = Duration::from_nanos(u64::MAX);

/// How the un-jittered delay grows from one retry to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// Always `initial`.
    Constant,
    /// `initial + step·(n-1)` for retry `n` (the step defaults to `initial`).
    Linear,
    /// `initial · multiplier^(n-1)`.
    Exponential,
    /// `initial · fib(n)`: 1, 1, 2, 3, 5, 8, ... times `initial`.
    Fibonacci,
    /// AWS "decorrelated jitter": `min(cap, U(base, previous·3))`, starting from `base`.
    Decorrelated,
}

/// A backoff strategy: which delays to wait between attempts.
///
/// The named constructors use no jitter (the delays are exactly the ones written) and a
/// `max_delay` of 60 s, or `initial` when that is larger; add randomness with
/// [`Backoff::with_jitter`]. [`Backoff::default()`] is exponential from 1 s, ×2,
/// capped at 60 s, with [`Jitter::Full`].
///
/// The builder-style methods do not validate: [`Backoff::validate`] does, and so does
/// every builder that takes a `Backoff` (an invalid one is never used at run time, but
/// even then the iterator saturates rather than panicking).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    strategy: Strategy,
    initial: Duration,
    step: Duration,
    multiplier: f64,
    max_delay: Duration,
    jitter: Jitter,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::exponential(Duration::from_secs(1)).with_jitter(Jitter::Full)
    }
}

impl Backoff {
    fn with_strategy(strategy: Strategy, initial: Duration) -> Self {
        Backoff {
            strategy,
            initial,
            step: initial,
            multiplier: 2.0,
            max_delay: DEFAULT_MAX_DELAY.max(initial),
            jitter: Jitter::None,
        }
    }

    /// The same delay before every retry. A zero delay (retry at once) is accepted.
    ///
    /// ```
    /// # use resilience::backoff::Backoff;
    /// # use std::time::Duration;
    /// let b = Backoff::constant(Duration::from_millis(250));
    /// assert!(b.iter().take(3).all(|d| d == Duration::from_millis(250)));
    /// ```
    pub fn constant(delay: Duration) -> Self {
        Self::with_strategy(Strategy::Constant, delay)
    }

    /// `initial · n` before retry `n`; change the increment with [`Backoff::with_step`].
    ///
    /// ```
    /// # use resilience::backoff::Backoff;
    /// # use std::time::Duration;
    /// let s = Duration::from_secs;
    /// let b = Backoff::linear(s(1));
    /// assert_eq!(b.iter().take(3).collect::<Vec<_>>(), [s(1), s(2), s(3)]);
    /// let b = b.with_step(s(5));
    /// assert_eq!(b.iter().take(3).collect::<Vec<_>>(), [s(1), s(6), s(11)]);
    /// ```
    pub fn linear(initial: Duration) -> Self {
        Self::with_strategy(Strategy::Linear, initial)
    }

    /// `initial · 2^(n-1)` before retry `n`; change the factor with
    /// [`Backoff::with_multiplier`].
    pub fn exponential(initial: Duration) -> Self {
        Self::with_strategy(Strategy::Exponential, initial)
    }

    /// `initial · fib(n)`: 1, 1, 2, 3, 5, 8, ... times `initial`.
    ///
    /// ```
    /// # use resilience::backoff::Backoff;
    /// # use std::time::Duration;
    /// let s = Duration::from_secs;
    /// let b = Backoff::fibonacci(s(1));
    /// assert_eq!(b.iter().take(6).collect::<Vec<_>>(), [s(1), s(1), s(2), s(3), s(5), s(8)]);
    /// ```
    pub fn fibonacci(initial: Duration) -> Self {
        Self::with_strategy(Strategy::Fibonacci, initial)
    }

    /// AWS "decorrelated jitter": each delay is `min(max_delay, U(base, previous · 3))`,
    /// the first "previous" being `base`. Random by construction; a further
    /// [`Jitter`] is applied on top if set.
    pub fn decorrelated(base: Duration) -> Self {
        Self::with_strategy(Strategy::Decorrelated, base)
    }

    setters! {
        /// The growth factor of [`Backoff::exponential`] (finite, at least 1; ignored by the
        /// other strategies). Huge factors are fine: the delay saturates at `max_delay`.
        pub fn with_multiplier(multiplier: f64) => self.multiplier = multiplier;

        /// The increment of [`Backoff::linear`] (ignored by the other strategies).
        pub fn with_step(step: Duration) => self.step = step;

        /// The largest delay ever produced, applied after jitter.
        pub fn with_max_delay(cap: Duration) => self.max_delay = cap;

        /// How each delay is randomised.
        pub fn with_jitter(jitter: Jitter) => self.jitter = jitter;
    }

    /// Checks the parameters: a positive `initial` (zero is accepted for
    /// [`Backoff::constant`]), a finite `multiplier >= 1`, `initial <= max_delay <=
    /// u64::MAX ns`, and a jitter factor in `[0, 1]`.
    ///
    /// ```
    /// # use resilience::backoff::Backoff;
    /// # use std::time::Duration;
    /// let b = Backoff::exponential(Duration::from_secs(1)).with_multiplier(f64::NAN);
    /// assert_eq!(
    ///     b.validate().unwrap_err().to_string(),
    ///     "invalid `multiplier`: must be a finite number of at least 1 (got NaN)"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.strategy != Strategy::Constant {
            crate::error::check::positive("initial", self.initial)?;
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(ConfigError::new(
                "multiplier",
                format!("must be a finite number of at least 1 (got {})", self.multiplier),
            ));
        }
        crate::error::check::at_most("max_delay", self.max_delay, LIMIT)?;
        if self.max_delay < self.initial {
            return Err(ConfigError::new(
                "max_delay",
                format!(
                    "must be at least the initial delay {:?} (got {:?})",
                    self.initial, self.max_delay
                ),
            ));
        }
        self.jitter.validate()
    }

    /// A fresh iterator with a random seed.
    pub fn iter(&self) -> BackoffIter {
        self.iter_seeded(fastrand::u64(..))
    }

    /// A fresh iterator whose randomness is fully determined by `seed`.
    ///
    /// ```
    /// # use resilience::backoff::Backoff;
    /// let b = Backoff::default();
    /// let a: Vec<_> = b.iter_seeded(9).take(5).collect();
    /// let c: Vec<_> = b.iter_seeded(9).take(5).collect();
    /// assert_eq!(a, c);
    /// ```
    pub fn iter_seeded(&self, seed: u64) -> BackoffIter {
        let cap = as_nanos(self.max_delay);
        let initial = as_nanos(self.initial).min(cap);
        BackoffIter {
            backoff: *self,
            rng: Rng::with_seed(seed),
            cap,
            current: initial,
            next: initial,
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The first delay (the base of [`Backoff::decorrelated`]).
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The increment of [`Backoff::linear`].
    pub fn step(&self) -> Duration {
        self.step
    }

    /// The growth factor of [`Backoff::exponential`].
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// The largest delay ever produced.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The jitter mode.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }
}

/// The delays of a [`Backoff`], one per retry, forever (it never returns `None`).
///
/// Once the un-jittered delay reaches `max_delay` it stays there, so taking millions of
/// items is safe.
#[derive(Debug, Clone)]
pub struct BackoffIter {
    backoff: Backoff,
    rng: Rng,
    cap: u64,
    /// Un-jittered delay of the next item (for decorrelated: the previous delay).
    current: u64,
    /// Fibonacci: the item after `current`.
    next: u64,
}

impl BackoffIter {
    /// The un-jittered delay of the next item, advancing the state.
    fn advance(&mut self) -> u64 {
        let cap = self.cap;
        let now = self.current;
        match self.backoff.strategy {
            Strategy::Constant => now,
            Strategy::Linear => {
                self.current = now.saturating_add(as_nanos(self.backoff.step)).min(cap);
                now
            }
            Strategy::Exponential => {
                self.current = grow(now, self.backoff.multiplier).min(cap);
                now
            }
            Strategy::Fibonacci => {
                self.current = self.next;
                self.next = now.saturating_add(self.next).min(cap);
                now
            }
            Strategy::Decorrelated => {
                let base = as_nanos(self.backoff.initial).min(cap);
                let high = now.saturating_mul(3).max(base);
                let d = self.rng.u64(base..=high).min(cap);
                self.current = d;
                d
            }
        }
    }
}

/// `nanos · multiplier`, saturating; exact for integral multipliers.
fn grow(nanos: u64, multiplier: f64) -> u64 {
    if multiplier.fract() == 0.0 && multiplier >= 1.0 && multiplier < u64::MAX as f64 {
        nanos.saturating_mul(multiplier as u64)
    } else {
        // `as` saturates (and maps NaN to 0, which the caller's `min` keeps at 0).
        (nanos as f64 * multiplier) as u64
    }
}

impl Iterator for BackoffIter {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let d = self.advance();
        let jittered = self.backoff.jitter.apply(d, &mut self.rng).min(self.cap);
        Some(Duration::from_nanos(jittered))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SEED: u64 = 0x5eed;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn take(b: Backoff, n: usize) -> Vec<Duration> {
        b.iter_seeded(SEED).take(n).collect()
    }

    /// The un-jittered sequence `base`, jittered with the same generator calls.
    fn jittered(base: &[u64], jitter: impl Fn(u64, &mut Rng) -> u64, cap: u64) -> Vec<Duration> {
        let mut rng = Rng::with_seed(SEED);
        base.iter().map(|&d| Duration::from_nanos(jitter(d, &mut rng).min(cap))).collect()
    }

    #[test]
    fn constant_sequence() {
        assert_eq!(take(Backoff::constant(ms(30)), 4), [ms(30); 4]);
        assert_eq!(take(Backoff::constant(Duration::ZERO), 2), [Duration::ZERO; 2]);
        assert!(Backoff::constant(Duration::ZERO).validate().is_ok());
    }

    #[test]
    fn linear_sequence_with_default_and_custom_step_and_cap() {
        assert_eq!(take(Backoff::linear(ms(100)), 4), [ms(100), ms(200), ms(300), ms(400)]);
        let b = Backoff::linear(ms(100)).with_step(ms(50)).with_max_delay(ms(220));
        assert_eq!(take(b, 5), [ms(100), ms(150), ms(200), ms(220), ms(220)]);
    }

    #[test]
    fn exponential_sequence_and_cap() {
        let b = Backoff::exponential(ms(100)).with_max_delay(ms(1000));
        assert_eq!(take(b, 6), [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
        let b = Backoff::exponential(ms(10)).with_multiplier(3.0);
        assert_eq!(take(b, 4), [ms(10), ms(30), ms(90), ms(270)]);
        let b = Backoff::exponential(ms(100)).with_multiplier(1.5);
        assert_eq!(take(b, 4), [ms(100), ms(150), ms(225), Duration::from_micros(337_500)]);
    }

    #[test]
    fn fibonacci_sequence_and_cap() {
        let b = Backoff::fibonacci(ms(10)).with_max_delay(ms(60));
        assert_eq!(take(b, 8), [ms(10), ms(10), ms(20), ms(30), ms(50), ms(60), ms(60), ms(60)]);
    }

    #[test]
    fn decorrelated_sequence_matches_the_aws_formula() {
        let (base, cap) = (as_nanos(ms(100)), as_nanos(ms(2000)));
        let mut rng = Rng::with_seed(SEED);
        let mut prev = base;
        let expected: Vec<Duration> = (0..12)
            .map(|_| {
                prev = rng.u64(base..=prev * 3).min(cap);
                Duration::from_nanos(prev)
            })
            .collect();
        let got = take(Backoff::decorrelated(ms(100)).with_max_delay(ms(2000)), 12);
        assert_eq!(got, expected);
        assert!(got.iter().all(|d| *d >= ms(100) && *d <= ms(2000)));
        let capped = take(Backoff::decorrelated(ms(100)).with_max_delay(ms(100)), 3);
        assert_eq!(capped, [ms(100); 3], "a cap equal to the base pins every draw");
    }

    const EXP: [u64; 6] =
        [100_000_000, 200_000_000, 400_000_000, 800_000_000, 1_000_000_000, 1_000_000_000];

    fn exp_with(j: Jitter) -> Vec<Duration> {
        take(Backoff::exponential(ms(100)).with_max_delay(ms(1000)).with_jitter(j), 6)
    }

    #[test]
    fn full_jitter_sequence() {
        let expected = jittered(&EXP, |d, r| r.u64(0..=d), u64::MAX);
        assert_eq!(exp_with(Jitter::Full), expected);
        assert_ne!(expected, EXP.map(Duration::from_nanos), "jitter changes the delays");
    }

    #[test]
    fn equal_jitter_sequence() {
        let expected = jittered(&EXP, |d, r| d / 2 + r.u64(0..=d - d / 2), u64::MAX);
        assert_eq!(exp_with(Jitter::Equal), expected);
    }

    #[test]
    fn proportional_jitter_sequence_is_capped() {
        let cap = 1_000_000_000;
        let f = 0.25;
        let expected =
            jittered(&EXP, |d, r| (d as f64 * ((1.0 - f) + r.f64() * (2.0 * f))) as u64, cap);
        let got = exp_with(Jitter::Proportional(f));
        assert_eq!(got, expected);
        assert!(got.iter().all(|d| *d <= ms(1000)));
    }

    #[test]
    fn ratio_jitter_sequence() {
        let expected = jittered(&EXP, |d, r| (d as f64 * (0.5 + r.f64() * 0.5)) as u64, u64::MAX);
        let got = exp_with(Jitter::Ratio(0.5));
        assert_eq!(got, expected);
        for (g, full) in got.iter().zip(EXP) {
            let full = Duration::from_nanos(full);
            assert!(*g >= full / 2 && *g <= full);
        }
    }

    #[test]
    fn no_jitter_is_the_plain_sequence() {
        assert_eq!(exp_with(Jitter::None), EXP.map(Duration::from_nanos));
    }

    #[test]
    fn same_seed_same_sequence_different_seed_different_sequence() {
        let b = Backoff::default();
        let a: Vec<_> = b.iter_seeded(1).take(10).collect();
        assert_eq!(a, b.iter_seeded(1).take(10).collect::<Vec<_>>());
        assert_ne!(a, b.iter_seeded(2).take(10).collect::<Vec<_>>());
    }

    #[test]
    fn default_is_exponential_1s_x2_cap_60s_full_jitter() {
        let d = Backoff::default();
        assert_eq!(d.strategy(), Strategy::Exponential);
        assert_eq!(d.initial(), Duration::from_secs(1));
        assert_eq!(d.multiplier(), 2.0);
        assert_eq!(d.max_delay(), Duration::from_secs(60));
        assert_eq!(d.jitter(), Jitter::Full);
        assert!(d.validate().is_ok());
    }

    #[test]
    fn huge_multipliers_and_many_attempts_saturate_at_the_cap() {
        let cap = Duration::from_secs(60);
        let b = Backoff::exponential(ms(1)).with_multiplier(1e300);
        assert!(b.validate().is_ok());
        let v = take(b, 4);
        assert_eq!(v, [ms(1), cap, cap, cap]);

        let at_limit = Backoff::exponential(Duration::from_secs(1)).with_max_delay(LIMIT);
        assert!(at_limit.validate().is_ok());
        let last = at_limit.iter_seeded(SEED).nth(100_000);
        assert_eq!(last, Some(LIMIT));

        for b in [
            Backoff::linear(LIMIT / 2).with_max_delay(LIMIT),
            Backoff::fibonacci(LIMIT / 2).with_max_delay(LIMIT),
            Backoff::decorrelated(LIMIT / 2).with_max_delay(LIMIT),
            Backoff::exponential(LIMIT / 2).with_max_delay(LIMIT).with_jitter(Jitter::Equal),
        ] {
            assert!(b.iter_seeded(SEED).take(10_000).all(|d| d <= LIMIT));
        }
    }

    #[test]
    fn validate_rejects_bad_parameters() {
        let s = Duration::from_secs;
        let field = |b: Backoff| b.validate().unwrap_err().field().to_string();
        for m in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.5, 0.0, -2.0] {
            assert_eq!(field(Backoff::exponential(s(1)).with_multiplier(m)), "multiplier");
        }
        assert_eq!(field(Backoff::exponential(Duration::ZERO)), "initial");
        assert_eq!(field(Backoff::linear(s(10)).with_max_delay(s(5))), "max_delay");
        assert_eq!(field(Backoff::exponential(s(1)).with_max_delay(Duration::MAX)), "max_delay");
        assert_eq!(field(Backoff::default().with_jitter(Jitter::Proportional(1.5))), "jitter");
        assert_eq!(
            Backoff::linear(s(10)).with_max_delay(s(5)).validate().unwrap_err().to_string(),
            "invalid `max_delay`: must be at least the initial delay 10s (got 5s)"
        );
    }

    #[test]
    fn constructors_raise_the_default_cap_to_the_initial_delay() {
        let b = Backoff::constant(Duration::from_secs(120));
        assert_eq!(b.max_delay(), Duration::from_secs(120));
        assert!(b.validate().is_ok());
        assert_eq!(Backoff::exponential(ms(5)).max_delay(), DEFAULT_MAX_DELAY);
    }

    #[test]
    fn unvalidated_backoffs_do_not_panic() {
        let b = Backoff::exponential(ms(5)).with_multiplier(f64::NAN).with_max_delay(ms(1));
        assert!(b.iter_seeded(SEED).take(5).all(|d| d <= ms(1)));
        let b = Backoff::decorrelated(ms(10)).with_max_delay(ms(1));
        assert!(b.iter_seeded(SEED).take(5).all(|d| d <= ms(1)));
    }
}
