//! Guarantee: against an overloaded backend, a client behind an `AdaptiveThrottle` sends
//! about `k · accepts` (so the backend fails about half of what it still gets with
//! `k = 2`) instead of its whole demand, and returns to full traffic within one window
//! after the backend recovers.
//!
//! Simulated time (`ManualClock`), seeded draws (`RESILIENCE_SEED=<n>` replays a seed).
//! `cargo test -p resilience-tests --test guarantee_throttle -- --nocapture`

use std::time::Duration;

use resilience::Error;
use resilience::circuit::{AdaptiveThrottle, ThrottleConfig};
use resilience::clock::{Clock, ManualClock};

/// Demand: 40 calls per second, one every 25 ms.
const TICK: Duration = Duration::from_millis(25);
/// The overloaded backend serves 10 calls per second and fails the rest.
const CAPACITY: u64 = 10;

fn seed() -> u64 {
    std::env::var("RESILIENCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(42)
}

/// Admitted (sent to the backend) and accepted (served) calls of one simulated second.
#[derive(Default, Clone, Copy)]
struct Second {
    admitted: u64,
    accepted: u64,
}

/// Run one second of demand; the backend serves at most `capacity` calls of it.
fn second(clock: &ManualClock, throttle: &AdaptiveThrottle, capacity: u64) -> Second {
    let mut s = Second::default();
    for _ in 0..(Duration::from_secs(1).as_nanos() / TICK.as_nanos()) {
        let _ = throttle.call(|| {
            s.admitted += 1;
            if s.admitted <= capacity {
                s.accepted += 1;
                Ok(())
            } else {
                Err(Error::timeout(TICK))
            }
        });
        clock.advance(TICK);
    }
    s
}

#[test]
fn an_overloaded_backend_gets_k_times_its_accepts_and_full_traffic_a_window_after_recovery() {
    let seed = seed();
    let clock = ManualClock::new();
    let config = ThrottleConfig::default(); // k = 2, 120 s in 12 buckets
    let k = config.k();
    let window = config.window();
    let throttle = AdaptiveThrottle::with_clock("overloaded", config, clock.shared()).seeded(seed);
    let demand = 40_u64;

    // Overload: demand 40/s against a capacity of 10/s, for five windows.
    let overload = 5 * window.as_secs();
    let seconds: Vec<Second> = (0..overload).map(|_| second(&clock, &throttle, CAPACITY)).collect();
    // Measure over the last window, once the throttle has settled.
    let last = &seconds[seconds.len() - window.as_secs() as usize..];
    let admitted: u64 = last.iter().map(|s| s.admitted).sum();
    let accepted: u64 = last.iter().map(|s| s.accepted).sum();
    let ratio = admitted as f64 / accepted as f64;
    let failed = 1.0 - accepted as f64 / admitted as f64;
    println!(
        "seed {seed}: over the last {}s of overload, {admitted} calls admitted ({:.1}/s of a \
         {demand}/s demand), {accepted} accepted: admitted / accepts = {ratio:.3} (k = {k}), \
         backend failed {:.1} %",
        window.as_secs(),
        admitted as f64 / window.as_secs_f64(),
        failed * 100.0
    );
    // At equilibrium `(requests - k·accepts) / (requests + 1)` equals the rejected share,
    // so admitted = k·accepts up to the `+ 1` and the noise of the draws. The draws of one
    // window feed the next window's probability, so a deviation persists for a window
    // rather than averaging out over its ~4 800 draws: seeds 1 to 12 measured ratios from
    // 1.969 to 2.067 (within 3.5 % of k). 5 % leaves room for other seeds.
    assert_eq!(accepted, CAPACITY * window.as_secs(), "the backend stays saturated");
    assert!((ratio - k).abs() / k < 0.05, "admitted / accepts = {ratio:.3}, k = {k}");
    // So the backend fails about half of what it gets, not three quarters.
    assert!((failed - 0.5).abs() < 0.03, "backend failure share {failed:.3}");

    // Recovery: the backend serves everything again.
    let recovered_at = clock.now();
    let mut full_since = None;
    for i in 0..window.as_secs() {
        let s = second(&clock, &throttle, u64::MAX);
        if s.admitted == demand {
            full_since.get_or_insert(i);
        } else {
            full_since = None;
        }
    }
    let full_after = full_since.map(Duration::from_secs);
    println!(
        "full traffic ({demand}/s admitted) from {:?} after recovery on (window {window:?}), \
         rejection probability now {}",
        full_after,
        throttle.rejection_probability()
    );
    let full_after = full_after.expect("full traffic within one window of recovery");
    assert!(full_after < window, "full traffic after {full_after:?}, window {window:?}");
    assert_eq!(throttle.rejection_probability(), 0.0);
    assert_eq!(clock.now() - recovered_at, window);
}
