//! [`LatencySketch`]: a bounded, lock-free histogram of recent latencies.
//!
//! Latencies are counted in microseconds in log-linear buckets: 8 linear sub-buckets per
//! power of two, so a bucket is at most 12.5 % wide, from 1 µs to about 9.5 hours (longer
//! latencies count in the last bucket). Two halves of counters take turns: records go to
//! the current half, and after [`WINDOW`] records the older half is cleared and becomes
//! the current one, so a percentile covers between `WINDOW` and `2 × WINDOW` of the most
//! recent records. Memory is fixed (about 2 KiB per sketch).
//!
//! Recording is two atomic adds; at the [`MIN_SAMPLES`]-th record and every [`REFRESH`] records the percentile is recomputed
//! from the counters (a scan of the buckets) and cached in an atomic, which is what a
//! call reads. The clearing of a half races with records landing in it at the same
//! moment: such a record may be lost, which shifts a percentile by a record, never more.

// Without `tokio` there is no driver to record latencies.
#![cfg_attr(not(feature = "tokio"), allow(dead_code))]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Linear sub-buckets per power of two (`2^SUB_BITS`).
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Largest power of two of microseconds kept apart (2^35 µs ≈ 9.5 h).
const MAX_EXP: u32 = 34;
/// Number of buckets: `SUB` exact values, then `SUB` per power of two up to `MAX_EXP`.
pub(crate) const BUCKETS: usize = (SUB + (MAX_EXP as u64 + 1 - SUB_BITS as u64) * SUB) as usize;
/// Records per half of the sketch.
pub(crate) const WINDOW: u64 = 1024;
/// The cached percentile is recomputed every `REFRESH` records.
pub(crate) const REFRESH: u64 = 32;
/// No percentile before this many records.
pub(crate) const MIN_SAMPLES: u64 = 20;
/// The cache's "no value yet".
const NONE: u64 = u64::MAX;

/// The bucket that counts `micros`.
pub(crate) fn bucket_of(micros: u64) -> usize {
    if micros < SUB {
        return micros as usize;
    }
    let exp = (63 - micros.leading_zeros()).min(MAX_EXP);
    if exp == MAX_EXP && micros >> exp > 1 {
        return BUCKETS - 1;
    }
    let sub = (micros >> (exp - SUB_BITS)) & (SUB - 1);
    (SUB + u64::from(exp - SUB_BITS) * SUB + sub) as usize
}

/// The smallest latency, in microseconds, that falls past bucket `index` (every value the
/// bucket counts is below it).
pub(crate) fn upper_bound(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB {
        return index + 1;
    }
    let exp = (index - SUB) / SUB + u64::from(SUB_BITS);
    let sub = (index - SUB) % SUB;
    (SUB + sub + 1) << (exp - u64::from(SUB_BITS))
}

/// A fixed-size histogram of the most recent latencies with a cached percentile.
pub(crate) struct LatencySketch {
    halves: [[AtomicU32; BUCKETS]; 2],
    /// Records since creation (or the last reset); its `WINDOW`-th multiples switch halves.
    recorded: AtomicU64,
    /// The percentile the cache holds, in millionths (95 % is `950_000`).
    quantile_ppm: AtomicU64,
    /// The cached percentile, in microseconds, or [`NONE`].
    cached: AtomicU64,
}

impl LatencySketch {
    /// An empty sketch computing the `quantile` (in `(0, 1)`) of its records.
    pub(crate) fn new(quantile: f64) -> Self {
        let sketch = LatencySketch {
            halves: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU32::new(0))),
            recorded: AtomicU64::new(0),
            quantile_ppm: AtomicU64::new(0),
            cached: AtomicU64::new(NONE),
        };
        sketch.set_quantile(quantile);
        sketch
    }

    /// Compute `quantile` from now on (recomputed at once).
    pub(crate) fn set_quantile(&self, quantile: f64) {
        let ppm = (quantile.clamp(0.0, 1.0) * 1e6).round() as u64;
        self.quantile_ppm.store(ppm, Ordering::Relaxed);
        self.refresh();
    }

    /// Count one latency. Lock-free, no allocation.
    pub(crate) fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let n = self.recorded.fetch_add(1, Ordering::Relaxed);
        let half = &self.halves[((n / WINDOW) % 2) as usize];
        if n > 0 && n.is_multiple_of(WINDOW) {
            // This half holds the records of two windows ago: start it afresh.
            for b in half {
                b.store(0, Ordering::Relaxed);
            }
        }
        half[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        if (n + 1).is_multiple_of(REFRESH) || n + 1 == MIN_SAMPLES {
            self.refresh();
        }
    }

    /// The cached percentile, or `None` before [`MIN_SAMPLES`] records.
    pub(crate) fn percentile(&self) -> Option<Duration> {
        match self.cached.load(Ordering::Relaxed) {
            NONE => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }

    /// Records since creation (or the last reset).
    pub(crate) fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// Forget every record.
    pub(crate) fn reset(&self) {
        for b in self.halves.iter().flatten() {
            b.store(0, Ordering::Relaxed);
        }
        self.recorded.store(0, Ordering::Relaxed);
        self.cached.store(NONE, Ordering::Relaxed);
    }

    /// Recompute the cached percentile from the counters: the upper bound of the bucket
    /// holding the record of rank `⌈q·n⌉`.
    fn refresh(&self) {
        let counts: [u64; BUCKETS] = std::array::from_fn(|i| {
            u64::from(self.halves[0][i].load(Ordering::Relaxed))
                + u64::from(self.halves[1][i].load(Ordering::Relaxed))
        });
        let total: u64 = counts.iter().sum();
        if total < MIN_SAMPLES {
            self.cached.store(NONE, Ordering::Relaxed);
            return;
        }
        let q = self.quantile_ppm.load(Ordering::Relaxed);
        let rank = (u128::from(total) * u128::from(q)).div_ceil(1_000_000).max(1);
        let mut seen = 0u128;
        let mut value = upper_bound(BUCKETS - 1);
        for (i, c) in counts.iter().enumerate() {
            seen += u128::from(*c);
            if seen >= rank {
                value = upper_bound(i);
                break;
            }
        }
        self.cached.store(value, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for LatencySketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencySketch")
            .field("recorded", &self.recorded())
            .field("percentile", &self.percentile())
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_at_most_an_eighth_wide() {
        let mut last = 0;
        for micros in (0..100_000u64).chain([1 << 20, (1 << 30) + 12_345, 1 << 35, u64::MAX]) {
            let b = bucket_of(micros);
            assert!(b < BUCKETS, "{micros}");
            assert!(b >= last, "{micros}");
            last = b;
            if b < BUCKETS - 1 {
                let upper = upper_bound(b);
                assert!(micros < upper, "{micros} < {upper}");
                assert!(upper as f64 <= (micros + 1) as f64 * 1.125 + 1.0, "{micros}: {upper}");
            }
        }
        for i in 0..BUCKETS - 1 {
            assert_eq!(bucket_of(upper_bound(i)), i + 1, "bucket {i}");
        }
    }

    #[test]
    fn percentile_is_the_upper_bound_of_the_bucket_of_its_rank() {
        let sketch = LatencySketch::new(0.95);
        for _ in 0..(MIN_SAMPLES - 1) {
            sketch.record(Duration::from_millis(10));
        }
        sketch.set_quantile(0.95);
        assert_eq!(sketch.percentile(), None, "too few records");
        let sketch = LatencySketch::new(0.95);
        // 95 fast calls and 5 slow ones: the 95th is fast, the 96th slow.
        for i in 0..100 {
            let ms = if i % 20 == 0 { 1_000 } else { 10 };
            sketch.record(Duration::from_millis(ms));
        }
        sketch.set_quantile(0.95);
        let p95 = sketch.percentile().unwrap();
        assert!(p95 > Duration::from_millis(10) && p95 <= Duration::from_micros(11_264), "{p95:?}");
        sketch.set_quantile(0.96);
        let p96 = sketch.percentile().unwrap();
        assert!(p96 > Duration::from_secs(1) && p96 <= Duration::from_millis(1_125), "{p96:?}");
    }

    #[test]
    fn old_records_leave_after_two_windows() {
        let sketch = LatencySketch::new(0.5);
        for _ in 0..WINDOW {
            sketch.record(Duration::from_secs(1));
        }
        for _ in 0..WINDOW {
            sketch.record(Duration::from_millis(1));
        }
        let median = sketch.percentile().unwrap();
        assert!(median <= Duration::from_millis(2), "half slow, half fast: {median:?}");
        sketch.record(Duration::from_millis(1));
        sketch.set_quantile(0.99);
        assert!(
            sketch.percentile().unwrap() <= Duration::from_millis(2),
            "the slow window was cleared"
        );
        sketch.reset();
        assert_eq!((sketch.recorded(), sketch.percentile()), (0, None));
    }

    #[test]
    fn random_latencies_match_the_exact_percentile_of_a_sorted_list() {
        for seed in 0..30 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let q = [0.5, 0.9, 0.95, 0.99][rng.usize(0..4)];
            let sketch = LatencySketch::new(q);
            let n = rng.usize(MIN_SAMPLES as usize..WINDOW as usize);
            let mut exact: Vec<u64> = (0..n)
                .map(|_| match rng.u8(0..3) {
                    0 => rng.u64(0..100),
                    1 => rng.u64(1_000..20_000),
                    _ => rng.u64(500_000..2_000_000),
                })
                .collect();
            for &micros in &exact {
                sketch.record(Duration::from_micros(micros));
            }
            sketch.set_quantile(q);
            exact.sort_unstable();
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            let want = exact[rank - 1];
            let got = u64::try_from(sketch.percentile().unwrap().as_micros()).unwrap();
            assert!(got > want, "seed {seed}: {got} > {want}");
            assert!(got as f64 <= (want + 1) as f64 * 1.125 + 1.0, "seed {seed}: {got} vs {want}");
        }
    }

    proptest::proptest! {
        /// Any latencies within one window, any quantile: the sketch's percentile is the
        /// upper bound of the bucket holding the exact percentile's record, so above it
        /// by at most one bucket's width (an eighth), never below it.
        #[test]
        fn any_latencies_bound_the_exact_percentile_within_a_bucket(
            latencies in proptest::collection::vec(0u64..10_000_000, MIN_SAMPLES as usize..WINDOW as usize),
            q in 0.01f64..0.999,
        ) {
            let sketch = LatencySketch::new(q);
            for &micros in &latencies {
                sketch.record(Duration::from_micros(micros));
            }
            sketch.set_quantile(q);
            let mut exact = latencies.clone();
            exact.sort_unstable();
            let n = exact.len();
            let ppm = (q * 1e6).round() as u128;
            let rank = ((n as u128 * ppm).div_ceil(1_000_000) as usize).clamp(1, n);
            let want = exact[rank - 1];
            let got = sketch.percentile().map(|d| d.as_micros());
            proptest::prop_assert!(got.is_some(), "{n} records are enough for a percentile");
            let got = got.unwrap_or_default() as f64;
            proptest::prop_assert!(got > want as f64, "{got} > {want}");
            proptest::prop_assert!(got <= (want + 1) as f64 * 1.125 + 1.0, "{got} vs {want}");
        }
    }

    #[test]
    fn threads_recording_at_once_lose_nothing_within_a_window() {
        let sketch = LatencySketch::new(0.5);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let sketch = &sketch;
                s.spawn(move || {
                    for _ in 0..200 {
                        sketch.record(Duration::from_micros(100 * (t + 1)));
                    }
                });
            }
        });
        assert_eq!(sketch.recorded(), 800);
        let total: u64 =
            sketch.halves.iter().flatten().map(|b| u64::from(b.load(Ordering::Relaxed))).sum();
        assert_eq!(total, 800);
    }
}
