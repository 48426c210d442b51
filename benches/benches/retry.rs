//! Retry whose first attempt succeeds: `resilience` vs backon vs the bare call, sync and
//! async. Async calls are polled once with a no-op waker (they complete on that poll), so
//! no runtime cost is added to either side.
#![allow(missing_docs)]

use std::hint::black_box;

use backon::{BlockingRetryable as _, ExponentialBuilder, Retryable as _};
use criterion::{Criterion, criterion_group, criterion_main};
use resilience::retry::RetryPolicy;
use resilience_benches::poll_once;

#[derive(Debug)]
struct Flaky;

#[inline(never)]
fn op() -> Result<u64, Flaky> {
    Ok(black_box(1))
}

#[inline(never)]
async fn op_async() -> Result<u64, Flaky> {
    Ok(black_box(1))
}

fn policy() -> RetryPolicy {
    RetryPolicy::builder().max_attempts(3).build().unwrap_or_default()
}

fn sync(c: &mut Criterion) {
    let policy = policy();
    let backoff = ExponentialBuilder::default().with_max_times(2);
    let mut g = c.benchmark_group("retry_sync_first_success");
    g.bench_function("resilience", |b| b.iter(|| policy.call(op)));
    g.bench_function("backon", |b| b.iter(|| op.retry(backoff).call()));
    g.bench_function("bare", |b| b.iter(op));
    g.finish();
}

fn asynchronous(c: &mut Criterion) {
    let policy = policy();
    let backoff = ExponentialBuilder::default().with_max_times(2);
    let mut g = c.benchmark_group("retry_async_first_success");
    g.bench_function("resilience", |b| b.iter(|| poll_once(policy.call_async(op_async))));
    g.bench_function("backon", |b| b.iter(|| poll_once(op_async.retry(backoff))));
    g.bench_function("bare", |b| b.iter(|| poll_once(op_async())));
    g.finish();
}

criterion_group!(benches, sync, asynchronous);
criterion_main!(benches);
