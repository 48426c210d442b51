//! Model checks (proptest) of the backoff sequences, the retry's elapsed budget and the
//! token bucket.
//!
//! * Backoff, every strategy × every jitter mode: every delay within `max_delay`; the
//!   un-jittered sequence is the documented formula and monotone (decorrelated: within
//!   `[base, 3·previous]`); each jittered delay within its mode's bounds of the
//!   un-jittered one.
//! * Retry: no attempt starts after `max_elapsed`, total sleep within it, attempts within
//!   `max_attempts`.
//! * Token bucket: grants exactly what a reference leaky bucket grants, so never more
//!   than the burst at once and never more than `burst + rate·t` in any window.
//!
//! CI runs 500 cases per property; the full run 10 000:
//! `RESILIENCE_FULL=1 cargo test --release -p resilience-tests --test model_policies -- --nocapture`
//! (`PROPTEST_CASES=n` overrides, `RESILIENCE_SEED=n` replays a seed).

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use resilience::backoff::{Backoff, Jitter, Strategy as Kind};
use resilience::clock::{Clock, ManualClock};
use resilience::rate_limit::{OnLimit, Rate, RateLimitConfig, RateLimiter};
use resilience::retry::RetryPolicy;

fn cases() -> u32 {
    let full = std::env::var("RESILIENCE_FULL").is_ok_and(|v| !v.is_empty() && v != "0");
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(if full {
        10_000
    } else {
        500
    })
}

fn seed() -> u64 {
    std::env::var("RESILIENCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x0bac_00ff)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        rng_seed: RngSeed::Fixed(seed()),
        failure_persistence: None,
        ..Config::default()
    })
}

fn report<T: std::fmt::Debug>(what: &str, r: Result<(), T>) {
    println!(
        "{what}: {} cases, seed {}: {}",
        cases(),
        seed(),
        if r.is_ok() { "all hold" } else { "FAILED" }
    );
    if let Err(e) = r {
        panic!("{what}, seed {}: {e:?}", seed());
    }
}

const STEPS: usize = 64;

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        (0.0f64..=1.0).prop_map(Jitter::Proportional),
        (0.0f64..=1.0).prop_map(Jitter::Ratio),
    ]
}

fn backoff() -> impl Strategy<Value = Backoff> {
    let kind = prop_oneof![
        Just(Kind::Constant),
        Just(Kind::Linear),
        Just(Kind::Exponential),
        Just(Kind::Fibonacci),
        Just(Kind::Decorrelated),
    ];
    let multiplier = prop_oneof![(1u32..=4).prop_map(f64::from), 1.0f64..=10.0, Just(1e300)];
    (
        kind,
        1u64..=10_000_000_000,
        0u64..=1_000_000_000,
        multiplier,
        prop_oneof![Just(0u64), 0u64..=u64::MAX / 2, Just(u64::MAX)],
        jitter(),
    )
        .prop_map(|(kind, initial, step, multiplier, extra, jitter)| {
            let initial = Duration::from_nanos(initial);
            let b = match kind {
                Kind::Constant => Backoff::constant(initial),
                Kind::Linear => Backoff::linear(initial),
                Kind::Exponential => Backoff::exponential(initial),
                Kind::Fibonacci => Backoff::fibonacci(initial),
                _ => Backoff::decorrelated(initial),
            };
            let cap = initial.as_nanos() as u64;
            let cap =
                Duration::from_nanos(cap.saturating_add(extra % (cap.saturating_mul(50).max(1))));
            let cap = if extra == u64::MAX { Duration::from_nanos(u64::MAX) } else { cap };
            b.with_step(Duration::from_nanos(step))
                .with_multiplier(multiplier)
                .with_max_delay(cap)
                .with_jitter(jitter)
        })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The documented un-jittered delay before retry `n` (1-based), capped, computed in
/// wide arithmetic (exponential: within rounding of the closed form).
fn formula(b: &Backoff, n: u32) -> Option<u128> {
    let cap = b.max_delay().as_nanos();
    let initial = b.initial().as_nanos();
    let v = match b.strategy() {
        Kind::Constant => initial,
        Kind::Linear => initial + b.step().as_nanos() * u128::from(n - 1),
        Kind::Fibonacci => {
            let (mut a, mut c) = (1u128, 1u128);
            for _ in 1..n {
                (a, c) = (c, (a + c).min(u128::from(u64::MAX)));
            }
            initial.saturating_mul(a)
        }
        _ => return None,
    };
    Some(v.min(cap))
}

fn check_backoff(b: Backoff, seed: u64) -> Result<(), TestCaseError> {
    prop_assert!(b.validate().is_ok(), "generated backoff is valid: {:?}", b.validate());
    let cap = nanos(b.max_delay());
    let raw: Vec<u64> =
        b.with_jitter(Jitter::None).iter_seeded(seed).take(STEPS).map(nanos).collect();
    let got: Vec<u64> = b.iter_seeded(seed).take(STEPS).map(nanos).collect();
    prop_assert!(got.iter().all(|d| *d <= cap), "capped: {:?}", got);
    match b.strategy() {
        Kind::Decorrelated => {
            let base = nanos(b.initial()).min(cap);
            let mut prev = base;
            for &d in &raw {
                prop_assert!(d >= base.min(cap) && d <= prev.saturating_mul(3).max(base).min(cap));
                prev = d;
            }
        }
        _ => {
            prop_assert!(raw.windows(2).all(|w| w[0] <= w[1]), "monotone before jitter: {:?}", raw);
            for (i, &d) in raw.iter().enumerate() {
                let n = i as u32 + 1;
                if let Some(want) = formula(&b, n) {
                    prop_assert_eq!(u128::from(d), want, "retry {}", n);
                } else {
                    // Exponential: initial·m^(n-1), each step truncated to whole ns, so
                    // below the closed form by at most the truncations grown since:
                    // sum of m^k for k < n-1.
                    let m = b.multiplier();
                    let i = i as i32;
                    let exact = b.initial().as_nanos() as f64 * m.powi(i);
                    let loss = if m > 1.0 { (m.powi(i) - 1.0) / (m - 1.0) } else { f64::from(i) };
                    let hi = exact.min(cap as f64) * (1.0 + 1e-12) + 1.0;
                    let lo = (exact - loss).min(cap as f64) * (1.0 - 1e-12) - 1.0;
                    prop_assert!(
                        d as f64 <= hi && d as f64 >= lo,
                        "retry {}: {} not in [{}, {}]",
                        n,
                        d,
                        lo,
                        hi
                    );
                }
            }
            // Jitter draws only from the generator here, so the jittered delay pairs with
            // the un-jittered one of the same index.
            for (&j, &d) in got.iter().zip(&raw) {
                let (lo, hi) = match b.jitter() {
                    Jitter::None => (d, d),
                    Jitter::Full => (0, d),
                    Jitter::Equal => (d / 2, d),
                    Jitter::Proportional(f) => (
                        (d as f64 * (1.0 - f) * (1.0 - 1e-12)) as u64,
                        ((d as f64 * (1.0 + f)) as u64).min(cap),
                    ),
                    Jitter::Ratio(low) => ((d as f64 * low * (1.0 - 1e-12)) as u64, d),
                    _ => (0, cap),
                };
                prop_assert!(
                    j >= lo.min(cap) && j <= hi.max(lo).min(cap),
                    "{:?}: {} not in [{}, {}]",
                    b.jitter(),
                    j,
                    lo,
                    hi
                );
            }
        }
    }
    Ok(())
}

#[test]
fn backoff_sequences_are_capped_monotone_and_jitter_bounded() {
    let r = runner().run(&(backoff(), any::<u64>()), |(b, seed)| check_backoff(b, seed));
    report("backoff: cap, formula, monotone before jitter, jitter bounds (64 delays each)", r);
}

#[test]
fn retries_stay_within_the_elapsed_budget() {
    let strategy = (
        backoff(),
        1u32..=50,
        1u64..=60_000,
        prop::collection::vec(0u64..=2_000, 1..50),
        any::<u64>(),
    );
    let r = runner().run(&strategy, |(b, attempts, budget_ms, op_ms, seed)| {
        let clock = ManualClock::new();
        let budget = Duration::from_millis(budget_ms);
        let policy = RetryPolicy::builder()
            .max_attempts(attempts)
            .backoff(b)
            .max_elapsed(budget)
            .seed(seed)
            .clock(clock.shared())
            .build();
        let policy = match policy {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("valid policy refused: {e}"))),
        };
        let mut starts = Vec::new();
        let r: Result<(), u32> = policy.call(|| {
            starts.push(clock.now());
            // Each attempt takes some time before failing.
            clock.advance(Duration::from_millis(op_ms[starts.len() % op_ms.len()]));
            Err(7)
        });
        prop_assert_eq!(r, Err(7));
        prop_assert!(starts.len() as u32 <= attempts);
        prop_assert!(
            starts.iter().all(|s| *s <= budget),
            "an attempt started past the budget: {:?}",
            starts
        );
        let slept: Duration = clock.sleeps().iter().sum();
        prop_assert!(slept <= budget, "slept {:?} > {:?}", slept, budget);
        prop_assert!(clock.sleeps().iter().all(|s| *s <= b.max_delay()));
        Ok(())
    });
    report(
        "retry: attempts start within max_elapsed, sleeps within it, attempts within max_attempts",
        r,
    );
}

#[derive(Debug, Clone)]
enum BucketOp {
    Advance(u64),
    Take(u32),
    Reset,
    Pause(u64),
}

/// Reference: a leaky bucket whose level (ns) drains with time; a call of cost `n` is
/// granted iff the level plus `n·T` stays within `burst·T`.
struct Reference {
    interval: u64,
    tau: u64,
    level: u64,
    last: u64,
}

impl Reference {
    fn at(&mut self, now: u64) {
        self.level = self.level.saturating_sub(now - self.last);
        self.last = now;
    }
}

fn bucket_case(
    per_second: u32,
    burst: u32,
    ops: &[BucketOp],
    with_admin: bool,
) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let config = RateLimitConfig::builder()
        .rate(Rate::per_second(per_second))
        .burst(burst)
        .on_limit(OnLimit::Reject)
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let limiter = RateLimiter::with_clock("model-bucket", config, clock.shared());
    let interval = 1_000_000_000 / u64::from(per_second);
    let tau = interval * u64::from(burst);
    let mut m = Reference { interval, tau, level: 0, last: 0 };
    // Every grant (time, cost), for the window check.
    let mut grants: Vec<(u64, u64)> = Vec::new();
    for op in ops {
        let now = nanos(clock.now());
        m.at(now);
        match *op {
            BucketOp::Advance(ns) => clock.advance(Duration::from_nanos(ns)),
            BucketOp::Take(cost) => {
                let want = cost <= burst && m.level + u64::from(cost) * m.interval <= m.tau;
                let got = limiter.try_acquire(cost).is_ok();
                prop_assert_eq!(got, want, "take {} at {} (level {})", cost, now, m.level);
                if got {
                    m.level += u64::from(cost) * m.interval;
                    grants.push((now, u64::from(cost)));
                }
            }
            BucketOp::Reset if with_admin => {
                limiter.reset();
                m.level = 0;
            }
            BucketOp::Pause(ns) if with_admin && ns > 0 => {
                limiter.pause_for(Duration::from_nanos(ns));
                // Nothing before now + ns; then one permit, refilling from there.
                m.level = m.level.max(ns + m.tau - m.interval);
            }
            BucketOp::Reset | BucketOp::Pause(_) => {}
        }
        let now = nanos(clock.now());
        m.at(now);
        let available = (m.tau - m.level.min(m.tau)) / m.interval;
        prop_assert_eq!(u64::from(limiter.available()), available, "available at {}", now);
        prop_assert!(limiter.available() <= burst, "never more than the burst");
    }
    if !with_admin {
        // Independent of the model: in any window of length t, grants <= b + t/T.
        for (i, &(start, _)) in grants.iter().enumerate() {
            let mut sum = 0;
            for &(t, n) in &grants[i..] {
                sum += n;
                prop_assert!(
                    sum * interval <= tau + (t - start),
                    "{} permits in [{}, {}]: more than burst + rate·t",
                    sum,
                    start,
                    t
                );
            }
        }
    }
    Ok(())
}

fn bucket_ops() -> impl Strategy<Value = Vec<BucketOp>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop_oneof![Just(0u64), 0u64..=3_000_000_000].prop_map(BucketOp::Advance),
            8 => (1u32..=12).prop_map(BucketOp::Take),
            1 => Just(BucketOp::Reset),
            1 => (0u64..=5_000_000_000).prop_map(BucketOp::Pause),
        ],
        1..120,
    )
}

#[test]
fn token_bucket_never_exceeds_its_burst_or_its_rate() {
    let strategy = (prop_oneof![Just(1u32), Just(1_000), 1u32..=100], 1u32..=10, bucket_ops());
    let r = runner().run(&strategy, |(rate, burst, ops)| bucket_case(rate, burst, &ops, false));
    report(
        "token bucket: grants = reference, available <= burst, every window <= burst + rate·t",
        r,
    );
}

#[test]
fn token_bucket_with_reset_and_pause_matches_the_reference() {
    let strategy = (prop_oneof![Just(1u32), Just(1_000), 1u32..=100], 1u32..=10, bucket_ops());
    let r = runner().run(&strategy, |(rate, burst, ops)| bucket_case(rate, burst, &ops, true));
    report("token bucket with reset / pause_for: grants and available = reference", r);
}
