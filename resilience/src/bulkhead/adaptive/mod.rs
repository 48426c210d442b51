//! Adaptive limits: a bulkhead whose limit follows the dependency's latency.
//!
//! Each released permit is a sample: the time from acquisition to release (the RTT).
//! Samples are summed in atomics into a window; a window closes once it holds as many
//! samples as the limit (about one round trip of calls at the limit; at least 8, and
//! exactly 8 for the first window) or after a second,
//! and its average RTT goes to the [`LimitAlgorithm`], a pure function of the current
//! limit and the window ([`gradient`], [`aimd`], [`vegas`]), under a short lock that the
//! releasing caller only tries to take. The new limit is stored in the atomic the
//! acquisition path already reads, so adapting adds nothing to a free slot's cost but
//! one relaxed load and a clock reading.
//!
//! `rtt_noload`, the latency of the dependency with no queue, is the lowest window
//! average seen since the algorithm was configured.

mod aimd;
mod gradient;
mod vegas;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::BulkheadConfig;

/// How an adaptive bulkhead moves its limit (`adaptive = "gradient"`, `"aimd"` or
/// `"vegas"`).
///
/// All three read the same measurements: the average latency of each window of calls,
/// against `rtt_noload`, the lowest average seen (the dependency's latency with nothing
/// queued). On a dependency that serves `c` calls at a time and queues the rest:
///
/// | algorithm | rule | settles at |
/// |---|---|---|
/// | [`Gradient`](Self::Gradient) | `limit · 1.05 · rtt_noload / rtt + queue`, smoothed (Gradient2) | `1.05 · c + max(1, log10 c)` |
/// | [`Aimd`](Self::Aimd) | `+1` per window, `· 0.9` when `rtt > 1.25 · rtt_noload` | `1.1 · c` to `1.25 · c` |
/// | [`Vegas`](Self::Vegas) | keeps the estimated queue `limit · (1 − rtt_noload / rtt)` between `alpha` and `2 · alpha` | `c + alpha` to `c + 2 · alpha` |
///
/// None of them grows the limit while fewer than half of it are in flight: a dependency
/// that is not kept busy says nothing about how much more it could take.
///
/// ```
/// use resilience::bulkhead::LimitAlgorithm;
///
/// assert_eq!("gradient".parse(), Ok(LimitAlgorithm::Gradient));
/// assert_eq!(LimitAlgorithm::Vegas.as_str(), "vegas");
/// assert!("tcp".parse::<LimitAlgorithm>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[non_exhaustive]
pub enum LimitAlgorithm {
    /// Scales the limit by `rtt_noload / rtt`, plus a small queue allowance, smoothed
    /// (Netflix's Gradient2). The default choice: it tracks capacity closely.
    Gradient,
    /// Additive increase, multiplicative decrease on a latency threshold.
    Aimd,
    /// Keeps the estimated queue at the dependency within bounds (TCP Vegas).
    Vegas,
}

impl LimitAlgorithm {
    /// Every algorithm, with its name in attributes and config files.
    pub(crate) const CHOICES: &'static [(&'static str, LimitAlgorithm)] = &[
        ("gradient", LimitAlgorithm::Gradient),
        ("aimd", LimitAlgorithm::Aimd),
        ("vegas", LimitAlgorithm::Vegas),
    ];

    /// `"gradient"`, `"aimd"` or `"vegas"`: the name attributes and config files use.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitAlgorithm::Gradient => "gradient",
            LimitAlgorithm::Aimd => "aimd",
            LimitAlgorithm::Vegas => "vegas",
        }
    }

    /// The next limit after `window`, within `min..=max`.
    fn next(self, limit: f64, window: &Window, min: u32, max: u32) -> f64 {
        let next = match self {
            LimitAlgorithm::Gradient => gradient::next(limit, window),
            LimitAlgorithm::Aimd => aimd::next(limit, window),
            LimitAlgorithm::Vegas => vegas::next(limit, window),
        };
        // `max` before `min`: a NaN becomes `min`, never a panic.
        next.min(f64::from(max)).max(f64::from(min))
    }
}

impl fmt::Display for LimitAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown [`LimitAlgorithm`] name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLimitAlgorithm(String);

impl fmt::Display for UnknownLimitAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a limit algorithm; use one of gradient, aimd, vegas", self.0)
    }
}

impl std::error::Error for UnknownLimitAlgorithm {}

impl FromStr for LimitAlgorithm {
    type Err = UnknownLimitAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::CHOICES
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, a)| *a)
            .ok_or_else(|| UnknownLimitAlgorithm(s.to_owned()))
    }
}

/// What an adaptive bulkhead has measured (the `adaptive` part of
/// [`BulkheadStats`](super::BulkheadStats)); the current limit is the stats'
/// `max_concurrent`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct AdaptiveStats {
    /// How the limit moves.
    pub algorithm: LimitAlgorithm,
    /// The lowest the limit may go.
    pub min_limit: u32,
    /// The highest the limit may go.
    pub max_limit: u32,
    /// The average latency of the last closed window of calls, if one closed yet.
    pub rtt: Option<Duration>,
    /// The lowest window average seen: the dependency's latency with nothing queued.
    pub rtt_noload: Option<Duration>,
    /// How many times the limit changed, since creation or the last
    /// [`reset`](super::Bulkhead::reset).
    pub limit_changes: u64,
}

/// One closed window of samples: what a [`LimitAlgorithm`] decides on. Latencies in any
/// unit (the same for both), never zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Window {
    /// The lowest window average seen, this one included.
    pub(crate) rtt_noload: f64,
    /// This window's average latency.
    pub(crate) rtt: f64,
    /// The most calls in flight during the window.
    pub(crate) peak_in_flight: u32,
}

impl Window {
    /// Whether fewer than half of `limit` were in flight: the dependency was not kept
    /// busy, so the window says nothing about a higher limit.
    pub(crate) fn app_limited(&self, limit: f64) -> bool {
        f64::from(self.peak_in_flight) * 2.0 < limit
    }
}

/// The fewest samples a window holds (when the limit is lower), and the size of the
/// first window after the algorithm is configured: the first calls see no queue of this
/// bulkhead's making, so they measure `rtt_noload` even when the limit starts too high.
const MIN_SAMPLES: u64 = 8;

/// A window closes after this long even with fewer samples than the limit.
const MAX_WINDOW: Duration = Duration::from_secs(1);

/// The limit changed after a window (what [`Controller::record`] reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Update {
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) rtt: Duration,
    pub(crate) rtt_noload: Duration,
}

/// The algorithm's state, under the controller's lock.
#[derive(Debug)]
struct State {
    algorithm: LimitAlgorithm,
    min: u32,
    max: u32,
    /// The limit with its fraction (the bulkhead enforces it rounded).
    limit: f64,
    /// The lowest window average, in nanoseconds (infinite before the first window).
    rtt_noload: f64,
}

/// The adaptive part of a bulkhead: window accumulators (atomics, touched by each
/// release) and the algorithm's state (locked once per window).
#[derive(Debug)]
pub(crate) struct Controller {
    /// Whether the bulkhead adapts; read on every acquisition (relaxed).
    on: AtomicBool,
    /// When the current window opened, on the bulkhead's clock, in nanoseconds.
    window_start: AtomicU64,
    count: AtomicU64,
    sum_nanos: AtomicU64,
    peak: AtomicU32,
    /// The last closed window's average, in nanoseconds (0: none yet).
    rtt_nanos: AtomicU64,
    changes: AtomicU64,
    state: Mutex<State>,
}

fn nanos(d: Duration) -> u64 {
    crate::clock::as_nanos(d)
}

impl Controller {
    /// A controller that does not adapt until [`configure`](Self::configure)d.
    pub(crate) fn new() -> Self {
        Controller {
            on: AtomicBool::new(false),
            window_start: AtomicU64::new(0),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            peak: AtomicU32::new(0),
            rtt_nanos: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            state: Mutex::new(State {
                algorithm: LimitAlgorithm::Gradient,
                min: 1,
                max: 1,
                limit: 1.0,
                rtt_noload: f64::INFINITY,
            }),
        }
    }

    /// Whether permits should measure their latency.
    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Applies `config` at `now`, storing the limit to enforce in `limit`.
    ///
    /// A fixed config stores `max_concurrent`. An adaptive one keeps the current limit
    /// and measurements (clamped to the new bounds) when the algorithm stays the same,
    /// and starts over from `initial_limit` otherwise.
    pub(crate) fn configure(&self, config: &BulkheadConfig, now: Duration, limit: &AtomicU32) {
        let mut state = self.state.lock();
        let Some(algorithm) = config.adaptive() else {
            self.on.store(false, Ordering::SeqCst);
            limit.store(config.max_concurrent(), Ordering::SeqCst);
            return;
        };
        let (min, max) = (config.min_limit(), config.max_limit());
        let keep = self.on.load(Ordering::SeqCst) && state.algorithm == algorithm;
        let start = if keep { state.limit } else { f64::from(config.initial_limit()) };
        if !keep {
            state.rtt_noload = f64::INFINITY;
            self.rtt_nanos.store(0, Ordering::Relaxed);
            self.open_window(now);
        }
        *state = State {
            algorithm,
            min,
            max,
            limit: start.min(f64::from(max)).max(f64::from(min)),
            rtt_noload: state.rtt_noload,
        };
        limit.store(rounded(state.limit, min, max), Ordering::SeqCst);
        self.on.store(true, Ordering::SeqCst);
    }

    fn open_window(&self, now: Duration) {
        self.window_start.store(nanos(now), Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        self.sum_nanos.store(0, Ordering::Relaxed);
        self.peak.store(0, Ordering::Relaxed);
    }

    /// Records one call that took `rtt` with `in_flight` calls in flight (itself
    /// included), released at `now`. When that closes the window, runs the algorithm
    /// and stores the new limit in `limit`; returns the change, if the enforced limit
    /// changed.
    pub(crate) fn record(
        &self,
        rtt: Duration,
        in_flight: u32,
        now: Duration,
        limit: &AtomicU32,
    ) -> Option<Update> {
        self.sum_nanos.fetch_add(nanos(rtt), Ordering::Relaxed);
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        // A plain load first: the peak rarely moves, and a `fetch_max` is a locked RMW.
        if in_flight > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(in_flight, Ordering::Relaxed);
        }
        let first = self.rtt_nanos.load(Ordering::Relaxed) == 0;
        let size = if first { MIN_SAMPLES } else { u64::from(limit.load(Ordering::Relaxed)) };
        let elapsed = nanos(now).saturating_sub(self.window_start.load(Ordering::Relaxed));
        if count < size.max(MIN_SAMPLES) && elapsed < nanos(MAX_WINDOW) {
            return None;
        }
        // Another releaser is closing this window: this sample goes to the next one.
        let mut state = self.state.try_lock()?;
        let count = self.count.swap(0, Ordering::Relaxed);
        if count == 0 || !self.is_on() {
            return None;
        }
        let sum = self.sum_nanos.swap(0, Ordering::Relaxed);
        let peak = self.peak.swap(0, Ordering::Relaxed);
        self.window_start.store(nanos(now), Ordering::Relaxed);

        let rtt = (sum as f64 / count as f64).max(1.0);
        state.rtt_noload = state.rtt_noload.min(rtt);
        let window = Window { rtt_noload: state.rtt_noload, rtt, peak_in_flight: peak };
        let (min, max) = (state.min, state.max);
        state.limit = state.algorithm.next(state.limit, &window, min, max);
        self.rtt_nanos.store((rtt as u64).max(1), Ordering::Relaxed);

        let from = limit.load(Ordering::SeqCst);
        let to = rounded(state.limit, min, max);
        if to == from {
            return None;
        }
        limit.store(to, Ordering::SeqCst);
        self.changes.fetch_add(1, Ordering::Relaxed);
        Some(Update {
            from,
            to,
            rtt: Duration::from_nanos(rtt as u64),
            rtt_noload: Duration::from_nanos(state.rtt_noload as u64),
        })
    }

    /// The measurements, or `None` for a fixed bulkhead.
    pub(crate) fn stats(&self) -> Option<AdaptiveStats> {
        let state = self.state.lock();
        if !self.is_on() {
            return None;
        }
        let rtt = self.rtt_nanos.load(Ordering::Relaxed);
        Some(AdaptiveStats {
            algorithm: state.algorithm,
            min_limit: state.min,
            max_limit: state.max,
            rtt: (rtt > 0).then(|| Duration::from_nanos(rtt)),
            rtt_noload: state
                .rtt_noload
                .is_finite()
                .then(|| Duration::from_nanos(state.rtt_noload as u64)),
            limit_changes: self.changes.load(Ordering::Relaxed),
        })
    }

    /// Zeroes the count of limit changes (the limit and measurements stay).
    pub(crate) fn reset(&self) {
        self.changes.store(0, Ordering::Relaxed);
    }
}

/// `limit` rounded to a whole number of calls within `min..=max`.
fn rounded(limit: f64, min: u32, max: u32) -> u32 {
    // A float-to-int `as` saturates (and maps NaN to 0), so the clamp below is exact.
    (limit.round() as u32).clamp(min, max.max(min))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(algorithm: LimitAlgorithm, initial: u32) -> BulkheadConfig {
        BulkheadConfig::builder()
            .adaptive(algorithm)
            .initial_limit(initial)
            .min_limit(2)
            .max_limit(100)
            .build()
            .unwrap()
    }

    #[test]
    fn names_round_trip() {
        for (name, algorithm) in LimitAlgorithm::CHOICES {
            assert_eq!(name.parse::<LimitAlgorithm>(), Ok(*algorithm));
            assert_eq!(algorithm.to_string(), *name);
        }
        assert_eq!(
            "tcp".parse::<LimitAlgorithm>().unwrap_err().to_string(),
            "`tcp` is not a limit algorithm; use one of gradient, aimd, vegas"
        );
    }

    #[test]
    fn configure_starts_at_the_initial_limit_and_a_fixed_config_turns_it_off() {
        let c = Controller::new();
        let limit = AtomicU32::new(0);
        c.configure(&config(LimitAlgorithm::Aimd, 8), Duration::ZERO, &limit);
        assert!(c.is_on());
        assert_eq!(limit.load(Ordering::SeqCst), 8);
        let fixed = BulkheadConfig::builder().max_concurrent(5).build().unwrap();
        c.configure(&fixed, Duration::ZERO, &limit);
        assert!(!c.is_on());
        assert_eq!(limit.load(Ordering::SeqCst), 5);
        assert_eq!(c.stats(), None);
    }

    #[test]
    fn a_window_closes_after_limit_samples_and_moves_the_limit() {
        let c = Controller::new();
        let limit = AtomicU32::new(0);
        c.configure(&config(LimitAlgorithm::Aimd, 10), Duration::ZERO, &limit);
        let rtt = Duration::from_millis(10);
        // The first window holds 8 samples whatever the limit.
        for i in 1..8 {
            assert_eq!(c.record(rtt, 10, rtt * i, &limit), None);
        }
        let update = c.record(rtt, 10, rtt * 8, &limit).unwrap();
        assert_eq!((update.from, update.to), (10, 11));
        assert_eq!((update.rtt, update.rtt_noload), (rtt, rtt));
        // The next ones hold as many as the limit: 11.
        for i in 1..11 {
            assert_eq!(c.record(rtt, 11, rtt * (8 + i), &limit), None);
        }
        assert_eq!(c.record(rtt, 11, rtt * 19, &limit).map(|u| u.to), Some(12));
        assert_eq!(limit.load(Ordering::SeqCst), 12);
        let stats = c.stats().unwrap();
        assert_eq!((stats.rtt, stats.rtt_noload, stats.limit_changes), (Some(rtt), Some(rtt), 2));
        c.reset();
        assert_eq!(c.stats().unwrap().limit_changes, 0);
    }

    #[test]
    fn a_window_closes_after_a_second_with_few_samples() {
        let c = Controller::new();
        let limit = AtomicU32::new(0);
        c.configure(&config(LimitAlgorithm::Aimd, 50), Duration::ZERO, &limit);
        let rtt = Duration::from_millis(10);
        assert_eq!(c.record(rtt, 30, Duration::from_millis(999), &limit), None);
        let update = c.record(rtt, 30, MAX_WINDOW, &limit).unwrap();
        assert_eq!((update.from, update.to), (50, 51));
    }

    #[test]
    fn the_limit_stays_within_its_bounds() {
        let c = Controller::new();
        let limit = AtomicU32::new(0);
        c.configure(&config(LimitAlgorithm::Aimd, 500), Duration::ZERO, &limit);
        assert_eq!(limit.load(Ordering::SeqCst), 100, "the initial limit is clamped");
        // Latency growing fast: the limit backs off, down to `min_limit` and no further.
        let mut now = Duration::ZERO;
        for i in 0..2_000u32 {
            now += MAX_WINDOW;
            c.record(Duration::from_millis(10) * (i + 1), 1, now, &limit);
        }
        assert_eq!(limit.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn reconfiguring_the_same_algorithm_keeps_the_limit() {
        let c = Controller::new();
        let limit = AtomicU32::new(0);
        c.configure(&config(LimitAlgorithm::Gradient, 40), Duration::ZERO, &limit);
        c.configure(&config(LimitAlgorithm::Gradient, 10), Duration::ZERO, &limit);
        assert_eq!(limit.load(Ordering::SeqCst), 40);
        c.configure(&config(LimitAlgorithm::Vegas, 10), Duration::ZERO, &limit);
        assert_eq!(limit.load(Ordering::SeqCst), 10);
    }

    proptest::proptest! {
        /// Whatever the measurements, every algorithm returns a limit within its bounds,
        /// and a window at the lowest latency with the limit in flight never lowers it.
        #[test]
        fn every_algorithm_stays_within_bounds(
            limit in 1.0f64..2_000.0,
            rtt_noload in 1.0f64..1e10,
            slowdown in 1.0f64..1e3,
            peak in 0u32..4_000,
            min in 1u32..50,
            span in 0u32..1_000,
        ) {
            let max = min + span;
            let window = Window { rtt_noload, rtt: rtt_noload * slowdown, peak_in_flight: peak };
            let idle = Window { rtt_noload, rtt: rtt_noload, peak_in_flight: limit as u32 };
            for (_, algorithm) in LimitAlgorithm::CHOICES {
                let next = algorithm.next(limit, &window, min, max);
                proptest::prop_assert!(next >= f64::from(min) && next <= f64::from(max));
                let bounded = limit.min(f64::from(max)).max(f64::from(min));
                let grown = algorithm.next(bounded, &idle, min, max);
                proptest::prop_assert!(grown >= bounded, "{algorithm}: {bounded} -> {grown}");
            }
        }
    }

    #[test]
    fn rounding_never_leaves_the_bounds() {
        assert_eq!(rounded(f64::NAN, 3, 9), 3);
        assert_eq!(rounded(f64::INFINITY, 3, 9), 9);
        assert_eq!(rounded(5.5, 3, 9), 6);
    }
}
