//! A cost-point limiter against a simulated Shopify GraphQL endpoint (a leaky bucket of
//! cost points on the same manual clock): after the first response re-syncs the
//! limiter, 1 000 queries of mixed cost get no `THROTTLED`.

use std::time::Duration;

use resilience::ErrorClass;
use resilience::clock::{Clock, ManualClock};
use resilience::rate_limit::graphql::{QueryCost, ThrottleStatus, error_code_class};
use resilience::rate_limit::{RateLimitConfig, RateLimiter};

/// Shopify's GraphQL bucket: `max` points, restored at `rate` per second; a query needs
/// its requested cost available and is charged its actual cost. Kept in nano-points, so
/// that the bucket's own arithmetic is exact.
struct Shop {
    clock: ManualClock,
    max: u64,
    rate: u64,
    nano_points: u128,
    at: Duration,
}

impl Shop {
    fn query(&mut self, requested: u32, actual: u32) -> (Option<&'static str>, QueryCost) {
        const NANO: u128 = 1_000_000_000;
        let now = self.clock.now();
        let restored = (now - self.at).as_nanos() * u128::from(self.rate);
        self.nano_points = (self.nano_points + restored).min(u128::from(self.max) * NANO);
        self.at = now;
        let throttled = self.nano_points < u128::from(requested) * NANO;
        if !throttled {
            self.nano_points -= u128::from(actual) * NANO;
        }
        let status = ThrottleStatus {
            maximum_available: self.max as f64,
            currently_available: (self.nano_points / NANO) as f64,
            restore_rate: self.rate as f64,
        };
        let cost = QueryCost {
            requested,
            actual: (!throttled).then_some(actual),
            throttle_status: Some(status),
        };
        (throttled.then_some("THROTTLED"), cost)
    }
}

#[test]
fn no_throttled_response_after_the_first_resync_over_1000_queries_of_mixed_cost() {
    let clock = ManualClock::new();
    let mut shop = Shop {
        clock: clock.clone(),
        max: 1000,
        rate: 50,
        nano_points: 1000 * 1_000_000_000,
        at: clock.now(),
    };
    // The client guesses a Plus shop's bucket (2000 points, 100 per second): wrong.
    let config = RateLimitConfig::builder().per_second(100).burst(2000).build().unwrap();
    let limiter = RateLimiter::with_clock("graphql-shop", config, clock.shared());
    let mut rng = fastrand::Rng::with_seed(11);
    let mut throttled = Vec::new();
    let mut charged = 0u64;
    for i in 0..1000 {
        let requested = rng.u32(1..=200);
        let actual = requested * rng.u32(30..=100) / 100;
        limiter.acquire(requested).unwrap();
        let (error, cost) = shop.query(requested, actual);
        if let Some(code) = error {
            assert_eq!(error_code_class(code), ErrorClass::Throttled);
            throttled.push(i);
        } else {
            charged += u64::from(actual);
        }
        limiter.sync_from_query_cost(&cost);
    }
    assert_eq!(throttled, Vec::<usize>::new(), "no THROTTLED after the first re-sync");
    assert_eq!(limiter.config().burst(), 1000, "the shop's bucket adopted");
    // The client used the bucket, not a timid fraction of it: the points charged are
    // at least 90 % of what the shop could restore in the time taken (plus its bucket).
    let possible = 1000.0 + clock.now().as_secs_f64() * 50.0;
    assert!(charged as f64 >= 0.9 * possible, "charged {charged} of {possible}");
    assert!(charged as f64 <= possible);
}
