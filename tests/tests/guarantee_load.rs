//! Guarantee: 2 threads hammering a registry of named circuits and a keyed limiter with
//! many keys keep memory bounded (idle keys are evicted) and stats consistent
//! (successes + failures + ignored + rejections = calls, per circuit and summed).
//!
//! Real threads (the promise is about concurrency); the keyed limiter runs on a
//! `ManualClock` that advances 100 ms every 1 000 calls. Scaled by default (1 000
//! circuits, 100 000 keys, 2 × 50 000 calls); the full figures (10 000 circuits,
//! 1 000 000 keys, 2 × 1 000 000 calls):
//! `RESILIENCE_FULL=1 cargo test --release -p resilience-tests --test guarantee_load -- --nocapture`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use resilience::circuit::CircuitBreakerConfig;
use resilience::clock::ManualClock;
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, RateLimitConfig};
use resilience::registry::Registry;
use resilience::{CircuitBreaker, Error};

fn full() -> bool {
    std::env::var_os("RESILIENCE_FULL").is_some()
}

fn seed() -> u64 {
    std::env::var("RESILIENCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(8)
}

const TICK_CALLS: u64 = 1_000;
const TICK: Duration = Duration::from_millis(100);
const IDLE: Duration = Duration::from_secs(1);

#[test]
fn two_threads_through_many_circuits_and_keys_keep_memory_bounded_and_stats_consistent() {
    let (circuits, keys, calls) =
        if full() { (10_000, 1_000_000_u64, 1_000_000_u64) } else { (1_000, 100_000, 50_000) };
    let seed = seed();
    let registry = Registry::new();
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(5)
        .recovery_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let breakers: Vec<Arc<CircuitBreaker>> = (0..circuits)
        .map(|i| {
            registry.circuit_breakers().get_or_create(&format!("load-{i}"), config.clone()).unwrap()
        })
        .collect();
    let clock = ManualClock::new();
    let limit = RateLimitConfig::builder()
        .per_second(1_000)
        .burst(10)
        .on_limit(OnLimit::Reject)
        .idle_timeout(IDLE)
        .build()
        .unwrap();
    let keyed: Arc<KeyedRateLimiter> =
        Arc::new(KeyedRateLimiter::with_clock("load-keys", limit, clock.shared()));
    let per_circuit: Arc<Vec<AtomicU64>> =
        Arc::new((0..circuits).map(|_| AtomicU64::new(0)).collect());
    let total = Arc::new(AtomicU64::new(0));
    let max_len = Arc::new(AtomicUsize::new(0));

    let threads: Vec<_> = (0..2_u64)
        .map(|t| {
            let (breakers, keyed, per_circuit, total, max_len, clock) = (
                breakers.clone(),
                keyed.clone(),
                per_circuit.clone(),
                total.clone(),
                max_len.clone(),
                clock.clone(),
            );
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(t));
                let (mut ok, mut failed, mut rejected) = (0_u64, 0_u64, 0_u64);
                for i in 0..calls {
                    let key = format!("key-{}", (t * calls + i) % keys);
                    let _ = keyed.try_acquire(key.as_str(), 1);
                    let c = rng.usize(..breakers.len());
                    per_circuit[c].fetch_add(1, Ordering::Relaxed);
                    let fail = rng.f64() < 0.3;
                    match breakers[c].call(|| if fail { Err(Error::timeout(TICK)) } else { Ok(()) })
                    {
                        Ok(()) => ok += 1,
                        Err(Error::CircuitOpen { .. }) => rejected += 1,
                        Err(_) => failed += 1,
                    }
                    if total.fetch_add(1, Ordering::Relaxed) % TICK_CALLS == TICK_CALLS - 1 {
                        clock.advance(TICK);
                        max_len.fetch_max(keyed.len(), Ordering::Relaxed);
                    }
                }
                (ok, failed, rejected)
            })
        })
        .collect();
    let (mut ok, mut failed, mut rejected) = (0, 0, 0);
    for h in threads {
        let (o, f, r) = h.join().unwrap();
        (ok, failed, rejected) = (ok + o, failed + f, rejected + r);
    }

    // Stats: per circuit and summed.
    let mut sum = (0, 0, 0, 0);
    for (i, b) in breakers.iter().enumerate() {
        let s = b.stats();
        let made = per_circuit[i].load(Ordering::Relaxed);
        assert_eq!(s.successes + s.failures + s.ignored + s.rejections, made, "{}", s.name);
        assert_eq!(s.calls, s.successes + s.failures + s.ignored, "{}", s.name);
        sum = (sum.0 + s.successes, sum.1 + s.failures, sum.2 + s.ignored, sum.3 + s.rejections);
    }
    assert_eq!(sum, (ok, failed, 0, rejected));
    assert_eq!(ok + failed + rejected, 2 * calls);
    assert_eq!(registry.circuit_breakers().all_stats().len(), circuits);

    // Memory: the keys live in one idle period (plus a tick) are kept; a sweep lets the
    // map grow to twice what it kept before the next one. Measured peaks sit near 3x the
    // live keys (sweeps race with inserts), so the bound is 4x: bounded, whatever the
    // number of distinct keys.
    let live = (IDLE.as_nanos() / TICK.as_nanos() + 1) as usize * TICK_CALLS as usize;
    let bound = 4 * live + 1_024;
    let max_len = max_len.load(Ordering::Relaxed);
    assert!(max_len <= bound, "{max_len} keys held at once, bound {bound}");

    // Idle keys go: past the idle timeout, fresh keys trigger a sweep of the old ones.
    let before = keyed.len();
    clock.advance(IDLE * 2);
    let mut fresh = 0;
    while keyed.len() > fresh {
        keyed.try_acquire(format!("fresh-{fresh}").as_str(), 1).unwrap();
        fresh += 1;
        assert!(fresh <= 2 * bound, "no sweep after {fresh} fresh keys");
    }
    println!(
        "load (seed {seed}): 2 threads x {calls} calls, {circuits} circuits, {} distinct keys: \
         {ok} ok + {failed} failed + {rejected} rejected = {} (stats agree); keyed limiter \
         held at most {max_len} keys (bound {bound}); {before} keys before the idle sweep, \
         {} after touching {fresh} fresh keys",
        keys.min(2 * calls),
        ok + failed + rejected,
        keyed.len(),
    );
    assert!(keyed.len() <= fresh, "every idle key evicted");
}
