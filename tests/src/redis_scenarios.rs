//! The Redis backend's scenarios as functions of a backend factory, so one set of
//! assertions runs against one server, a Redis Cluster and a TLS server alike (each
//! `tests/redis_*.rs` binary hands in its own factory). Each scenario builds instances on
//! backends of their own, as separate processes would have, and asserts what Redis
//! decided, never how long anything took.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, Window};
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, RateLimitConfig, RateLimiter};
use resilience::redis::{RedisBackend, RedisConfig, SharedState};
use resilience::{Backend, Error, FailMode};

/// Makes a backend of its own on the Redis under test (with the test's key prefix).
pub type Factory<'a> = &'a dyn Fn() -> Arc<RedisBackend>;

/// Runs every scenario on backends from `backend`.
pub fn run_all(backend: Factory<'_>) {
    two_instances_share_one_bucket(backend);
    keyed_buckets_are_shared_per_key(backend);
    async_acquire_shares_the_bucket(backend);
    a_pause_on_one_limiter_holds_back_the_others(backend);
    failures_in_two_instances_add_up_and_open_the_circuit(backend);
    a_failure_rate_over_a_count_window_opens_the_circuit(backend);
    a_failure_rate_over_a_time_window_opens_the_circuit(backend);
    half_open_probes_close_or_reopen_the_circuit(backend);
    reset_shared_closes_the_circuit_for_every_instance(backend);
}

/// Runs every scenario on backends made alternately from `config` and by `own` (a
/// backend on the caller's own client, connection manager or cluster client), so the
/// two constructors share state with each other.
pub fn run_all_alternating(config: &RedisConfig, own: &dyn Fn(RedisConfig) -> RedisBackend) {
    let turn = AtomicBool::new(false);
    run_all(&|| {
        Arc::new(if turn.fetch_xor(true, Ordering::Relaxed) {
            own(config.clone())
        } else {
            RedisBackend::new(config.clone()).unwrap()
        })
    });
}

fn limit(per_minute: u32, burst: u32) -> RateLimitConfig {
    RateLimitConfig::builder()
        .per_minute(per_minute)
        .burst(burst)
        .on_limit(OnLimit::Reject)
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap()
}

fn retry_after(r: &Result<(), Error>) -> Option<Duration> {
    match r {
        Err(Error::RateLimited { retry_after, .. }) => Some(*retry_after),
        _ => None,
    }
}

fn limiter(name: &str, config: RateLimitConfig, backend: Factory<'_>) -> RateLimiter {
    RateLimiter::with_redis(name, config, backend()).unwrap()
}

fn breaker(name: &str, config: CircuitBreakerConfig, backend: Factory<'_>) -> CircuitBreaker {
    CircuitBreaker::with_redis(name, config, backend()).unwrap()
}

fn circuit(threshold: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig::builder()
        .failure_threshold(threshold)
        .recovery_timeout(Duration::from_secs(600))
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap()
}

fn fail(b: &CircuitBreaker) -> Result<(), Error> {
    b.call(|| Err(Error::timeout(Duration::from_secs(1))))
}

/// Five permits in all between two instances, whoever took them.
pub fn two_instances_share_one_bucket(backend: Factory<'_>) {
    let la = limiter("share-bucket", limit(1, 5), backend);
    let lb = limiter("share-bucket", limit(1, 5), backend);
    for _ in 0..3 {
        assert_eq!(la.try_acquire(1), Ok(()));
    }
    assert_eq!(lb.try_acquire(1), Ok(()));
    assert_eq!(lb.try_acquire(1), Ok(()));
    let (ra, rb) = (la.try_acquire(1), lb.acquire(1));
    for r in [&ra, &rb] {
        let w = retry_after(r);
        assert!(w.is_some_and(|w| w > Duration::ZERO && w <= Duration::from_secs(60)), "{r:?}");
    }
    assert_eq!((la.stats().granted, lb.stats().granted), (3, 2));
    assert_eq!((la.stats().rejected, lb.stats().rejected), (1, 1));
}

/// Each key of a keyed limiter has one shared bucket.
pub fn keyed_buckets_are_shared_per_key(backend: Factory<'_>) {
    let ka: KeyedRateLimiter<String> =
        KeyedRateLimiter::with_redis("per-shop", limit(1, 2), backend()).unwrap();
    let kb: KeyedRateLimiter<String> =
        KeyedRateLimiter::with_redis("per-shop", limit(1, 2), backend()).unwrap();
    assert_eq!(ka.try_acquire("acme", 2), Ok(()));
    assert!(retry_after(&kb.try_acquire("acme", 1)).is_some(), "acme's bucket is shared");
    assert_eq!(kb.try_acquire("globex", 2), Ok(()), "globex has a bucket of its own");
    assert!(retry_after(&ka.try_acquire("globex", 1)).is_some());
}

/// Async acquires (on the async connection, from a spawned task: the future is `Send`)
/// share the bucket with blocking ones.
pub fn async_acquire_shares_the_bucket(backend: Factory<'_>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let la = Arc::new(limiter("async-share", limit(1, 3), backend));
    let lb = limiter("async-share", limit(1, 3), backend);
    runtime.block_on(async {
        let spawned = tokio::spawn({
            let la = Arc::clone(&la);
            async move { (la.acquire_async(1).await, la.acquire_async(1).await) }
        });
        assert_eq!(spawned.await.ok(), Some((Ok(()), Ok(()))));
        assert_eq!(lb.acquire_async(1).await, Ok(()));
        assert!(retry_after(&lb.acquire_async(1).await).is_some());
        assert!(retry_after(&la.acquire_async(1).await).is_some());
    });
    assert!(retry_after(&la.try_acquire(1)).is_some(), "the blocking path sees the same bucket");
}

/// A pause on one limiter holds the shared bucket back for the other.
pub fn a_pause_on_one_limiter_holds_back_the_others(backend: Factory<'_>) {
    let la = limiter("shared-pause", limit(1, 5), backend);
    let lb = limiter("shared-pause", limit(1, 5), backend);
    la.pause_for(Duration::from_secs(30));
    let r = lb.try_acquire(1);
    let w = retry_after(&r);
    assert!(
        w.is_some_and(|w| w > Duration::from_secs(20) && w <= Duration::from_secs(30)),
        "{r:?}"
    );
}

/// Failures in two instances add up and open the circuit for both.
pub fn failures_in_two_instances_add_up_and_open_the_circuit(backend: Factory<'_>) {
    let ba = breaker("add-up", circuit(4), backend);
    let bb = breaker("add-up", circuit(4), backend);
    for _ in 0..2 {
        assert!(matches!(fail(&ba), Err(Error::Timeout { .. })));
        assert!(matches!(fail(&bb), Err(Error::Timeout { .. })));
    }
    assert_eq!(ba.state(), resilience::CircuitState::Closed, "no local breaker saw four");
    let ran = AtomicU32::new(0);
    for b in [&ba, &bb] {
        let r = b.call(|| {
            ran.fetch_add(1, Ordering::Relaxed);
            Ok::<_, Error>(())
        });
        assert!(
            matches!(r, Err(Error::CircuitOpen { retry_after, .. })
                if retry_after > Duration::from_secs(590) && retry_after <= Duration::from_secs(600)),
            "expected a shared rejection, got {r:?}"
        );
    }
    assert_eq!(ran.load(Ordering::Relaxed), 0, "rejected calls never ran");
    assert!(matches!(ba.shared_state(), Ok(Some(SharedState::Open { .. }))));
    assert_eq!(ba.stats().rejections, 1);
    assert_eq!(ba.stats().ignored, 0, "a shared rejection is a rejection, not an ignored call");
}

/// The count window (a list beside the circuit's hash: a second key of the script).
pub fn a_failure_rate_over_a_count_window_opens_the_circuit(backend: Factory<'_>) {
    let config = CircuitBreakerConfig::builder()
        .failure_rate(0.5)
        .window(Window::calls(4))
        .min_calls(4)
        .recovery_timeout(Duration::from_secs(600))
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap();
    let ba = breaker("rate-count", config.clone(), backend);
    let bb = breaker("rate-count", config, backend);
    assert_eq!(ba.call(|| Ok::<_, Error>(())), Ok(()));
    assert!(fail(&bb).is_err());
    assert_eq!(ba.call(|| Ok::<_, Error>(())), Ok(()));
    assert_eq!(bb.shared_state(), Ok(Some(SharedState::Closed)), "3 calls < min_calls");
    assert!(fail(&bb).is_err());
    assert!(matches!(ba.shared_state(), Ok(Some(SharedState::Open { .. }))), "2 of 4 failed");
}

/// The time window (buckets in the circuit's hash).
pub fn a_failure_rate_over_a_time_window_opens_the_circuit(backend: Factory<'_>) {
    let config = CircuitBreakerConfig::builder()
        .failure_rate(0.7)
        .window(Window::duration(Duration::from_secs(60)))
        .min_calls(3)
        .recovery_timeout(Duration::from_secs(600))
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap();
    let ba = breaker("rate-time", config.clone(), backend);
    let bb = breaker("rate-time", config, backend);
    assert!(fail(&ba).is_err());
    assert_eq!(bb.call(|| Ok::<_, Error>(())), Ok(()));
    assert!(fail(&bb).is_err());
    assert_eq!(ba.shared_state(), Ok(Some(SharedState::Closed)), "2 of 3 < 70 %");
    assert!(fail(&ba).is_err());
    assert!(matches!(bb.shared_state(), Ok(Some(SharedState::Open { .. }))), "3 of 4 ≥ 70 %");
}

/// Calls `b` with `op` until the shared circuit admits a call (it turns half-open once
/// Redis's clock passes the 1 ms open period).
fn until_admitted(b: &CircuitBreaker, op: fn() -> Result<(), Error>) -> Result<(), Error> {
    for _ in 0..100_000 {
        match b.call(op) {
            Err(Error::CircuitOpen { .. }) => continue,
            other => return other,
        }
    }
    panic!("the circuit never let a probe through");
}

/// Half-open probes (a sorted set: the script's third key) close or reopen the circuit.
pub fn half_open_probes_close_or_reopen_the_circuit(backend: Factory<'_>) {
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_millis(1))
        .success_threshold(1)
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap();
    let ba = breaker("probes", config.clone(), backend);
    let bb = breaker("probes", config, backend);
    assert!(fail(&ba).is_err());
    assert!(matches!(
        until_admitted(&bb, || Err(Error::timeout(Duration::from_secs(1)))),
        Err(Error::Timeout { .. })
    ));
    assert!(matches!(bb.shared_state(), Ok(Some(SharedState::Open { .. }))));
    assert_eq!(until_admitted(&ba, || Ok(())), Ok(()));
    assert_eq!(bb.shared_state(), Ok(Some(SharedState::Closed)));
    assert_eq!(bb.call(|| Ok::<_, Error>(())), Ok(()));
}

/// `reset_shared` deletes the circuit's keys (one `DEL` of three keys in one slot).
pub fn reset_shared_closes_the_circuit_for_every_instance(backend: Factory<'_>) {
    let ba = breaker("reset-shared", circuit(2), backend);
    let bb = breaker("reset-shared", circuit(2), backend);
    assert!(fail(&ba).is_err());
    assert!(fail(&bb).is_err());
    assert!(matches!(bb.call(|| Ok::<_, Error>(())), Err(Error::CircuitOpen { .. })));
    // A local reset leaves the shared circuit open.
    bb.reset();
    assert!(matches!(bb.call(|| Ok::<_, Error>(())), Err(Error::CircuitOpen { .. })));
    assert_eq!(bb.reset_shared(), Ok(()));
    assert_eq!(bb.call(|| Ok::<_, Error>(1)), Ok(1));
    assert_eq!(ba.shared_state(), Ok(Some(SharedState::Closed)));
    assert_eq!(ba.call(|| Ok::<_, Error>(2)), Ok(2));
}
