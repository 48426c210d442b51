//! Async calls through a circuit breaker on tokio's paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use resilience::circuit::{AllErrors, CircuitBreaker, CircuitBreakerConfig, CircuitState};
use resilience::{Error, Fault};

fn config() -> CircuitBreakerConfig {
    CircuitBreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(10))
        .half_open_max_calls(1)
        .success_threshold(1)
        .build()
        .unwrap()
}

async fn trip_and_wait(b: &CircuitBreaker) {
    let r: Result<(), Error> =
        b.call_async(|| async { Err(Error::timeout(Duration::from_secs(1))) }).await;
    assert!(r.is_err());
    assert_eq!(b.state(), CircuitState::Open);
    tokio::time::advance(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_probe_cancelled_by_timeout_releases_its_slot() {
    let b = CircuitBreaker::new("as-timeout", config());
    trip_and_wait(&b).await;
    let probe = b.call_async(|| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, Error>(())
    });
    assert!(tokio::time::timeout(Duration::from_secs(1), probe).await.is_err());
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert_eq!(b.stats().ignored, 1);
    // The slot is free again: the next call is a probe and closes the circuit.
    assert_eq!(b.call_async(|| async { Ok::<_, Error>(7) }).await, Ok(7));
    assert_eq!(b.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_probe_dropped_by_select_releases_its_slot() {
    let b = CircuitBreaker::new("as-select", config());
    trip_and_wait(&b).await;
    tokio::select! {
        _ = b.call_async(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, Error>(())
        }) => panic!("the probe should not finish first"),
        _ = async {
            // While the probe runs, its slot is taken.
            tokio::task::yield_now().await;
            let r: Result<(), Error> = b.call_async(|| async { Ok(()) }).await;
            assert!(matches!(r, Err(Error::CircuitOpen { .. })));
            tokio::time::sleep(Duration::from_secs(1)).await;
        } => {}
    }
    assert_eq!(b.call_async(|| async { Ok::<_, Error>(()) }).await, Ok(()));
    assert_eq!(b.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn slow_async_calls_count_as_failures() {
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(1)
        .slow_call(Duration::from_millis(200))
        .build()
        .unwrap();
    let b = CircuitBreaker::new("as-slow", config);
    let r = b
        .call_async(|| async {
            tokio::time::sleep(Duration::from_millis(201)).await;
            Ok::<_, Error>(())
        })
        .await;
    assert!(r.is_ok());
    assert_eq!(b.stats().slow_calls, 1);
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn run_async_maps_rejections_to_faults() {
    let b = CircuitBreaker::new("as-run", config());
    let r: Result<(), Fault<std::io::Error>> = b
        .run_async(&AllErrors, || async {
            Err(Fault::Rejected(Error::timeout(Duration::from_secs(1))))
        })
        .await;
    assert!(r.is_err());
    let r: Result<(), Fault<std::io::Error>> = b.run_async(&AllErrors, || async { Ok(()) }).await;
    assert!(matches!(r, Err(Fault::Rejected(Error::CircuitOpen { .. }))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_async_futures_are_send_and_spawnable() {
    let b = Arc::new(CircuitBreaker::new("as-spawn", CircuitBreakerConfig::default()));
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move {
                b.call_async_with(&AllErrors, || async move {
                    tokio::task::yield_now().await;
                    Ok::<_, Error>(i)
                })
                .await
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), Ok(i));
    }
    assert_eq!(b.stats().successes, 32);
}
