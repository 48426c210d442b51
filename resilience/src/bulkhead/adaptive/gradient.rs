//! The gradient algorithm: scale the limit by how far the latency is from its minimum.
//!
//! Each window, `gradient = 1.05 · rtt_noload / rtt` (clamped to `0.5..=1.0`) and the
//! target is `limit · gradient + queue`, where the queue allowance
//! `queue = max(1, log10(limit))` lets a few calls wait so the dependency never idles.
//! The new limit moves a fifth of the way to the target (smoothing), like Netflix's
//! Gradient2. The 5 % tolerance absorbs the noise of the measurements: `rtt_noload` is
//! the lowest of many noisy window averages, so it sits a little below the true unloaded
//! latency.
//!
//! On a dependency that serves `c` calls at a time and queues the rest, a limit `n > c`
//! sees `rtt = rtt_noload · n / c`, so the target is `1.05 · c + queue`: the limit
//! settles just above the true capacity. Below it, the latency stays at its minimum, the
//! gradient is 1 and the limit grows by a fifth of the queue allowance per window.

use super::Window;

/// How far the limit moves towards the target each window.
const SMOOTHING: f64 = 0.2;

/// The smallest gradient: a window never more than halves the target.
const MIN_GRADIENT: f64 = 0.5;

/// Latency within this factor of `rtt_noload` counts as unloaded.
const TOLERANCE: f64 = 1.05;

/// The queue allowance at `limit`: `max(1, log10(limit))`.
pub(super) fn queue(limit: f64) -> f64 {
    limit.log10().max(1.0)
}

/// The next limit after `window`, before clamping to the configured bounds.
pub(super) fn next(limit: f64, window: &Window) -> f64 {
    let gradient = (TOLERANCE * window.rtt_noload / window.rtt).clamp(MIN_GRADIENT, 1.0);
    let target = limit * gradient + queue(limit);
    // A dependency that is not kept busy says nothing about more: do not grow.
    if target > limit && window.app_limited(limit) {
        return limit;
    }
    limit * (1.0 - SMOOTHING) + target * SMOOTHING
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(rtt_noload: f64, rtt: f64, peak: u32) -> Window {
        Window { rtt_noload, rtt, peak_in_flight: peak }
    }

    #[test]
    fn grows_by_a_fifth_of_the_queue_allowance_at_the_minimum_latency() {
        assert_eq!(next(10.0, &window(0.05, 0.05, 10)), 10.0 + 0.2);
        assert!((next(100.0, &window(0.05, 0.05, 100)) - 100.4).abs() < 1e-9);
    }

    #[test]
    fn shrinks_towards_capacity_plus_queue_when_latency_doubles() {
        // 32 in flight on a dependency serving 16: the latency doubles, the target is
        // 1.05 · 16 + 1.5.
        let n = next(32.0, &window(0.05, 0.10, 32));
        let target = 16.8 + queue(32.0);
        assert!((n - (32.0 * 0.8 + target * 0.2)).abs() < 1e-9);
    }

    #[test]
    fn a_huge_latency_at_most_halves_the_target() {
        assert_eq!(next(100.0, &window(0.01, 10.0, 100)), 80.0 + 0.2 * (50.0 + 2.0));
    }

    #[test]
    fn latency_within_the_tolerance_still_grows_the_limit() {
        assert_eq!(next(10.0, &window(0.050, 0.0525, 10)), 10.0 + 0.2);
        assert!(next(10.0, &window(0.050, 0.060, 10)) < 10.0);
    }

    #[test]
    fn an_idle_dependency_does_not_grow_the_limit() {
        assert_eq!(next(40.0, &window(0.05, 0.05, 3)), 40.0);
    }

    #[test]
    fn the_fixed_point_is_capacity_plus_tolerance_plus_queue() {
        // A dependency serving `c` at a time: rtt = rtt_noload · max(1, n / c).
        for c in [8.0, 16.0, 32.0] {
            let mut limit = 200.0_f64;
            for _ in 0..500 {
                let rtt = 0.05 * (limit / c).max(1.0);
                limit = next(limit, &window(0.05, rtt, limit as u32));
            }
            let expected = TOLERANCE * c + queue(TOLERANCE * c);
            assert!((limit - expected).abs() < 0.5, "c = {c}: {limit} vs {expected}");
        }
    }
}
