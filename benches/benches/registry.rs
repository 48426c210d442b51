//! Cost as work grows: looking a circuit up by name in a registry holding 10, 10³ and
//! 10⁶ named circuits, `resilience`'s `Registry` vs the nearest peer setup, a
//! `DashMap<String, Arc<recloser::Recloser>>` holding as many. Each lookup returns a
//! shared handle (an `Arc` clone) to a name taken in a scattered order, so the larger
//! maps are read across memory, as a service with many tenants reads them. The bytes
//! per name are in the `memory` bench.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use dashmap::DashMap;
use recloser::Recloser;
use resilience::circuit::CircuitBreakerConfig;
use resilience::registry::Registry;

/// The name of circuit `i`.
fn name(i: usize) -> String {
    format!("tenant-{i}.circuit")
}

/// Visits every index of `0..n` once per `n` calls in a scattered order (a stride
/// coprime with `n`).
fn scattered(n: usize) -> impl FnMut() -> usize {
    let stride = (0..).map(|k| 7_919 + k).find(|s| gcd(*s, n) == 1).unwrap_or(1);
    let mut i = 0;
    move || {
        i = (i + stride) % n;
        i
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lookups(c: &mut Criterion) {
    for (label, n) in [("10", 10), ("1k", 1_000), ("1m", 1_000_000)] {
        let names: Vec<String> = (0..n).map(name).collect();

        let registry = Registry::new();
        for name in &names {
            let created =
                registry.circuit_breakers().get_or_create(name, CircuitBreakerConfig::default());
            assert!(created.is_ok(), "a fresh name with the default config");
        }
        let peer: DashMap<String, Arc<Recloser>> =
            names.iter().map(|n| (n.clone(), Arc::new(Recloser::default()))).collect();

        let mut g = c.benchmark_group(format!("registry_lookup_{label}"));
        let mut next = scattered(n);
        g.bench_function("resilience", |b| {
            b.iter(|| registry.circuit_breakers().get(black_box(&names[next()])))
        });
        let mut next = scattered(n);
        g.bench_function("DashMap<String, Arc<Recloser>>", |b| {
            b.iter(|| peer.get(black_box(names[next()].as_str())).map(|r| Arc::clone(&r)))
        });
        g.finish();
    }
}

criterion_group!(benches, lookups);
criterion_main!(benches);
