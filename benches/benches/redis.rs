//! The Redis-backed limiter's acquire against a bare `PING` round trip on the same
//! backend, in the same run: async (a current-thread tokio runtime) and blocking (a pooled
//! connection), direct and keyed. Every acquire is one script round trip, so the target is
//! stated against the round trip itself: acquire ≤ 1.5× `PING`.
//!
//! Needs a Redis: the one `RESILIENCE_REDIS_URL` names, else a `redis-server` started on a
//! free loopback port. With neither, it says so loudly and measures nothing.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use resilience::rate_limit::{KeyedRateLimiter, RateLimitConfig, RateLimiter};
use resilience::redis::{RedisBackend, RedisConfig};
use resilience::{Backend, FailMode};
use resilience_benches::table::REDIS_PING;
use resilience_tests::redis_server::{RedisServer, unique_prefix};

/// A rate so high that the shared bucket never makes a caller wait (one permit per
/// nanosecond, a million in the bucket): every acquire is the "granted now" path.
const FAST_PER_SECOND: u32 = 10_000;
const BURST: u32 = 10_000_000;
/// Keys the keyed limiter walks through (each one its own Redis key).
const KEYS: usize = 1024;
const KEYED_ROW: &str = "resilience (keyed, 1024 keys)";

fn limiter_config() -> RateLimitConfig {
    // Fail closed: an unreachable Redis must show up as errors, never as the (much
    // faster) local fallback.
    let config = RateLimitConfig::builder()
        .per_second(FAST_PER_SECOND)
        .burst(BURST)
        .backend(Backend::Redis(FailMode::Closed))
        .build();
    config.unwrap_or_else(|e| unreachable!("valid bench config: {e}"))
}

/// Everything the group measures, on one backend.
struct Subjects {
    backend: Arc<RedisBackend>,
    limiter: RateLimiter,
    keyed: KeyedRateLimiter<String>,
    keys: Vec<String>,
}

impl Subjects {
    fn new(server: &RedisServer) -> Result<Self, String> {
        let config = RedisConfig::builder(server.url())
            .key_prefix(unique_prefix("bench"))
            .timeout(Duration::from_secs(1))
            .build()
            .map_err(|e| e.to_string())?;
        let backend = Arc::new(RedisBackend::new(config).map_err(|e| e.to_string())?);
        let limiter = RateLimiter::with_redis("bench-redis", limiter_config(), backend.clone())
            .map_err(|e| e.to_string())?;
        let keyed =
            KeyedRateLimiter::with_redis("bench-redis-keyed", limiter_config(), backend.clone())
                .map_err(|e| e.to_string())?;
        let keys = (0..KEYS).map(|i| format!("shop-{i}.example.com")).collect();
        Ok(Subjects { backend, limiter, keyed, keys })
    }

    /// One of each call, so that connections are open, the script is loaded and every
    /// key exists before anything is timed.
    fn warm(&self, rt: &tokio::runtime::Runtime) -> Result<(), resilience::Error> {
        self.backend.ping_blocking()?;
        self.limiter.acquire(1)?;
        rt.block_on(async {
            self.backend.ping_async().await?;
            self.limiter.acquire_async(1).await?;
            for k in &self.keys {
                self.keyed.acquire_async(k.as_str(), 1).await?;
            }
            Ok::<_, resilience::Error>(())
        })?;
        for k in &self.keys {
            self.keyed.acquire(k.as_str(), 1)?;
        }
        Ok(())
    }
}

/// Counts failed calls, so that a Redis going away mid-run is reported, not timed.
#[derive(Default)]
struct Failures(AtomicU64);

impl Failures {
    fn note<T>(&self, r: Result<T, resilience::Error>) {
        if r.is_err() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn report(&self, group: &str) {
        let n = self.0.load(Ordering::Relaxed);
        if n > 0 {
            eprintln!(
                "\n!!! {group}: {n} calls failed (Redis unavailable or slow past the timeout): \
                 its figures are not round trips and must not be used !!!\n"
            );
        }
    }
}

fn asynchronous(c: &mut Criterion, s: &Subjects, rt: &tokio::runtime::Runtime) {
    let failures = &Failures::default();
    let mut g = c.benchmark_group("redis_acquire_async");
    g.bench_function("resilience", |b| {
        b.to_async(rt).iter(|| async move { failures.note(s.limiter.acquire_async(1).await) })
    });
    let mut i = 0usize;
    g.bench_function(KEYED_ROW, |b| {
        b.to_async(rt).iter(|| {
            i = i.wrapping_add(1);
            let key = s.keys[i % KEYS].as_str();
            async move { failures.note(s.keyed.acquire_async(key, 1).await) }
        })
    });
    g.bench_function(REDIS_PING, |b| {
        b.to_async(rt).iter(|| async move { failures.note(s.backend.ping_async().await) })
    });
    g.finish();
    failures.report("redis_acquire_async");
}

fn blocking(c: &mut Criterion, s: &Subjects) {
    let failures = Failures::default();
    let mut g = c.benchmark_group("redis_acquire_blocking");
    g.bench_function("resilience", |b| b.iter(|| failures.note(s.limiter.acquire(1))));
    let mut i = 0usize;
    g.bench_function(KEYED_ROW, |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            failures.note(s.keyed.acquire(s.keys[i % KEYS].as_str(), 1))
        })
    });
    g.bench_function(REDIS_PING, |b| b.iter(|| failures.note(s.backend.ping_blocking())));
    g.finish();
    failures.report("redis_acquire_blocking");
}

/// A shared limiter holding a leased share (a long period, one process holding the whole
/// rate): its acquires are the local fast path, against governor's `check` (target ≤ 2×).
fn leased(c: &mut Criterion, server: &RedisServer) {
    let setup = || -> Result<RateLimiter, String> {
        let config = RedisConfig::builder(server.url())
            .key_prefix(unique_prefix("bench-lease"))
            .timeout(Duration::from_secs(1))
            .lease(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let backend = Arc::new(RedisBackend::new(config).map_err(|e| e.to_string())?);
        // A permit per nanosecond: the share never runs dry, whatever the loop's speed.
        let limit = RateLimitConfig::builder()
            .per_second(1_000_000_000)
            .burst(BURST)
            .backend(Backend::Redis(FailMode::Closed))
            .build()
            .map_err(|e| e.to_string())?;
        RateLimiter::with_redis("bench-leased", limit, backend).map_err(|e| e.to_string())
    };
    let limiter = match setup() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("redis benchmark: cannot set up the leased limiter: {e}");
            return;
        }
    };
    // The first acquire takes the share (one script); the rest spend it.
    for _ in 0..10_000 {
        if limiter.try_acquire(1).is_err() {
            eprintln!("\n!!! redis_leased_acquire SKIPPED: the share could not be taken !!!\n");
            return;
        }
    }
    let failures = Failures::default();
    let quota = governor::Quota::per_second(std::num::NonZeroU32::MAX)
        .allow_burst(std::num::NonZeroU32::MAX);
    let gov = governor::RateLimiter::direct(quota);
    let mut g = c.benchmark_group("redis_leased_acquire");
    g.bench_function("resilience", |b| b.iter(|| failures.note(limiter.try_acquire(1))));
    g.bench_function("governor", |b| b.iter(|| gov.check()));
    g.finish();
    failures.report("redis_leased_acquire");
}

fn redis(c: &mut Criterion) {
    // `None` after a loud message: no Redis, nothing to measure.
    let Some(server) = RedisServer::shared() else {
        return;
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("redis benchmark: cannot build a tokio runtime: {e}");
            return;
        }
    };
    let subjects = match Subjects::new(&server) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("redis benchmark: cannot set up the backend: {e}");
            return;
        }
    };
    if let Err(e) = subjects.warm(&rt) {
        eprintln!(
            "\n!!! redis benchmark SKIPPED: Redis at {} does not answer: {e} !!!\n",
            server.url()
        );
        return;
    }
    asynchronous(c, &subjects, &rt);
    blocking(c, &subjects);
    leased(c, &server);
}

criterion_group!(benches, redis);
criterion_main!(benches);
