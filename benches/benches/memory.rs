//! Memory: heap bytes per breaker and per limiter (the object boxed, so its own size and
//! everything it allocates), per key of a keyed limiter at 1 M keys and after idle
//! eviction, bytes and time per key at 10 M keys, and per name of a registry of 10³ and
//! 10⁶ named circuits, `resilience` vs the peers. Measured with the counting global
//! allocator as
//! the growth of live heap bytes; prints a table and leaves the rows for `bench-table`.
#![allow(missing_docs)]

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use governor::Quota;
use governor::clock::FakeRelativeClock;
use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig};
use resilience::clock::ManualClock;
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, RateLimitConfig, RateLimiter};
use resilience::registry::Registry;
use resilience_benches::alloc::{CountingAllocator, live_bytes};
use resilience_benches::table::{MEMORY_FILE, MemoryRow, memory_json, render};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

const INSTANCES: usize = 1_000;
const KEYS: usize = 1_000_000;
/// The scaling row: one keyed limiter over ten million `u64` keys.
const MANY_KEYS: u64 = 10_000_000;

/// Average heap bytes of one `Box<T>` made by `make`, over `INSTANCES` instances.
fn per_instance<T>(make: impl Fn(usize) -> T) -> f64 {
    let mut held: Vec<Box<T>> = Vec::with_capacity(INSTANCES);
    let before = live_bytes();
    for i in 0..INSTANCES {
        held.push(Box::new(make(i)));
    }
    let grown = live_bytes().saturating_sub(before);
    drop(held);
    grown as f64 / INSTANCES as f64
}

fn limiter_config() -> RateLimitConfig {
    // One permit a minute: after its first call a key's bucket is not full again for a
    // minute, so nothing is evicted while the keys are inserted.
    let config = RateLimitConfig::builder()
        .per_minute(1)
        .burst(1)
        .on_limit(OnLimit::Reject)
        .idle_timeout(Duration::from_secs(60))
        .build();
    config.unwrap_or_else(|e| unreachable!("valid bench config: {e}"))
}

fn key(i: usize) -> String {
    format!("shop-{i}.example.com")
}

fn keyed_rows() -> Vec<MemoryRow> {
    let idle = Duration::from_secs(600);

    let clock = ManualClock::new();
    let before = live_bytes();
    let ours: KeyedRateLimiter<String> =
        KeyedRateLimiter::with_clock("memory-keyed", limiter_config(), clock.shared());
    for i in 0..KEYS {
        let _ = ours.try_acquire(key(i).as_str(), 1);
    }
    let ours_full = live_bytes().saturating_sub(before);
    let ours_len = ours.len();
    clock.advance(idle);
    ours.evict_idle();
    let ours_after = live_bytes().saturating_sub(before);
    let ours_len_after = ours.len();
    drop(ours);

    let fake = FakeRelativeClock::default();
    let before = live_bytes();
    let quota = Quota::per_minute(NonZeroU32::MIN);
    let gov = governor::RateLimiter::dashmap_with_clock(quota, fake.clone());
    for i in 0..KEYS {
        let _ = gov.check_key(&key(i));
    }
    let gov_full = live_bytes().saturating_sub(before);
    let gov_len = gov.len();
    fake.advance(idle);
    gov.retain_recent();
    gov.shrink_to_fit();
    let gov_after = live_bytes().saturating_sub(before);
    let gov_len_after = gov.len();
    drop(gov);

    eprintln!(
        "keyed: resilience {ours_len} -> {ours_len_after} keys, governor {gov_len} -> {gov_len_after} keys"
    );
    let per_key = |bytes: usize| bytes as f64 / KEYS as f64;
    vec![
        MemoryRow {
            what: "bytes per key at 1M keys (keyed limiter, String keys)".into(),
            resilience: per_key(ours_full),
            peer: Some(("governor".into(), per_key(gov_full))),
        },
        MemoryRow {
            what: "heap left after evicting 1M idle keys (bytes, total)".into(),
            resilience: ours_after as f64,
            peer: Some(("governor".into(), gov_after as f64)),
        },
    ]
}

/// Bytes per name of a registry holding `n` named circuits (the registry, its map, the
/// names and the breakers), against a `DashMap<String, Arc<Recloser>>` of as many.
fn registry_rows() -> Vec<MemoryRow> {
    let mut rows = Vec::new();
    for n in [1_000, 1_000_000] {
        let names: Vec<String> = (0..n).map(|i| format!("tenant-{i}.circuit")).collect();

        let before = live_bytes();
        let registry = Registry::new();
        for name in &names {
            let _ =
                registry.circuit_breakers().get_or_create(name, CircuitBreakerConfig::default());
        }
        let ours = live_bytes().saturating_sub(before);
        drop(registry);

        let before = live_bytes();
        let peer: DashMap<String, Arc<recloser::Recloser>> =
            names.iter().map(|n| (n.clone(), Arc::new(recloser::Recloser::default()))).collect();
        let theirs = live_bytes().saturating_sub(before);
        drop(peer);

        let per_name = |bytes: usize| bytes as f64 / n as f64;
        rows.push(MemoryRow {
            what: format!("bytes per name, registry of {n} circuits"),
            resilience: per_name(ours),
            peer: Some(("DashMap<String, Arc<Recloser>>".into(), per_name(theirs))),
        });
    }
    rows
}

/// Bytes per key and time per `try_acquire` on an existing key, with `MANY_KEYS` keys in
/// one keyed limiter (`u64` keys, so that the keys themselves stay small), against
/// governor's keyed limiter on its default DashMap store.
fn scaling_rows() -> Vec<MemoryRow> {
    let clock = ManualClock::new();
    let before = live_bytes();
    let ours: KeyedRateLimiter<u64> =
        KeyedRateLimiter::with_clock("memory-scaling", limiter_config(), clock.shared());
    for k in 0..MANY_KEYS {
        let _ = ours.try_acquire(&k, 1);
    }
    let ours_bytes = live_bytes().saturating_sub(before);
    // A second pass over every key: each call finds its key and is refused (one permit a
    // minute), the same work for both crates.
    let start = Instant::now();
    for k in 0..MANY_KEYS {
        let _ = std::hint::black_box(ours.try_acquire(&k, 1));
    }
    let ours_ns = start.elapsed().as_nanos() as f64 / MANY_KEYS as f64;
    drop(ours);

    let fake = FakeRelativeClock::default();
    let before = live_bytes();
    let gov = governor::RateLimiter::dashmap_with_clock(Quota::per_minute(NonZeroU32::MIN), fake);
    for k in 0..MANY_KEYS {
        let _ = gov.check_key(&k);
    }
    let gov_bytes = live_bytes().saturating_sub(before);
    let start = Instant::now();
    for k in 0..MANY_KEYS {
        let _ = std::hint::black_box(gov.check_key(&k));
    }
    let gov_ns = start.elapsed().as_nanos() as f64 / MANY_KEYS as f64;
    drop(gov);

    let per_key = |bytes: usize| bytes as f64 / MANY_KEYS as f64;
    vec![
        MemoryRow {
            what: "bytes per key at 10M keys (keyed limiter, u64 keys)".into(),
            resilience: per_key(ours_bytes),
            peer: Some(("governor".into(), per_key(gov_bytes))),
        },
        MemoryRow {
            what: "ns (not bytes) per try_acquire on an existing key at 10M keys".into(),
            resilience: ours_ns,
            peer: Some(("governor".into(), gov_ns)),
        },
    ]
}

fn target_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(dir));
    }
    // <target>/<profile>/deps/memory-<hash>
    std::env::current_exe().ok()?.ancestors().nth(3).map(PathBuf::from)
}

fn main() {
    let hour = Duration::from_secs(3600);
    let breaker = per_instance(|i| {
        CircuitBreaker::new(format!("breaker-{i}"), CircuitBreakerConfig::default())
    });
    // A breaker's success counter gets padded per-thread slots only once a second thread
    // counts in it: the same breakers after one call from this thread, and after one call
    // from this thread and one from another.
    let call = |b: &CircuitBreaker| drop(b.call(|| Ok::<(), resilience::Error>(())));
    let breaker_one_thread = per_instance(|i| {
        let b = CircuitBreaker::new(format!("breaker-{i}"), CircuitBreakerConfig::default());
        call(&b);
        b
    });
    let breaker_two_threads = per_instance(|i| {
        let b = CircuitBreaker::new(format!("breaker-{i}"), CircuitBreakerConfig::default());
        call(&b);
        std::thread::scope(|s| {
            s.spawn(|| call(&b));
        });
        b
    });
    let recloser_call = |r: &recloser::Recloser| drop(r.call(|| Ok::<(), ()>(())));
    let recloser_used = per_instance(|_| {
        let r = recloser::Recloser::custom().open_wait(hour).build();
        recloser_call(&r);
        r
    });
    let recloser = per_instance(|_| recloser::Recloser::custom().open_wait(hour).build());
    let failsafe = per_instance(|_| failsafe::Config::new().build());
    // Each limiter after its first call, so that what a call allocates counts too.
    let limiter = per_instance(|i| {
        let l = RateLimiter::new(format!("limiter-{i}"), limiter_config());
        let _ = l.try_acquire(1);
        l
    });
    let governor = per_instance(|_| {
        let g = governor::RateLimiter::direct(Quota::per_minute(NonZeroU32::MIN));
        let _ = g.check();
        g
    });

    let mut rows = vec![
        MemoryRow {
            what: "bytes per circuit breaker".into(),
            resilience: breaker,
            peer: Some(("recloser".into(), recloser)),
        },
        MemoryRow {
            what: "bytes per circuit breaker".into(),
            resilience: breaker,
            peer: Some(("failsafe".into(), failsafe)),
        },
        MemoryRow {
            what: "bytes per circuit breaker, called from 1 thread".into(),
            resilience: breaker_one_thread,
            peer: Some(("recloser".into(), recloser_used)),
        },
        MemoryRow {
            what: "bytes per circuit breaker, called from 2 threads".into(),
            resilience: breaker_two_threads,
            peer: Some(("recloser".into(), recloser_used)),
        },
        MemoryRow {
            what: "bytes per rate limiter (after its first call)".into(),
            resilience: limiter,
            peer: Some(("governor".into(), governor)),
        },
    ];
    rows.extend(keyed_rows());
    rows.extend(registry_rows());
    rows.extend(scaling_rows());

    print!("{}", render(&[], &rows));
    if let Some(dir) = target_dir()
        && let Err(e) = std::fs::write(dir.join(MEMORY_FILE), memory_json(&rows))
    {
        eprintln!("memory: cannot write {}: {e}", dir.join(MEMORY_FILE).display());
    }
}
