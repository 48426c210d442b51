//! Heap allocations per call with metrics recorded: `#[resilient]` (retry, breaker,
//! limiter, bulkhead) and a closed breaker's call, with `resilience::metrics` installed.
//!
//! The event path and the counters allocate nothing. The Prometheus recorder's histogram
//! storage (`metrics-util`'s `AtomicBucket`) keeps every sample until the next scrape in
//! blocks of 64 samples, so the whole-call histogram costs that exporter one allocation per
//! 64 calls; the same calls with their handles on a recorder that stores nothing allocate
//! nothing.
//!
//! Its own test binary: it installs the process-global recorder and subscribes to the
//! process default registry's events.

use std::hint::black_box;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use resilience::Error;
use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig};
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, RateLimitConfig};
use resilience::resilient;
use resilience_benches::BenchError;
use resilience_benches::alloc::{CountingAllocator, allocations_during};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

const CALLS: usize = 1_000;

#[resilient(
    retry(max_attempts = 3),
    circuit_breaker(name = "alloc-metrics-resilient", failure_threshold = 5),
    rate_limit(name = "alloc-metrics-resilient", per_second = 1_000_000_000, burst = 1_000_000),
    bulkhead(max_concurrent = 64)
)]
fn resilient_stack() -> Result<u64, BenchError> {
    Ok(black_box(1))
}

#[resilient(
    retry(max_attempts = 3),
    circuit_breaker(name = "alloc-metrics-noop", failure_threshold = 5),
    rate_limit(name = "alloc-metrics-noop", per_second = 1_000_000_000, burst = 1_000_000),
    bulkhead(max_concurrent = 64)
)]
fn resilient_noop() -> Result<u64, BenchError> {
    Ok(black_box(1))
}

#[test]
fn calls_recorded_by_the_prometheus_recorder_allocate_only_its_histogram_blocks() {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            resilience::metrics::DURATION_BUCKETS,
        )
        .unwrap_or_else(|e| unreachable!("valid buckets: {e}"))
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap_or_else(|e| unreachable!("first: {e}"));
    resilience::metrics::install().forever();

    // Warm-up: each instance registers its handles on its first event; `resilient_noop`'s
    // on a recorder that stores nothing.
    let _ = resilient_stack();
    let _ = metrics::with_local_recorder(&metrics::NoopRecorder, resilient_noop);
    let breaker = CircuitBreaker::new("alloc-metrics-closed", CircuitBreakerConfig::default());
    let _ = breaker.call(|| Ok::<u64, Error>(1));

    let (n, ok) = allocations_during(|| (0..CALLS).filter(|_| resilient_noop().is_ok()).count());
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} #[resilient] calls reporting their metrics");

    let (n, ok) = allocations_during(|| (0..CALLS).filter(|_| resilient_stack().is_ok()).count());
    assert_eq!(ok, CALLS);
    let blocks = CALLS.div_ceil(64) as u64;
    assert!(
        n <= blocks,
        "{n} allocations in {CALLS} #[resilient] calls on the Prometheus recorder: more than its {blocks} histogram blocks"
    );

    let (n, ok) = allocations_during(|| {
        (0..CALLS).filter(|_| breaker.call(|| Ok::<u64, Error>(black_box(1))).is_ok()).count()
    });
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} closed-breaker calls with metrics recorded");

    let config = RateLimitConfig::builder()
        .per_second(1_000)
        .burst(1_000_000)
        .on_limit(OnLimit::Reject)
        .build()
        .unwrap_or_else(|e| unreachable!("valid config: {e}"));
    let keyed = KeyedRateLimiter::<String>::new("alloc-metrics-keyed", config);
    let _ = keyed.try_acquire("shop-1", 1);
    let (n, ok) = allocations_during(|| {
        (0..CALLS).filter(|_| keyed.try_acquire("shop-1", 1).is_ok()).count()
    });
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} keyed grants with metrics recorded");

    // And they were recorded.
    let text = handle.render();
    let calls = format!(
        "resilience_circuit_breaker_calls_total{{name=\"alloc-metrics-closed\",outcome=\"success\"}} {}",
        CALLS + 1
    );
    assert!(text.contains(&calls), "{text}");
}
