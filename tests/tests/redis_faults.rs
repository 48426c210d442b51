//! Redis killed and restarted under running limiters and circuits: fail open falls back
//! to the local instance, fail closed rejects with `Error::BackendUnavailable`, no call
//! hangs past the timeout, and a restarted Redis is shared again.
//!
//! The backends time their retry interval on a `ManualClock`, so the test decides when
//! they try Redis again instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig};
use resilience::clock::ManualClock;
use resilience::rate_limit::{OnLimit, RateLimitConfig, RateLimiter};
use resilience::redis::{RedisBackend, RedisConfig};
use resilience::{Backend, Error, FailMode};
use resilience_tests::redis_server::{RedisServer, unique_prefix};

const RETRY: Duration = Duration::from_secs(1);

fn backend(url: &str, prefix: &str, clock: &ManualClock) -> Arc<RedisBackend> {
    let config = RedisConfig::builder(url)
        .key_prefix(prefix)
        .timeout(Duration::from_millis(500))
        .retry_interval(RETRY)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    Arc::new(RedisBackend::with_clock(config, clock.shared()).unwrap_or_else(|e| panic!("{e}")))
}

fn limiter(name: &str, fail: FailMode, backend: &Arc<RedisBackend>) -> RateLimiter {
    let config = RateLimitConfig::builder()
        .per_minute(1)
        .burst(3)
        .on_limit(OnLimit::Reject)
        .backend(Backend::Redis(fail))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    RateLimiter::with_redis(name, config, Arc::clone(backend)).unwrap_or_else(|e| panic!("{e}"))
}

fn breaker(name: &str, fail: FailMode, backend: &Arc<RedisBackend>) -> CircuitBreaker {
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(2)
        .recovery_timeout(Duration::from_secs(600))
        .backend(Backend::Redis(fail))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    CircuitBreaker::with_redis(name, config, Arc::clone(backend)).unwrap_or_else(|e| panic!("{e}"))
}

fn takes(l: &RateLimiter, n: usize) -> Vec<Result<(), Error>> {
    (0..n).map(|_| l.try_acquire(1)).collect()
}

fn is_unavailable(r: &Result<(), Error>, name: &str) -> bool {
    matches!(r, Err(Error::BackendUnavailable { name: n, .. }) if &**n == name)
}

/// Two "processes" (backends of their own) share a limit while Redis runs, fall back or
/// reject while it is down, and share again once it is back.
#[cfg_attr(
    resilience_no_redis_server,
    ignore = "needs redis-server on PATH (starts, kills and restarts its own)"
)]
#[test]
fn killing_redis_fails_open_or_closed_and_restarting_restores_sharing() {
    let mut server = RedisServer::own().unwrap_or_else(|| panic!("no redis-server started"));
    let prefix = unique_prefix("faults");
    let (clock_a, clock_b) = (ManualClock::new(), ManualClock::new());
    let (a, b) =
        (backend(server.url(), &prefix, &clock_a), backend(server.url(), &prefix, &clock_b));
    let (open_a, open_b) =
        (limiter("open", FailMode::Open, &a), limiter("open", FailMode::Open, &b));
    let closed_a = limiter("closed", FailMode::Closed, &a);
    let (circuit_open, circuit_closed) =
        (breaker("db", FailMode::Open, &a), breaker("db-strict", FailMode::Closed, &a));

    // Shared: three permits between the two processes.
    assert_eq!(takes(&open_a, 2), vec![Ok(()), Ok(())]);
    assert_eq!(open_b.try_acquire(1), Ok(()));
    assert!(matches!(open_b.try_acquire(1), Err(Error::RateLimited { .. })));
    assert_eq!(closed_a.try_acquire(1), Ok(()));

    server.kill();

    // Fail closed: a clear rejection naming the instance and the cause.
    let r = closed_a.try_acquire(1);
    assert!(is_unavailable(&r, "closed"), "{r:?}");
    let message = r.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("`closed`") && message.contains("fail closed"), "{message}");
    assert!(!a.is_available());
    // Fail open: each process falls back to its own local bucket (full: 3 permits), which
    // still limits.
    assert_eq!(takes(&open_a, 4)[..3], [Ok(()), Ok(()), Ok(())]);
    assert!(matches!(open_a.try_acquire(1), Err(Error::RateLimited { .. })));
    // Circuits: fail open runs the call under the local breaker; fail closed rejects it
    // without running it.
    let ran = AtomicU32::new(0);
    let call = |b: &CircuitBreaker| {
        b.call(|| {
            ran.fetch_add(1, Ordering::Relaxed);
            Ok::<_, Error>(())
        })
    };
    assert_eq!(call(&circuit_open), Ok(()));
    assert!(matches!(call(&circuit_closed), Err(Error::BackendUnavailable { .. })));
    assert_eq!(ran.load(Ordering::Relaxed), 1);

    // Async callers neither hang nor panic either.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let r = runtime.block_on(closed_a.acquire_async(1));
    assert!(is_unavailable(&r, "closed"), "{r:?}");

    server.start().unwrap_or_else(|e| panic!("{e}"));
    // Until the retry interval passes, the backends do not try Redis.
    assert!(is_unavailable(&closed_a.try_acquire(1), "closed"));
    clock_a.advance(RETRY);
    clock_b.advance(RETRY);

    // Back and shared again. The restarted Redis kept nothing (no persistence): the
    // shared bucket is full again.
    assert_eq!(closed_a.try_acquire(1), Ok(()));
    assert!(a.is_available());
    // The async connection, first made while Redis was down, reconnects too.
    assert_eq!(runtime.block_on(closed_a.acquire_async(1)), Ok(()));
    assert_eq!(takes(&open_a, 3), vec![Ok(()), Ok(()), Ok(())]);
    assert!(matches!(open_b.try_acquire(1), Err(Error::RateLimited { .. })), "shared again");
    assert!(b.is_available());
    // The fail-closed circuit admits calls again, and counts them in Redis.
    assert_eq!(call(&circuit_closed), Ok(()));
    let strict = breaker("db-strict", FailMode::Closed, &b);
    for _ in 0..2 {
        assert!(strict.call(|| Err::<(), _>(Error::timeout(Duration::from_secs(1)))).is_err());
    }
    assert!(
        matches!(call(&circuit_closed), Err(Error::CircuitOpen { .. })),
        "opened by the other process"
    );
}

/// No Redis at all (nothing listens on the port): fail closed rejects, fail open is the
/// local limiter.
#[test]
fn an_unreachable_redis_is_an_error_or_a_local_fallback() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let clock = ManualClock::new();
    let b = backend(&format!("redis://127.0.0.1:{port}"), "nowhere", &clock);
    let closed = limiter("closed", FailMode::Closed, &b);
    let open = limiter("open", FailMode::Open, &b);
    assert!(is_unavailable(&closed.try_acquire(1), "closed"));
    assert_eq!(takes(&open, 3), vec![Ok(()), Ok(()), Ok(())]);
    assert!(matches!(open.try_acquire(1), Err(Error::RateLimited { .. })));
    assert_eq!(closed.stats().rejected, 1);
    assert!(b.ping_blocking().is_err());
}

/// A Redis that accepts connections but does not answer (every client paused): no call
/// waits past the timeout, on a fresh or a pooled connection, blocking or async. The
/// pause (2 s) is twenty timeouts long, so an `Err` saying "no answer within 100ms" is
/// the timeout at work, not the pause ending.
#[cfg_attr(
    resilience_no_redis_server,
    ignore = "needs redis-server on PATH (starts, kills and restarts its own)"
)]
#[test]
fn a_redis_that_does_not_answer_is_cut_off_at_the_timeout() {
    let server = RedisServer::own().unwrap_or_else(|| panic!("no redis-server started"));
    let prefix = unique_prefix("paused");
    let make = || {
        let config = RedisConfig::builder(server.url())
            .key_prefix(prefix.as_str())
            .timeout(Duration::from_millis(100))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        Arc::new(RedisBackend::new(config).unwrap_or_else(|e| panic!("{e}")))
    };
    let (pooled, fresh, async_backend) = (make(), make(), make());
    let warm = limiter("paused", FailMode::Closed, &pooled);
    assert_eq!(warm.try_acquire(1), Ok(()), "one connection now sits in the pool");

    let mut admin = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("{e}"));
    let () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg("2000")
        .arg("ALL")
        .query(&mut admin)
        .unwrap_or_else(|e| panic!("{e}"));

    let timed_out = |r: Result<(), Error>| match r {
        Err(Error::BackendUnavailable { reason, .. }) => reason.contains("no answer within 100ms"),
        _ => false,
    };
    let r = warm.try_acquire(1);
    assert!(timed_out(r.clone()), "pooled: {r:?}");
    let r = limiter("paused", FailMode::Closed, &fresh).try_acquire(1);
    assert!(timed_out(r.clone()), "fresh: {r:?}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let r = runtime.block_on(limiter("paused", FailMode::Closed, &async_backend).acquire_async(1));
    assert!(timed_out(r.clone()), "async: {r:?}");
}
