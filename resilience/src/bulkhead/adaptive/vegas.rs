//! Vegas: estimate the queue at the dependency and keep it between two bounds.
//!
//! The calls queued at the dependency are estimated as `queue = limit · (1 − rtt_noload /
//! rtt)`. With `alpha = max(1, log10(limit))` and `beta = 2 · alpha`, a queue below
//! `alpha` grows the limit by `alpha`, a queue above `beta` shrinks it by `alpha`, and in
//! between the limit stays. On a dependency that serves `c` calls at a time, the limit
//! settles between `c + alpha` and `c + beta`.

use super::Window;

/// The next limit after `window`, before clamping to the configured bounds.
pub(super) fn next(limit: f64, window: &Window) -> f64 {
    let queue = limit * (1.0 - window.rtt_noload / window.rtt).max(0.0);
    let alpha = limit.log10().max(1.0);
    let beta = 2.0 * alpha;
    if queue < alpha {
        if window.app_limited(limit) { limit } else { limit + alpha }
    } else if queue > beta {
        limit - alpha
    } else {
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(rtt_noload: f64, rtt: f64, peak: u32) -> Window {
        Window { rtt_noload, rtt, peak_in_flight: peak }
    }

    #[test]
    fn grows_when_nothing_queues() {
        assert_eq!(next(10.0, &window(0.05, 0.05, 10)), 11.0);
    }

    #[test]
    fn shrinks_when_the_queue_passes_beta() {
        // 20 in flight, 10 served: 10 queued, above beta = 2 · log10(20).
        let alpha = 20.0_f64.log10();
        assert_eq!(next(20.0, &window(0.05, 0.10, 20)), 20.0 - alpha);
    }

    #[test]
    fn holds_between_alpha_and_beta() {
        // 12 in flight, 10 served: the queue is 2 calls, between alpha and beta.
        assert_eq!(next(12.0, &window(0.05, 0.06, 12)), 12.0);
    }

    #[test]
    fn an_idle_dependency_does_not_grow_the_limit() {
        assert_eq!(next(10.0, &window(0.05, 0.05, 2)), 10.0);
    }

    #[test]
    fn settles_between_capacity_plus_alpha_and_plus_beta() {
        let c = 16.0;
        let mut limit = 200.0_f64;
        for _ in 0..400 {
            let rtt = 0.05 * (limit / c).max(1.0);
            limit = next(limit, &window(0.05, rtt, limit as u32));
        }
        assert!((c + 1.0..=c + 2.0 * c.log10() + 2.0).contains(&limit), "{limit}");
    }
}
