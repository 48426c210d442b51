//! Rate limiter with a permit available: direct, and keyed over 1 and 1024 keys, on 1 and
//! 2 threads; and a limiter rejecting. `resilience` vs governor (direct `check`, keyed
//! `check_key` on its default DashMap store), and over 1024 keys a calibration row: the
//! machine's own two-thread scaling on work that shares no writes.
#![allow(missing_docs)]

use std::hash::BuildHasher;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use resilience::clock::{QuantaClock, default_clock};
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, RateLimitConfig, RateLimiter};
use resilience_benches::run_parallel;
use resilience_benches::table::QUANTA_ROW;

/// A rate so high that no benchmark loop ever empties the bucket: every check is the
/// "permit available" path (one permit per nanosecond, refilled faster than it is taken).
const FAST_PER_SECOND: u32 = 1_000_000_000;
const BURST: u32 = 1_000_000;

fn ours_config() -> RateLimitConfig {
    let config = RateLimitConfig::builder()
        .per_second(FAST_PER_SECOND)
        .burst(BURST)
        .on_limit(OnLimit::Reject)
        .build();
    config.unwrap_or_else(|e| unreachable!("valid bench config: {e}"))
}

fn governor_quota() -> Quota {
    let burst = NonZeroU32::new(BURST).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(Duration::from_nanos(1))
        .map_or(Quota::per_second(NonZeroU32::MAX), |q| q.allow_burst(burst))
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("shop-{i}.example.com")).collect()
}

fn direct(c: &mut Criterion) {
    let ours = RateLimiter::new("bench-direct", ours_config());
    let gov: DefaultDirectRateLimiter = governor::RateLimiter::direct(governor_quota());

    let mut g = c.benchmark_group("limiter_direct_1t");
    g.bench_function("resilience", |b| b.iter(|| ours.try_acquire(1)));
    g.bench_function("governor", |b| b.iter(|| gov.check()));
    // The default clock is `QuantaClock` (default features, no `test-util`); this row
    // passes one explicitly, so it stays the TSC clock whatever the default.
    let tsc =
        RateLimiter::with_clock("bench-direct-tsc", ours_config(), Arc::new(QuantaClock::new()));
    g.bench_function(QUANTA_ROW, |b| b.iter(|| tsc.try_acquire(1)));
    // Diagnostic (no target): the default clock's read alone.
    let clock = default_clock();
    g.bench_function("diag_default_clock_now", |b| b.iter(|| clock.now()));
    g.finish();

    let mut g = c.benchmark_group("limiter_direct_2t");
    g.bench_function("resilience", |b| {
        b.iter_custom(|n| run_parallel(2, n, |_, _| drop(black_box(ours.try_acquire(1)))))
    });
    g.bench_function(QUANTA_ROW, |b| {
        b.iter_custom(|n| run_parallel(2, n, |_, _| drop(black_box(tsc.try_acquire(1)))))
    });
    g.bench_function("governor", |b| {
        b.iter_custom(|n| run_parallel(2, n, |_, _| drop(black_box(gov.check()))))
    });
    g.finish();
}

/// The calibration row of the keyed groups: thread-local work, no shared writes.
const CALIBRATION: &str = "calibration-hash-only";

fn keyed(c: &mut Criterion) {
    for n in [1usize, 1024] {
        let keys = keys(n);
        let ours: KeyedRateLimiter<String> = KeyedRateLimiter::new("bench-keyed", ours_config());
        let gov: DefaultKeyedRateLimiter<String> = governor::RateLimiter::keyed(governor_quota());
        for k in &keys {
            let _ = ours.try_acquire(k.as_str(), 1);
            let _ = gov.check_key(k);
        }
        let mask = n - 1; // n is a power of two
        let label = if n == 1 { "1key".to_owned() } else { format!("{n}keys") };

        let mut g = c.benchmark_group(format!("limiter_keyed_{label}_1t"));
        let mut i = 0usize;
        g.bench_function("resilience", |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                ours.try_acquire(keys[i & mask].as_str(), 1)
            })
        });
        let mut i = 0usize;
        g.bench_function("governor", |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                gov.check_key(&keys[i & mask])
            })
        });
        // The machine's own two-thread scaling, for the scaling table: work that shares
        // nothing but read-only keys (hashing the key a call would look up).
        let hasher = std::collections::hash_map::RandomState::new();
        let mut i = 0usize;
        if n > 1 {
            g.bench_function(CALIBRATION, |b| {
                b.iter(|| {
                    i = i.wrapping_add(1);
                    hasher.hash_one(&keys[i & mask])
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("limiter_keyed_{label}_2t"));
        // Each thread walks the keys from its own half (one key: both share it).
        let pick = |t: usize, i: u64| &keys[(t * n / 2).wrapping_add(i as usize) & mask];
        g.bench_function("resilience", |b| {
            b.iter_custom(|it| {
                run_parallel(2, it, |t, i| {
                    drop(black_box(ours.try_acquire(pick(t, i).as_str(), 1)))
                })
            })
        });
        g.bench_function("governor", |b| {
            b.iter_custom(|it| {
                run_parallel(2, it, |t, i| drop(black_box(gov.check_key(pick(t, i)))))
            })
        });
        if n > 1 {
            g.bench_function(CALIBRATION, |b| {
                b.iter_custom(|it| {
                    run_parallel(2, it, |t, i| {
                        black_box(hasher.hash_one(pick(t, i)));
                    })
                })
            });
        }
        g.finish();
    }
}

fn reject(c: &mut Criterion) {
    let config =
        RateLimitConfig::builder().per_minute(1).burst(1).on_limit(OnLimit::Reject).build();
    let ours = RateLimiter::new(
        "bench-reject",
        config.unwrap_or_else(|e| unreachable!("valid bench config: {e}")),
    );
    let _ = ours.try_acquire(1);
    assert!(ours.try_acquire(1).is_err(), "the limiter must be empty");
    let gov: DefaultDirectRateLimiter =
        governor::RateLimiter::direct(Quota::per_minute(NonZeroU32::MIN));
    let _ = gov.check();
    assert!(gov.check().is_err(), "governor must be empty");

    let mut g = c.benchmark_group("limiter_reject");
    g.bench_function("resilience", |b| b.iter(|| ours.try_acquire(1)));
    g.bench_function("governor", |b| b.iter(|| gov.check()));
    g.finish();
}

criterion_group!(benches, direct, keyed, reject);
criterion_main!(benches);
