//! `Registry::reset_all`: tests sharing the global registry, each on its own paused tokio
//! clock, start from instances as good as new, whatever the test before them did with
//! its clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use resilience::circuit::{CircuitBreakerConfig, CircuitState};
use resilience::registry::Registry;
use resilience::{Error, bulkhead, circuit_breaker, rate_limit, registry};

#[derive(Debug)]
enum ApiError {
    Down,
    Resilience(Error),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Resilience(e)
    }
}

#[circuit_breaker(name = "reset-forge", failure_threshold = 2, recovery_timeout = 30s)]
async fn forge(up: bool) -> Result<u32, ApiError> {
    if up { Ok(200) } else { Err(ApiError::Down) }
}

#[rate_limit(name = "reset-api", per_minute = 1, burst = 1, on_limit = reject)]
async fn api() -> Result<u32, ApiError> {
    Ok(1)
}

#[rate_limit(name = "reset-shops", per_minute = 1, burst = 1, key = shop, on_limit = reject)]
async fn per_shop(shop: &str) -> Result<u32, ApiError> {
    let _ = shop;
    Ok(2)
}

#[bulkhead(name = "reset-pool", max_concurrent = 1)]
async fn pooled() -> Result<u32, ApiError> {
    Ok(3)
}

/// What `#[tokio::test(start_paused = true)]` builds for each test: a runtime with its own
/// paused clock.
fn paused_runtime() -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time().start_paused(true).build().unwrap()
}

fn rate_limited<T>(r: &Result<T, ApiError>) -> bool {
    matches!(r, Err(ApiError::Resilience(Error::RateLimited { .. })))
}

/// The first test: an hour passes, then the forge goes down and every limit is spent.
async fn first_test_advances_an_hour_and_spends_everything() {
    tokio::time::advance(Duration::from_secs(3600)).await;
    for _ in 0..2 {
        assert!(matches!(forge(false).await, Err(ApiError::Down)));
    }
    assert_eq!(api().await.unwrap(), 1);
    assert_eq!(per_shop("a.example").await.unwrap(), 2);
    assert_eq!(pooled().await.unwrap(), 3);
    let budget = registry().retry_budget("reset-budget");
    budget.deposit();
    assert!(budget.try_withdraw());
}

/// The second test, on a fresh paused clock: first what it inherits, then the reset.
async fn second_test_starts_from_new_instances() {
    // Without a reset the previous test's hour is still ahead of this clock.
    match forge(true).await {
        Err(ApiError::Resilience(Error::CircuitOpen { retry_after, .. })) => {
            assert!(retry_after > Duration::from_secs(3600), "{retry_after:?}");
        }
        other => panic!("expected the inherited open circuit, got {other:?}"),
    }
    assert!(rate_limited(&api().await));
    assert!(rate_limited(&per_shop("a.example").await));

    registry().reset_all();

    let circuit = registry().circuit_breakers().stats("reset-forge").unwrap();
    assert_eq!(circuit.state, CircuitState::Closed);
    assert_eq!(
        (circuit.calls, circuit.failures, circuit.rejections, circuit.transitions),
        (0, 0, 0, 0)
    );
    assert_eq!(circuit.consecutive_failures, 0);
    assert_eq!(circuit.time_in_state, Duration::ZERO, "read again from this test's clock");
    assert_eq!(circuit.last_transition, None);

    let limiter = registry().rate_limiters().stats("reset-api").unwrap();
    assert_eq!((limiter.available, limiter.granted, limiter.rejected), (1, 0, 0));
    let keyed = registry().keyed_rate_limiters().stats("reset-shops").unwrap();
    assert_eq!((keyed.keys, keyed.granted, keyed.rejected), (Some(0), 0, 0));
    let pool = registry().bulkheads().stats("reset-pool").unwrap();
    assert_eq!((pool.in_flight, pool.completed, pool.rejected), (0, 0, 0));
    let budget = registry().retry_budgets().stats("reset-budget").unwrap();
    let fresh = registry().retry_budget("reset-fresh-budget").stats();
    assert_eq!((budget.calls, budget.retries, budget.exhausted), (0, 0, 0));
    assert_eq!(budget.available, fresh.available, "as empty as a new budget");

    assert_eq!(forge(true).await.unwrap(), 200);
    assert_eq!(api().await.unwrap(), 1);
    assert_eq!(per_shop("a.example").await.unwrap(), 2);
    assert_eq!(pooled().await.unwrap(), 3);
}

#[test]
fn reset_all_isolates_tests_that_run_on_different_paused_clocks() {
    paused_runtime().block_on(first_test_advances_an_hour_and_spends_everything());
    paused_runtime().block_on(second_test_starts_from_new_instances());
}

#[test]
fn reset_all_keeps_instances_and_configs() {
    let registry = Registry::new();
    let config = CircuitBreakerConfig::builder().failure_threshold(1).build().unwrap();
    let breaker = registry.circuit_breakers().get_or_create("kept", config.clone()).unwrap();
    let tighter = CircuitBreakerConfig::builder().failure_threshold(2).build().unwrap();
    registry.circuit_breakers().configure("kept", tighter.clone());
    registry.force_open("kept").unwrap();

    registry.reset_all();

    let same = registry.circuit_breakers().get("kept").unwrap();
    assert!(Arc::ptr_eq(&breaker, &same), "call sites keep their instance");
    assert_eq!(same.state(), CircuitState::Closed, "a forced-open circuit closes too");
    assert_eq!(same.config(), tighter, "the configured config stays");
    assert_eq!(registry.circuit_breakers().configured("kept"), Some(tighter));
}
