//! The attribute macros against the same call written by hand: `#[circuit_breaker]` vs
//! the runtime API with a per-call-site static, and `#[resilient]` with every layer vs
//! the bare function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::{Arc, OnceLock};

use criterion::{Criterion, criterion_group, criterion_main};
use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig};
use resilience::{ConfigError, circuit_breaker, registry, resilient};

use resilience_benches::BenchError;

#[circuit_breaker(name = "bench-macro-breaker", failure_threshold = 5)]
fn with_macro() -> Result<u64, BenchError> {
    Ok(black_box(1))
}

/// What `#[circuit_breaker]` stands for, written by hand: resolve the named breaker once
/// per call site, then call through it.
fn hand_written() -> Result<u64, BenchError> {
    static BREAKER: OnceLock<Result<Arc<CircuitBreaker>, ConfigError>> = OnceLock::new();
    let breaker = BREAKER.get_or_init(|| {
        registry().circuit_breakers().resolve("bench-hand-breaker", || {
            CircuitBreakerConfig::builder().failure_threshold(5).build()
        })
    });
    match breaker {
        Ok(b) => b.call(|| Ok(black_box(1))),
        Err(e) => Err(resilience::Error::Config(e.clone()).into()),
    }
}

// Every layer except the timeout: a timeout on a synchronous function hands each call to a
// worker thread, which no target of a few nanoseconds can include.
#[resilient(
    retry(max_attempts = 3),
    circuit_breaker(name = "bench-resilient", failure_threshold = 5),
    rate_limit(name = "bench-resilient", per_second = 1_000_000_000, burst = 1_000_000),
    bulkhead(max_concurrent = 64)
)]
fn resilient_stack() -> Result<u64, BenchError> {
    Ok(black_box(1))
}

#[inline(never)]
fn bare() -> Result<u64, BenchError> {
    Ok(black_box(1))
}

fn macros(c: &mut Criterion) {
    let mut g = c.benchmark_group("macro_circuit_breaker");
    g.bench_function("resilience", |b| b.iter(with_macro));
    g.bench_function("hand_written", |b| b.iter(hand_written));
    g.finish();

    let mut g = c.benchmark_group("macro_resilient_sync");
    g.bench_function("resilience", |b| b.iter(resilient_stack));
    g.bench_function("bare", |b| b.iter(bare));
    g.finish();
}

criterion_group!(benches, macros);
criterion_main!(benches);
