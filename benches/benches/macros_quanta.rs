//! `#[resilient]` (retry, breaker, limiter, bulkhead) on a trivial fn with the `quanta`
//! feature's TSC clock as the process default (`set_default_clock` before any instance
//! exists, the production setting). A separate binary, because the default clock is
//! chosen once per process; the row lands in the `macro_resilient_sync` group.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use resilience::clock::{QuantaClock, set_default_clock};
use resilience::resilient;
use resilience_benches::table::QUANTA_ROW;

use resilience_benches::BenchError;

// The same stack as in `macros.rs`.
#[resilient(
    retry(max_attempts = 3),
    circuit_breaker(name = "bench-resilient", failure_threshold = 5),
    rate_limit(name = "bench-resilient", per_second = 1_000_000_000, burst = 1_000_000),
    bulkhead(max_concurrent = 64)
)]
fn resilient_stack() -> Result<u64, BenchError> {
    Ok(black_box(1))
}

fn macros_quanta(c: &mut Criterion) {
    assert!(
        set_default_clock(Arc::new(QuantaClock::new())).is_ok(),
        "nothing may read the default clock before this"
    );
    let mut g = c.benchmark_group("macro_resilient_sync");
    g.bench_function(QUANTA_ROW, |b| b.iter(resilient_stack));
    g.finish();
}

criterion_group!(benches, macros_quanta);
criterion_main!(benches);
