//! The cost of metrics: a closed breaker's call and `#[resilient]` (retry, breaker,
//! limiter, bulkhead) with no metrics subscription (`metrics_off`: the same machine code
//! as a build without the feature, which adds only the `resilience::metrics` module),
//! with `resilience::metrics` installed and no recorder behind the facade
//! (`metrics_no_recorder`), and with the Prometheus recorder (`resilience`).
//!
//! One process, one global recorder: the no-recorder instances register their handles
//! under `metrics::NoopRecorder` (what the facade hands out when no recorder is
//! installed), the others under the Prometheus recorder.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use metrics::{NoopRecorder, with_local_recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use resilience::Error;
use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig};
use resilience::resilient;

use resilience_benches::BenchError;

macro_rules! resilient_fn {
    ($name:ident, $instance:literal) => {
        #[resilient(
                    retry(max_attempts = 3),
                    circuit_breaker(name = $instance, failure_threshold = 5),
                    rate_limit(name = $instance, per_second = 1_000_000_000, burst = 1_000_000),
                    bulkhead(max_concurrent = 64)
                )]
        fn $name() -> Result<u64, BenchError> {
            Ok(black_box(1))
        }
    };
}

resilient_fn!(resilient_off, "bench-metrics-off");
resilient_fn!(resilient_no_recorder, "bench-metrics-no-recorder");
resilient_fn!(resilient_prometheus, "bench-metrics-prometheus");

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::new(name, CircuitBreakerConfig::default())
}

fn call(b: &CircuitBreaker) -> Result<u64, Error> {
    b.call(|| Ok(black_box(1)))
}

fn metrics(c: &mut Criterion) {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            resilience::metrics::DURATION_BUCKETS,
        )
        .unwrap_or_else(|e| unreachable!("valid buckets: {e}"))
        .build_recorder();
    metrics::set_global_recorder(recorder).unwrap_or_else(|e| unreachable!("first: {e}"));

    let (off, no_recorder, prometheus) = (
        breaker("bench-metrics-off"),
        breaker("bench-metrics-none"),
        breaker("bench-metrics-prom"),
    );
    let mut g = c.benchmark_group("metrics_breaker_closed");
    g.bench_function("metrics_off", |b| b.iter(|| call(&off)));
    let subscription = resilience::metrics::install();
    with_local_recorder(&NoopRecorder, || call(&no_recorder)).ok();
    g.bench_function("metrics_no_recorder", |b| b.iter(|| call(&no_recorder)));
    g.bench_function("resilience", |b| b.iter(|| call(&prometheus)));
    g.finish();
    drop(subscription);

    let mut g = c.benchmark_group("metrics_resilient_sync");
    g.bench_function("metrics_off", |b| b.iter(resilient_off));
    let subscription = resilience::metrics::install();
    with_local_recorder(&NoopRecorder, resilient_no_recorder).ok();
    g.bench_function("metrics_no_recorder", |b| b.iter(resilient_no_recorder));
    g.bench_function("resilience", |b| b.iter(resilient_prometheus));
    g.finish();
    drop(subscription);
}

criterion_group!(benches, metrics);
criterion_main!(benches);
