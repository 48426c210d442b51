//! Additive increase, multiplicative decrease, with latency as the congestion signal.
//!
//! A window whose latency exceeds `rtt_noload · 1.25` counts as congestion: the limit
//! drops to 90 % of itself. Otherwise, when the dependency is kept busy (at least half
//! the limit in flight), it grows by one. On a dependency that serves `c` calls at a
//! time, the limit saws between about `1.1 · c` and `1.25 · c`.

use super::Window;

/// A window slower than `rtt_noload` times this counts as congestion.
const TOLERANCE: f64 = 1.25;

/// What a congested window multiplies the limit by.
const BACKOFF: f64 = 0.9;

/// The next limit after `window`, before clamping to the configured bounds.
pub(super) fn next(limit: f64, window: &Window) -> f64 {
    if window.rtt > window.rtt_noload * TOLERANCE {
        limit * BACKOFF
    } else if window.app_limited(limit) {
        limit
    } else {
        limit + 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(rtt_noload: f64, rtt: f64, peak: u32) -> Window {
        Window { rtt_noload, rtt, peak_in_flight: peak }
    }

    #[test]
    fn adds_one_while_latency_stays_near_its_minimum() {
        assert_eq!(next(10.0, &window(0.05, 0.06, 10)), 11.0);
    }

    #[test]
    fn backs_off_by_ten_percent_on_queueing() {
        assert_eq!(next(10.0, &window(0.05, 0.07, 10)), 9.0);
    }

    #[test]
    fn an_idle_dependency_does_not_grow_the_limit() {
        assert_eq!(next(10.0, &window(0.05, 0.05, 4)), 10.0);
    }

    #[test]
    fn saws_just_above_capacity() {
        let c = 16.0;
        let mut limit = 4.0_f64;
        let mut seen = Vec::new();
        for i in 0..400 {
            let rtt = 0.05 * (limit / c).max(1.0);
            limit = next(limit, &window(0.05, rtt, limit as u32));
            if i >= 200 {
                seen.push(limit);
            }
        }
        let (low, high) = seen.iter().fold((f64::MAX, 0.0_f64), |(l, h), x| (l.min(*x), h.max(*x)));
        assert!(low >= c && high <= c * 1.25 + 1.0, "{low}..{high}");
    }
}
