//! Bulkhead acquire + release with a slot free: the adaptive bulkhead (gradient, which
//! times each call and feeds its window) against the fixed one, and tokio's `Semaphore`
//! `try_acquire` as the plain primitive.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use resilience::bulkhead::{Bulkhead, BulkheadConfig, LimitAlgorithm};

fn config() -> BulkheadConfig {
    BulkheadConfig::builder().max_concurrent(64).build().unwrap_or_else(|e| unreachable!("{e}"))
}

fn adaptive() -> BulkheadConfig {
    let config =
        BulkheadConfig::builder().adaptive(LimitAlgorithm::Gradient).initial_limit(64).build();
    config.unwrap_or_else(|e| unreachable!("{e}"))
}

fn acquire(c: &mut Criterion) {
    let adaptive = Bulkhead::new("bench-adaptive", adaptive());
    let fixed = Bulkhead::new("bench-fixed", config());
    let semaphore = tokio::sync::Semaphore::new(64);

    let mut g = c.benchmark_group("bulkhead_adaptive_acquire");
    g.bench_function("resilience", |b| b.iter(|| drop(black_box(adaptive.try_acquire()))));
    g.bench_function("fixed bulkhead", |b| b.iter(|| drop(black_box(fixed.try_acquire()))));
    g.bench_function("tokio Semaphore", |b| b.iter(|| drop(black_box(semaphore.try_acquire()))));
    // Diagnostic (no target): the default clock's read alone; the adaptive bulkhead reads
    // it twice per call (acquisition and release).
    let clock = resilience::clock::default_clock();
    g.bench_function("diag_default_clock_now", |b| b.iter(|| clock.now()));
    g.finish();
}

criterion_group!(benches, acquire);
criterion_main!(benches);
