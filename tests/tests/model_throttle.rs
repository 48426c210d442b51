//! The adaptive throttle against a reference model: seeded random sequences of outcomes,
//! admissions and clock advances, with its counts and rejection probability checked after
//! each step, plus many threads recording into one throttle.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use resilience::Error;
use resilience::circuit::{AdaptiveThrottle, CallOutcome, CircuitState, ThrottleConfig};
use resilience::clock::{Clock, ManualClock};

/// The reference: every request with its time, counted when its bucket is one of the
/// window's last `buckets` buckets.
struct Model {
    k: f64,
    width: Duration,
    buckets: u128,
    /// `(time, accepted)` of each counted request.
    requests: Vec<(Duration, bool)>,
    rejections: u64,
}

impl Model {
    fn counts(&self, now: Duration) -> (u64, u64) {
        let period = |t: Duration| t.as_nanos() / self.width.as_nanos();
        let current = period(now);
        let live = self.requests.iter().filter(|(t, _)| current - period(*t) < self.buckets);
        live.fold((0, 0), |(r, a), (_, ok)| (r + 1, a + u64::from(*ok)))
    }

    fn probability(&self, now: Duration) -> f64 {
        let (r, a) = self.counts(now);
        ((r as f64 - self.k * a as f64) / (r as f64 + 1.0)).max(0.0)
    }
}

#[test]
fn throttle_matches_the_reference_model() {
    for seed in 0..200 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let k = [1.0, 1.5, 2.0, 3.0][rng.usize(..4)];
        let window = Duration::from_millis(rng.u64(10..=2_000));
        let buckets = rng.u32(1..=10);
        let config =
            ThrottleConfig::builder().k(k).window(window).buckets(buckets).build().unwrap();
        let clock = ManualClock::new();
        let t = AdaptiveThrottle::with_clock("model", config, clock.shared()).seeded(seed);
        let mut model = Model {
            k,
            width: window / buckets,
            buckets: u128::from(buckets),
            requests: Vec::new(),
            rejections: 0,
        };
        for step in 0..300 {
            let now = clock.now();
            match rng.u8(0..10) {
                0..=2 => {
                    t.record(CallOutcome::Failure);
                    model.requests.push((now, false));
                }
                3 => {
                    t.record(CallOutcome::Success);
                    model.requests.push((now, true));
                }
                4 => t.record(CallOutcome::Ignored),
                5..=7 => {
                    let p = model.probability(now);
                    match t.admit() {
                        Ok(()) => assert!(p < 1.0, "seed {seed} step {step}: admitted at p = {p}"),
                        Err(e) => {
                            assert!(p > 0.0, "seed {seed} step {step}: rejected at p = 0");
                            assert!(matches!(
                                e,
                                Error::CircuitOpen { state: CircuitState::Open, .. }
                            ));
                            model.requests.push((now, false));
                            model.rejections += 1;
                        }
                    }
                }
                _ => clock.advance(Duration::from_millis(rng.u64(0..=window.as_millis() as u64))),
            }
            let now = clock.now();
            let s = t.stats();
            let (requests, accepts) = model.counts(now);
            assert_eq!(
                (s.requests, s.accepts, s.rejections),
                (requests, accepts, model.rejections),
                "seed {seed} step {step}"
            );
            let p = model.probability(now);
            assert!((s.rejection_probability - p).abs() < 1e-12, "seed {seed} step {step}");
        }
    }
}

#[test]
fn threads_admitting_and_recording_at_once_lose_no_request() {
    let clock = ManualClock::new();
    let t = Arc::new(
        AdaptiveThrottle::with_clock("threads", ThrottleConfig::default(), clock.shared())
            .seeded(3),
    );
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let t = t.clone();
            std::thread::spawn(move || {
                let (mut admitted, mut rejected, mut served) = (0_u64, 0_u64, 0_u64);
                for i in 0..2_000 {
                    match t.admit() {
                        Ok(()) => {
                            admitted += 1;
                            if (i + n) % 4 == 0 {
                                served += 1;
                                t.record(CallOutcome::Success);
                            } else {
                                t.record(CallOutcome::Failure);
                            }
                        }
                        Err(_) => rejected += 1,
                    }
                }
                (admitted, rejected, served)
            })
        })
        .collect();
    let (mut admitted, mut rejected, mut served) = (0, 0, 0);
    for th in threads {
        let (a, r, s) = th.join().unwrap();
        admitted += a;
        rejected += r;
        served += s;
    }
    let s = t.stats();
    // Every call is one request: admitted ones with their outcome, rejected ones as such.
    assert_eq!(admitted + rejected, 16_000);
    assert_eq!(s.requests, 16_000);
    assert_eq!(s.rejections, rejected);
    assert_eq!(s.accepts, served);
    // About a quarter of the admitted calls succeeded, so the throttle shed traffic.
    assert!(rejected > 0);
}
