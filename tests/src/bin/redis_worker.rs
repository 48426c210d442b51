//! A separate OS process for the Redis multi-process tests (`tests/redis_processes.rs`).
//!
//! ```text
//! redis-worker limit <url> <prefix> <name> <requests> <per_second> <burst>
//! redis-worker trip  <url> <prefix> <name> <failure_threshold>
//! redis-worker probe <url> <prefix> <name> <failure_threshold>
//! redis-worker orphan <url> <prefix> <name>      (no Redis configured at all)
//! ```
//! Prints one line of `key=value` pairs for the test to read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig};
use resilience::rate_limit::{OnLimit, RateLimitConfig, RateLimiter};
use resilience::redis::{RedisBackend, RedisConfig};
use resilience::{Backend, Error, FailMode};

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, url, prefix, name, rest @ ..] = args.as_slice() else {
        return Err("usage: redis-worker <limit|trip|probe> <url> <prefix> <name> ...".into());
    };
    let config = RedisConfig::builder(url.as_str())
        .key_prefix(prefix.as_str())
        .timeout(Duration::from_secs(2))
        .build()?;
    let backend = Arc::new(RedisBackend::new(config)?);
    match (mode.as_str(), rest) {
        ("limit", [requests, per_second, burst]) => {
            limit(backend, name, requests, per_second, burst)
        }
        ("trip", [threshold]) => trip(backend, name, threshold),
        ("probe", [threshold]) => probe(backend, name, threshold),
        ("orphan", []) => orphan(name),
        _ => Err(format!("bad arguments: {args:?}").into()),
    }
}

/// `requests` non-waiting acquires against the shared bucket.
fn limit(
    backend: Arc<RedisBackend>,
    name: &str,
    requests: &str,
    per_second: &str,
    burst: &str,
) -> Result<(), Failure> {
    let config = RateLimitConfig::builder()
        .per_second(per_second.parse()?)
        .burst(burst.parse()?)
        .on_limit(OnLimit::Reject)
        .backend(Backend::Redis(FailMode::Closed))
        .build()?;
    let limiter = RateLimiter::with_redis(name, config, backend)?;
    let (mut granted, mut rejected, mut unavailable) = (0u64, 0u64, 0u64);
    let started = micros_since_epoch();
    for _ in 0..requests.parse::<u64>()? {
        match limiter.try_acquire(1) {
            Ok(()) => granted += 1,
            Err(Error::RateLimited { .. }) => rejected += 1,
            Err(_) => unavailable += 1,
        }
    }
    let finished = micros_since_epoch();
    println!(
        "granted={granted} rejected={rejected} unavailable={unavailable} started={started} finished={finished}"
    );
    Ok(())
}

fn breaker(
    backend: Arc<RedisBackend>,
    name: &str,
    threshold: &str,
) -> Result<CircuitBreaker, Failure> {
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(threshold.parse()?)
        .recovery_timeout(Duration::from_secs(600))
        .backend(Backend::Redis(FailMode::Closed))
        .build()?;
    Ok(CircuitBreaker::with_redis(name, config, backend)?)
}

/// Fails calls (async) until the shared circuit rejects one.
fn trip(backend: Arc<RedisBackend>, name: &str, threshold: &str) -> Result<(), Failure> {
    let breaker = breaker(backend, name, threshold)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let failures = runtime.block_on(async {
        let mut failures = 0u32;
        for _ in 0..1000 {
            let r = breaker
                .call_async(|| async { Err::<(), Error>(Error::timeout(Duration::from_secs(1))) })
                .await;
            match r {
                Err(Error::Timeout { .. }) => failures += 1,
                Err(Error::CircuitOpen { .. }) => return Ok(failures),
                other => return Err(format!("unexpected {other:?}")),
            }
        }
        Err("the circuit never opened".to_owned())
    })?;
    println!("failures={failures} state=open");
    Ok(())
}

/// Wall-clock microseconds, to show that two workers overlapped.
fn micros_since_epoch() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros())
}

/// `Backend::Redis` instances in a process where no Redis is configured: fail closed
/// rejects with an error that says how to configure one; fail open uses the local bucket.
fn orphan(name: &str) -> Result<(), Failure> {
    let make = |fail| {
        RateLimitConfig::builder()
            .per_second(1)
            .on_limit(OnLimit::Reject)
            .backend(Backend::Redis(fail))
            .build()
            .map(|c| RateLimiter::new(name, c))
    };
    let closed = match make(FailMode::Closed)?.try_acquire(1) {
        Err(Error::BackendUnavailable { reason, .. }) => format!("unavailable reason={reason:?}"),
        other => format!("{other:?}"),
    };
    let open = match make(FailMode::Open)?.try_acquire(1) {
        Ok(()) => "local",
        Err(_) => "error",
    };
    println!("closed={closed} open={open}");
    Ok(())
}

/// One call (blocking) whose operation counts how often it ran.
fn probe(backend: Arc<RedisBackend>, name: &str, threshold: &str) -> Result<(), Failure> {
    let breaker = breaker(backend, name, threshold)?;
    let ran = AtomicU32::new(0);
    let r = breaker.call(|| {
        ran.fetch_add(1, Ordering::Relaxed);
        Ok::<_, Error>(())
    });
    let outcome = match r {
        Ok(()) => "ok",
        Err(Error::CircuitOpen { .. }) => "rejected",
        Err(_) => "error",
    };
    println!("outcome={outcome} calls={}", ran.load(Ordering::Relaxed));
    Ok(())
}
