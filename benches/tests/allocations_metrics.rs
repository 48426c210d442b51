//! Heap allocations per call with metrics recorded: `#[resilient]` (retry, breaker,
//! limiter, bulkhead) and a closed breaker's call, with `resilience::metrics` installed
//! and the Prometheus recorder behind the facade.
//!
//! None: a call counts into its instances' own atomics (the breaker's stats, the retry
//! policy's and the call site's cells, the whole-call histogram's fixed buckets), and
//! `resilience::metrics::collect` hands the counts to the recorder.
//!
//! Its own test binary: it installs the process-global recorder and subscribes to the
//! process default registry's events.

use std::hint::black_box;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use resilience::Error;
use resilience::circuit::CircuitBreakerConfig;
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, RateLimitConfig};
use resilience::{registry, resilient};
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

#[test]
fn calls_recorded_by_the_prometheus_recorder_allocate_nothing() {
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

    // Warm-up: each call site and policy finds its cells on its first call.
    let _ = resilient_stack();
    let breaker = registry()
        .circuit_breakers()
        .get_or_create("alloc-metrics-closed", CircuitBreakerConfig::default())
        .unwrap_or_else(|e| unreachable!("valid config: {e}"));
    let _ = breaker.call(|| Ok::<u64, Error>(1));

    let (n, ok) = allocations_during(|| (0..CALLS).filter(|_| resilient_stack().is_ok()).count());
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} #[resilient] calls on the Prometheus recorder");

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
    resilience::metrics::collect();
    let text = handle.render();
    let calls = format!(
        "resilience_circuit_breaker_calls_total{{name=\"alloc-metrics-closed\",outcome=\"success\"}} {}",
        CALLS + 1
    );
    assert!(text.contains(&calls), "{text}");
    let whole = format!(
        "resilience_call_duration_seconds_count{{name=\"allocations_metrics::resilient_stack\",outcome=\"success\"}} {}",
        CALLS + 1
    );
    assert!(text.contains(&whole), "{text}");
}
