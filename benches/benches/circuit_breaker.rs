//! Circuit breaker: a closed breaker whose call succeeds (1 and 2 threads on one shared
//! breaker), and an open breaker rejecting; `resilience` vs failsafe and recloser, plus
//! one uncontended atomic increment as the floor.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;
use recloser::Recloser;
use resilience::Error;
use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig};
use resilience_benches::run_parallel;

fn ours_closed() -> CircuitBreaker {
    CircuitBreaker::new("bench-closed", CircuitBreakerConfig::default())
}

fn ours_call(b: &CircuitBreaker) -> Result<u64, Error> {
    b.call(|| Ok::<u64, Error>(black_box(1)))
}

fn failsafe_closed() -> impl failsafe::CircuitBreaker + Sync {
    failsafe::Config::new().build()
}

fn failsafe_call(b: &impl failsafe::CircuitBreaker) -> Result<u64, failsafe::Error<()>> {
    b.call(|| Ok::<u64, ()>(black_box(1)))
}

fn recloser_call(b: &Recloser) -> Result<u64, recloser::Error<()>> {
    b.call(|| Ok::<u64, ()>(black_box(1)))
}

fn closed(c: &mut Criterion) {
    let mut g = c.benchmark_group("breaker_closed_1t");
    let ours = ours_closed();
    g.bench_function("resilience", |b| b.iter(|| ours_call(&ours)));
    let fs = failsafe_closed();
    g.bench_function("failsafe", |b| b.iter(|| failsafe_call(&fs)));
    let rc = Recloser::default();
    g.bench_function("recloser", |b| b.iter(|| recloser_call(&rc)));
    let counter = AtomicU64::new(0);
    g.bench_function("atomic_increment", |b| {
        b.iter(|| black_box(&counter).fetch_add(1, Ordering::Relaxed))
    });
    g.finish();

    let mut g = c.benchmark_group("breaker_closed_2t");
    g.bench_function("resilience", |b| {
        b.iter_custom(|n| run_parallel(2, n, |_, _| drop(black_box(ours_call(&ours)))))
    });
    g.bench_function("failsafe", |b| {
        b.iter_custom(|n| run_parallel(2, n, |_, _| drop(black_box(failsafe_call(&fs)))))
    });
    g.bench_function("recloser", |b| {
        b.iter_custom(|n| run_parallel(2, n, |_, _| drop(black_box(recloser_call(&rc)))))
    });
    g.finish();
}

fn open(c: &mut Criterion) {
    let hour = Duration::from_secs(3600);
    let mut g = c.benchmark_group("breaker_open_reject");

    let config =
        CircuitBreakerConfig::builder().failure_threshold(1).recovery_timeout(hour).build();
    let ours = CircuitBreaker::new("bench-open", config.unwrap_or_default());
    let _ = ours.call(|| Err::<u64, Error>(Error::timeout(Duration::from_secs(1))));
    assert!(ours_call(&ours).is_err(), "the breaker must be open");
    g.bench_function("resilience", |b| b.iter(|| ours_call(&ours)));

    let policy =
        failsafe::failure_policy::consecutive_failures(1, failsafe::backoff::constant(hour));
    let fs = failsafe::Config::new().failure_policy(policy).build();
    let _ = fs.call(|| Err::<u64, ()>(()));
    assert!(failsafe_call(&fs).is_err(), "failsafe must be open");
    g.bench_function("failsafe", |b| b.iter(|| failsafe_call(&fs)));

    let rc = Recloser::custom().error_rate(0.5).closed_len(1).open_wait(hour).build();
    let _ = rc.call(|| Err::<u64, ()>(()));
    let _ = rc.call(|| Err::<u64, ()>(()));
    assert!(recloser_call(&rc).is_err(), "recloser must be open");
    g.bench_function("recloser", |b| b.iter(|| recloser_call(&rc)));
    g.finish();
}

criterion_group!(benches, closed, open);
criterion_main!(benches);
