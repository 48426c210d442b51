//! Zero heap allocations per call on the hot paths: a call through a closed breaker
//! (direct, and keyed with an existing key), a rate limiter with permits available (direct,
//! and keyed with an existing key), a retry whose first attempt succeeds (sync, and async
//! after warm-up), a bulkhead's acquire and release with a slot free (fixed, and adaptive
//! with its window updates), a call through the tower layers (`ResilienceLayer` with a
//! breaker and a limiter, and each single layer) around a ready service that answers at
//! once, a hedged call whose first attempt answers before the delay, an adaptive throttle
//! in front of a healthy backend, and the fallback layer (passing a success through, or
//! answering an error).
//!
//! A counting global allocator counts allocations per thread, so tests running in
//! parallel do not see each other's. Each test warms the path up once (lazy statics, a
//! keyed limiter's first insert), then asserts that many more calls allocate nothing.

use std::hint::black_box;
use std::time::Duration;

use resilience::Error;
use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, KeyedCircuitBreaker};
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, RateLimitConfig, RateLimiter};
use resilience::retry::RetryPolicy;
use resilience::tower::{CircuitBreakerLayer, RateLimitLayer, ResilienceLayer};
use resilience::{CircuitBreakerConfig as BreakerConfig, ResilienceConfig};
use resilience_benches::alloc::{CountingAllocator, allocations_during};
use resilience_benches::poll_once;
use std::convert::Infallible;
use std::sync::Arc;
use tower::{Layer, Service, ServiceExt, service_fn};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

const CALLS: usize = 1_000;

fn plenty_of_permits() -> RateLimitConfig {
    RateLimitConfig::builder()
        .per_second(1_000)
        .burst(1_000_000)
        .on_limit(OnLimit::Reject)
        .build()
        .unwrap_or_else(|e| unreachable!("valid config: {e}"))
}

#[test]
fn bulkhead_acquire_and_release_allocate_nothing_fixed_or_adaptive() {
    use resilience::bulkhead::{Bulkhead, BulkheadConfig, LimitAlgorithm};
    let fixed = BulkheadConfig::builder().max_concurrent(64).build();
    let adaptive =
        BulkheadConfig::builder().adaptive(LimitAlgorithm::Gradient).initial_limit(64).build();
    for (name, config) in [("alloc-bulkhead-fixed", fixed), ("alloc-bulkhead-adaptive", adaptive)] {
        let bulkhead = Bulkhead::new(name, config.unwrap_or_else(|e| unreachable!("{e}")));
        drop(bulkhead.try_acquire());
        // Enough calls to close many windows: the adaptive limit's update allocates nothing
        // either.
        let (n, ok) = allocations_during(|| {
            (0..CALLS * 10).filter(|_| black_box(bulkhead.try_acquire()).is_ok()).count()
        });
        assert_eq!(ok, CALLS * 10);
        assert_eq!(n, 0, "{n} allocations in {} acquisitions of {name}", CALLS * 10);
    }
}

#[test]
fn the_counter_sees_a_heap_allocation() {
    let (n, boxed) = allocations_during(|| Box::new(black_box(7u64)));
    assert_eq!((n, *boxed), (1, 7));
    let (n, v) = allocations_during(|| black_box(vec![1u8; 64]));
    assert_eq!((n, v.len()), (1, 64));
}

#[test]
fn closed_breaker_call_allocates_nothing() {
    let breaker = CircuitBreaker::new("alloc-closed", CircuitBreakerConfig::default());
    let _ = breaker.call(|| Ok::<u64, Error>(1));
    let (n, ok) = allocations_during(|| {
        (0..CALLS).filter(|_| breaker.call(|| Ok::<u64, Error>(black_box(1))).is_ok()).count()
    });
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} calls through a closed breaker");
}

#[test]
fn keyed_closed_breaker_call_for_an_existing_key_allocates_nothing() {
    let breaker: KeyedCircuitBreaker =
        KeyedCircuitBreaker::new("alloc-keyed-closed", CircuitBreakerConfig::default());
    let _ = breaker.call("a.myshopify.com", || Ok::<u64, Error>(1));
    let (n, ok) = allocations_during(|| {
        (0..CALLS)
            .filter(|_| breaker.call("a.myshopify.com", || Ok::<u64, Error>(black_box(1))).is_ok())
            .count()
    });
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} calls through an existing key's closed circuit");
}

#[test]
fn closed_breaker_permit_allocates_nothing() {
    let breaker = CircuitBreaker::new("alloc-permit", CircuitBreakerConfig::default());
    if let Ok(permit) = breaker.try_acquire() {
        permit.success();
    }
    let (n, ok) = allocations_during(|| {
        (0..CALLS)
            .filter(|_| match breaker.try_acquire() {
                Ok(permit) => {
                    permit.success();
                    true
                }
                Err(_) => false,
            })
            .count()
    });
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} try_acquire/success on a closed breaker");
}

#[test]
fn direct_limiter_with_permits_allocates_nothing() {
    let limiter = RateLimiter::new("alloc-direct", plenty_of_permits());
    let _ = limiter.try_acquire(1);
    let (n, ok) =
        allocations_during(|| (0..CALLS).filter(|_| limiter.try_acquire(1).is_ok()).count());
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} granted try_acquire calls");
}

#[test]
fn keyed_limiter_with_an_existing_key_allocates_nothing() {
    let limiter: KeyedRateLimiter<String> =
        KeyedRateLimiter::new("alloc-keyed", plenty_of_permits());
    let keys: Vec<String> = (0..16).map(|i| format!("shop-{i}")).collect();
    for k in &keys {
        let _ = limiter.try_acquire(k.as_str(), 1);
    }
    let (n, ok) = allocations_during(|| {
        (0..CALLS).filter(|i| limiter.try_acquire(keys[i % keys.len()].as_str(), 1).is_ok()).count()
    });
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} granted keyed calls on existing keys");
}

#[test]
fn keyed_limiter_counter_sees_a_new_key_insert() {
    // The other side of the claim above: a new key is stored (at least its owned String).
    let limiter: KeyedRateLimiter<String> =
        KeyedRateLimiter::new("alloc-keyed-new", plenty_of_permits());
    let _ = limiter.try_acquire("warm-up", 1);
    let (n, granted) = allocations_during(|| limiter.try_acquire("a-new-key", 1).is_ok());
    assert!(granted);
    assert!(n >= 1, "inserting a key must allocate its owned copy, counted {n}");
}

#[test]
fn retry_first_success_allocates_nothing() {
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .build()
        .unwrap_or_else(|e| unreachable!("valid config: {e}"));
    let _ = policy.call(|| Ok::<u64, String>(1));
    let (n, ok) = allocations_during(|| {
        (0..CALLS).filter(|_| policy.call(|| Ok::<u64, String>(black_box(1))).is_ok()).count()
    });
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} retried calls whose first attempt succeeded");
}

#[test]
fn async_retry_first_success_allocates_nothing_after_warm_up() {
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .max_elapsed(Duration::from_secs(60))
        .build()
        .unwrap_or_else(|e| unreachable!("valid config: {e}"));
    let call = || policy.call_async(|| async { Ok::<u64, String>(black_box(1)) });
    assert_eq!(poll_once(call()), Some(Ok(1)), "warm-up call completes on its first poll");
    let (n, ok) = allocations_during(|| {
        (0..CALLS).filter(|_| matches!(poll_once(call()), Some(Ok(1)))).count()
    });
    assert_eq!(ok, CALLS);
    assert_eq!(
        n, 0,
        "{n} allocations in {CALLS} async retried calls whose first attempt succeeded"
    );
}

/// A ready service that answers at once.
fn upstream()
-> impl Service<(), Response = http::Response<()>, Error = Infallible, Future: Send> + Clone + Send
{
    service_fn(|()| std::future::ready(Ok::<_, Infallible>(http::Response::new(()))))
}

/// `CALLS` calls of `svc` (`ready`, then `call`), each completing on its first poll:
/// the allocations counted, and the calls that answered.
fn tower_calls<S>(svc: &mut S) -> (u64, usize)
where
    S: Service<(), Response = http::Response<()>>,
{
    let mut call = || poll_once(async { svc.ready().await.ok()?.call(()).await.ok() });
    assert!(matches!(call(), Some(Some(_))), "the warm-up call completes on its first poll");
    allocations_during(|| (0..CALLS).filter(|_| matches!(call(), Some(Some(_)))).count())
}

#[test]
fn tower_calls_through_a_breaker_and_a_limiter_allocate_nothing() {
    let config = ResilienceConfig::default()
        .with_circuit_breaker(BreakerConfig::default())
        .with_rate_limit(plenty_of_permits());
    let layer = ResilienceLayer::from_config("alloc-tower-stack", &config)
        .unwrap_or_else(|e| unreachable!("valid config: {e}"));
    let (n, ok) = tower_calls(&mut layer.layer(upstream()));
    assert_eq!(ok, CALLS);
    assert_eq!(
        n, 0,
        "{n} allocations in {CALLS} calls through ResilienceLayer (breaker + limiter)"
    );

    let breaker = Arc::new(CircuitBreaker::new("alloc-tower-breaker", BreakerConfig::default()));
    let (n, ok) = tower_calls(&mut CircuitBreakerLayer::new(breaker).layer(upstream()));
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} calls through CircuitBreakerLayer");

    let limiter = Arc::new(RateLimiter::new("alloc-tower-limiter", plenty_of_permits()));
    let (n, ok) = tower_calls(&mut RateLimitLayer::new(limiter).layer(upstream()));
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} calls through RateLimitLayer");
}

#[test]
fn hedged_call_whose_first_attempt_answers_allocates_nothing() {
    use resilience::hedge::{Hedge, HedgeConfig, HedgeDelay};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|e| unreachable!("a runtime: {e}"));
    let _entered = runtime.enter();
    let config = HedgeConfig::builder()
        .delay(HedgeDelay::Fixed(Duration::from_millis(50)))
        .build()
        .unwrap_or_else(|e| unreachable!("valid config: {e}"));
    let hedge = Hedge::new("alloc-hedge", config);
    let call = || hedge.call_async(|| async { Ok::<u64, String>(black_box(1)) });
    assert_eq!(poll_once(call()), Some(Ok(1)), "warm-up call completes on its first poll");
    let (n, ok) = allocations_during(|| {
        (0..CALLS).filter(|_| matches!(poll_once(call()), Some(Ok(1)))).count()
    });
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} hedged calls answered before the delay");
    assert_eq!(hedge.stats().hedges, 0);
}

#[test]
fn adaptive_throttle_call_to_a_healthy_backend_allocates_nothing() {
    use resilience::circuit::{AdaptiveThrottle, ThrottleConfig};
    let throttle = AdaptiveThrottle::new("alloc-throttle", ThrottleConfig::default());
    let _ = throttle.call(|| Ok::<u64, Error>(1));
    let (n, ok) = allocations_during(|| {
        (0..CALLS).filter(|_| throttle.call(|| Ok::<u64, Error>(black_box(1))).is_ok()).count()
    });
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} calls through an adaptive throttle");
}

#[test]
fn fallback_layer_allocates_nothing_on_success_or_when_it_answers() {
    use resilience::Fault;
    use resilience::fallback::{AnyError, Rejections};
    use resilience::pipeline::layer;
    let breaker = CircuitBreaker::new("alloc-fallback", CircuitBreakerConfig::default());
    let classifier = resilience::circuit::AllErrors;
    let (n, ok) = allocations_during(|| {
        (0..CALLS)
            .filter(|_| {
                let r: Result<u64, Error> = layer::fallback(
                    &Rejections,
                    |_| Ok(0),
                    || layer::circuit(Some(&breaker), &classifier, || Ok(black_box(1))),
                );
                r == Ok(1)
            })
            .count()
    });
    assert_eq!(ok, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} successful calls under a fallback");
    let (n, answered) = allocations_during(|| {
        (0..CALLS)
            .filter(|_| {
                let failed =
                    || Err::<u64, Fault<Error>>(Fault::Inner(Error::timeout(Duration::ZERO)));
                layer::fallback(&AnyError, |_: Error| Ok(black_box(2)), failed) == Ok(2)
            })
            .count()
    });
    assert_eq!(answered, CALLS);
    assert_eq!(n, 0, "{n} allocations in {CALLS} calls the fallback answered");
}
