//! Stacked attributes compose in written order (top = outermost), `#[resilient]` uses
//! its fixed order, and the layers interplay as documented.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{Error, circuit_breaker, rate_limit, registry, resilient, retry, timeout};
use tokio::time::Instant;

#[derive(Debug, PartialEq)]
enum AppError {
    Down,
    Resilience(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Resilience(e)
    }
}

#[retry(max_attempts = 3, backoff = constant, initial_delay = 10ms, jitter = none)]
#[circuit_breaker(name = "macro-stack-retry-outside", failure_threshold = 100)]
async fn retry_around_breaker(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Down)
}

#[circuit_breaker(name = "macro-stack-breaker-outside", failure_threshold = 100)]
#[retry(max_attempts = 3, backoff = constant, initial_delay = 10ms, jitter = none)]
async fn breaker_around_retry(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Down)
}

#[tokio::test(start_paused = true)]
async fn the_top_attribute_is_the_outermost_layer() {
    let calls = AtomicU32::new(0);
    assert_eq!(retry_around_breaker(&calls).await, Err(AppError::Down));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let stats = registry().circuit_breakers().stats("macro-stack-retry-outside").unwrap();
    assert_eq!(stats.failures, 3, "retry outside: the breaker sees every attempt");

    let calls = AtomicU32::new(0);
    assert_eq!(breaker_around_retry(&calls).await, Err(AppError::Down));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let stats = registry().circuit_breakers().stats("macro-stack-breaker-outside").unwrap();
    assert_eq!(stats.failures, 1, "breaker outside: one call, whatever the retries inside");
}

#[retry(max_attempts = 5, backoff = constant, initial_delay = 1s, jitter = none)]
#[circuit_breaker(name = "macro-stack-open", failure_threshold = 2)]
async fn open_circuit_not_retried(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Down)
}

#[tokio::test(start_paused = true)]
async fn a_retry_does_not_retry_an_open_circuit() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let r = open_circuit_not_retried(&calls).await;
    assert!(matches!(r, Err(AppError::Resilience(Error::CircuitOpen { .. }))), "{r:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "two failures opened the circuit");
    assert_eq!(start.elapsed(), Duration::from_secs(2), "no sleep after the rejection");

    let start = Instant::now();
    let r = open_circuit_not_retried(&calls).await;
    assert!(matches!(r, Err(AppError::Resilience(Error::CircuitOpen { .. }))), "{r:?}");
    assert_eq!(start.elapsed(), Duration::ZERO, "an open circuit is returned at once");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[retry(max_attempts = 3, backoff = constant, initial_delay = 10ms, jitter = none)]
#[rate_limit(name = "macro-stack-limited", per_second = 1, burst = 1, on_limit = reject)]
async fn retried_after_rate_limit(calls: &AtomicU32) -> Result<u32, AppError> {
    Ok(calls.fetch_add(1, Ordering::SeqCst) + 1)
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_attempt_is_retried_after_its_suggested_wait() {
    let calls = AtomicU32::new(0);
    assert_eq!(retried_after_rate_limit(&calls).await, Ok(1));
    let start = Instant::now();
    assert_eq!(retried_after_rate_limit(&calls).await, Ok(2));
    assert_eq!(start.elapsed(), Duration::from_secs(1), "the limiter's 1 s, not the 10 ms backoff");
    let stats = registry().rate_limiters().stats("macro-stack-limited").unwrap();
    assert_eq!((stats.granted, stats.rejected), (2, 1));
}

#[retry(max_attempts = 2, backoff = constant, initial_delay = 100ms, jitter = none)]
#[timeout(1s)]
async fn timeout_per_attempt(calls: &AtomicU32) -> Result<u32, AppError> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    if n == 1 {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    Ok(n)
}

#[tokio::test(start_paused = true)]
async fn a_timeout_below_a_retry_applies_to_each_attempt() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(timeout_per_attempt(&calls).await, Ok(2));
    assert_eq!(start.elapsed(), Duration::from_millis(1_100));
}

#[timeout(1s)]
#[retry(max_attempts = 5, backoff = constant, initial_delay = 400ms, jitter = none)]
async fn timeout_around_retries(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Down)
}

#[tokio::test(start_paused = true)]
async fn a_timeout_above_a_retry_bounds_the_whole_call() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let r = timeout_around_retries(&calls).await;
    assert_eq!(r, Err(AppError::Resilience(Error::timeout(Duration::from_secs(1)))));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "attempts at 0, 400 and 800 ms");
}

#[resilient(
    timeout(1s),
    circuit_breaker(name = "macro-stack-resilient", failure_threshold = 100),
    retry(max_attempts = 3, backoff = constant, initial_delay = 10ms, jitter = none)
)]
async fn resilient_fixed_order(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Down)
}

#[tokio::test(start_paused = true)]
async fn resilient_orders_its_layers_whatever_the_written_order() {
    let calls = AtomicU32::new(0);
    assert_eq!(resilient_fixed_order(&calls).await, Err(AppError::Down));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let stats = registry().circuit_breakers().stats("macro-stack-resilient").unwrap();
    assert_eq!(stats.failures, 3, "retry is outermost: each attempt passes the breaker");
}

#[resilient(preset = "shopify", rate_limit(key = shop), retry(initial_delay = 10ms, jitter = none))]
async fn shopify(shop: &str, calls: &AtomicU32) -> Result<u32, AppError> {
    let _ = shop;
    Ok(calls.fetch_add(1, Ordering::SeqCst) + 1)
}

#[tokio::test(start_paused = true)]
async fn a_preset_brings_every_layer_it_defines() {
    let calls = AtomicU32::new(0);
    for _ in 0..40 {
        shopify("a.myshopify.com", &calls).await.unwrap();
    }
    let start = Instant::now();
    shopify("a.myshopify.com", &calls).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(500),
        "the 41st call waits for a refill at 2/s"
    );
    let start = Instant::now();
    shopify("b.myshopify.com", &calls).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "another shop has its own bucket");

    let name = concat!(module_path!(), "::shopify");
    // The preset's limits are per shop: its breaker is keyed like its limiter.
    let circuit = registry().keyed_circuit_breakers().stats(name).unwrap();
    assert_eq!(circuit.successes, 42);
    assert_eq!(circuit.keys, 2);
    let limiter = registry().keyed_rate_limiters().get(name).unwrap();
    assert_eq!(limiter.len(), 2);
    assert_eq!(limiter.config().burst(), 40);
}

#[resilience::retry(max_attempts = 2, initial_delay = 1ms)]
#[resilience::circuit_breaker(name = "macro-stack-paths", failure_threshold = 100)]
#[::resilience::timeout(1s)]
async fn full_paths(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Down)
}

#[tokio::test(start_paused = true)]
async fn attributes_written_with_full_paths_stack_too() {
    let calls = AtomicU32::new(0);
    let _ = full_paths(&calls).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(registry().circuit_breakers().stats("macro-stack-paths").unwrap().failures, 2);
}

#[resilient(preset = "user:no-such-preset")]
async fn unknown_preset(calls: &AtomicU32) -> Result<u32, AppError> {
    Ok(calls.fetch_add(1, Ordering::SeqCst))
}

#[retry(preset = "user:no-such-preset")]
fn unknown_retry_preset(calls: &AtomicU32) -> Result<u32, AppError> {
    Ok(calls.fetch_add(1, Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn an_instance_that_cannot_be_built_fails_each_call_with_a_config_error() {
    let calls = AtomicU32::new(0);
    for _ in 0..2 {
        match unknown_preset(&calls).await {
            Err(AppError::Resilience(Error::Config(e))) => assert_eq!(e.field(), "preset"),
            other => panic!("expected a config error, got {other:?}"),
        }
        assert!(matches!(
            unknown_retry_preset(&calls),
            Err(AppError::Resilience(Error::Config(_)))
        ));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the body never ran");
}
