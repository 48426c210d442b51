//! The fixed layer order of `Pipeline` and how the layers interplay.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::backoff::{Backoff, Jitter};
use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
use resilience::clock::ManualClock;
use resilience::rate_limit::{OnLimit, RateLimitConfig, RateLimiter};
use resilience::retry::RetryPolicy;
use resilience::{Classify, Error, ErrorClass, Pipeline, Preset, RetryAfter};

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

/// `Down` is transient, so `call*` retry it; a rejection keeps its own class and hint.
impl Classify for AppError {
    fn class(&self) -> ErrorClass {
        match self {
            AppError::Down => ErrorClass::Transient,
            AppError::Resilience(e) => e.class(),
        }
    }
}

impl RetryAfter for AppError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            AppError::Down => None,
            AppError::Resilience(e) => e.retry_after(),
        }
    }
}

fn retry(clock: &ManualClock, attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::constant(Duration::from_millis(100)).with_jitter(Jitter::None))
        .clock(clock.shared())
        .build()
        .expect("valid retry")
}

fn breaker(name: &str, clock: &ManualClock, failures: u32) -> Arc<CircuitBreaker> {
    let cfg =
        CircuitBreakerConfig::builder().failure_threshold(failures).build().expect("valid breaker");
    Arc::new(CircuitBreaker::with_clock(name, cfg, clock.shared()))
}

#[test]
fn an_open_circuit_is_not_retried() {
    let clock = ManualClock::new();
    let cb = breaker("pipeline-open", &clock, 5);
    cb.force_open();
    let p = Pipeline::new().with_retry(retry(&clock, 5)).with_circuit_breaker(cb);
    let calls = AtomicU32::new(0);
    let r: Result<(), AppError> = p.call(|| {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    assert!(matches!(r, Err(AppError::Resilience(Error::CircuitOpen { .. }))));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(clock.sleeps().is_empty(), "no backoff sleep for an open circuit");
}

#[test]
fn each_attempt_counts_in_the_breaker_and_the_retry_stops_when_it_opens() {
    let clock = ManualClock::new();
    let cb = breaker("pipeline-counts", &clock, 3);
    let p = Pipeline::new().with_retry(retry(&clock, 5)).with_circuit_breaker(cb.clone());
    let calls = AtomicU32::new(0);
    let r: Result<(), AppError> = p.call(|| {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(AppError::Down)
    });
    // Attempts 1-3 fail and trip the breaker; attempt 4 is rejected and not retried.
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(matches!(r, Err(AppError::Resilience(Error::CircuitOpen { .. }))), "{r:?}");
    assert_eq!(cb.state(), CircuitState::Open);
    assert_eq!(cb.stats().failures, 3);
    assert_eq!(clock.sleeps(), [Duration::from_millis(100); 3]);
}

#[test]
fn a_rate_limited_attempt_is_retried_after_its_suggested_wait() {
    let clock = ManualClock::new();
    let cfg = RateLimitConfig::builder()
        .per_second(1)
        .burst(1)
        .on_limit(OnLimit::Reject)
        .build()
        .expect("valid");
    let limiter = Arc::new(RateLimiter::with_clock("pipeline-limited", cfg, clock.shared()));
    let p = Pipeline::new().with_retry(retry(&clock, 3)).with_rate_limiter(limiter);
    let first: Result<u32, AppError> = p.call(|| Ok(1));
    assert_eq!(first, Ok(1));
    let second: Result<u32, AppError> = p.call(|| Ok(2));
    assert_eq!(second, Ok(2));
    // The backoff says 100 ms, the limiter says 1 s: the retry waits the limiter's time.
    assert_eq!(clock.sleeps(), [Duration::from_secs(1)]);
}

#[tokio::test(start_paused = true)]
async fn async_timeout_applies_per_attempt_inside_the_retry() {
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .backoff(Backoff::constant(Duration::from_millis(100)).with_jitter(Jitter::None))
        .build()
        .expect("valid");
    let p = Pipeline::new().with_retry(policy).with_timeout(Duration::from_secs(1));
    let calls = AtomicU32::new(0);
    let start = tokio::time::Instant::now();
    let r: Result<(), AppError> = p
        .call_async(|| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(())
            }
        })
        .await;
    assert!(
        matches!(r, Err(AppError::Resilience(Error::Timeout { limit, .. })) if limit == Duration::from_secs(1))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Three attempts of 1 s each and two 100 ms backoffs, on tokio's paused clock.
    assert_eq!(start.elapsed(), Duration::from_millis(3200));
}

#[tokio::test(start_paused = true)]
async fn pipeline_futures_are_send() {
    let p = Arc::new(
        Pipeline::new().with_retry(RetryPolicy::default()).with_timeout(Duration::from_secs(1)),
    );
    let handle = tokio::spawn(async move { p.call_async(|| async { Ok::<_, AppError>(5) }).await });
    assert_eq!(handle.await.expect("task ran"), Ok(5));
}

#[test]
fn call_blocking_applies_the_timeout_to_blocking_attempts() {
    let clock = ManualClock::new();
    let p = Pipeline::new().with_retry(retry(&clock, 2)).with_timeout(Duration::from_millis(1));
    // Each attempt blocks on its own channel, whose sender the test keeps: only the
    // deadline can end it. Dropping the senders at the end lets the workers finish.
    let senders = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = senders.clone();
    let r: Result<u32, AppError> = p.call_blocking(move || {
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        keep.lock().expect("not poisoned").push(tx);
        rx.recv().map_err(|_| AppError::Down)
    });
    assert!(matches!(r, Err(AppError::Resilience(Error::Timeout { .. }))), "{r:?}");
    senders.lock().expect("not poisoned").clear();
}

#[test]
fn a_timed_pipeline_runs_blocking_code_on_workers_and_in_place_without_its_timeout() {
    let p = resilience::Pipeline::from_config(
        "timed-preset",
        &resilience::Preset::Development.config(),
    )
    .expect("valid preset");
    assert_eq!(p.timeout(), Some(Duration::from_secs(10)));
    let r: Result<u32, AppError> = p.call_blocking(|| Ok(7));
    assert_eq!(r, Ok(7));
    // In place, `op` may borrow from the caller.
    let mut borrowed = 0;
    let untimed: Pipeline = p.clone().without_timeout();
    assert_eq!(untimed.timeout(), None);
    let r: Result<u32, AppError> = untimed.call(|| {
        borrowed += 1;
        Ok(8)
    });
    assert_eq!((r, borrowed), (Ok(8), 1));
}

#[test]
fn presets_work_with_both_drivers() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    for preset in Preset::ALL {
        let config = preset.config();
        assert!(config.timeout.is_some(), "{preset:?} sets a timeout");
        let p = Pipeline::from_config(&format!("both-drivers-{preset:?}"), &config)
            .expect("every preset is valid");
        let sync: Result<u32, AppError> = p.call_blocking(|| Ok(1));
        assert_eq!(sync, Ok(1), "{preset:?}: blocking driver");
        let calls = AtomicU32::new(0);
        let r: Result<u32, AppError> = runtime.block_on(p.call_async(|| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move { if n < 2 { Err(AppError::Down) } else { Ok(n) } }
        }));
        assert_eq!(r, Ok(2), "{preset:?}: async driver, retried once");
    }
}

#[test]
fn layers_nest_by_hand_and_absent_layers_pass_the_attempt_through() {
    use resilience::circuit::AllErrors;
    use resilience::pipeline::layer;
    use resilience::{Fault, KeyedRateLimiter};

    let clock = ManualClock::new();
    let cfg = RateLimitConfig::builder()
        .per_second(1)
        .burst(1)
        .on_limit(OnLimit::Reject)
        .build()
        .expect("valid");
    let per_shop: KeyedRateLimiter =
        KeyedRateLimiter::with_clock("pipeline-layers-keyed", cfg, clock.shared());
    let cb = breaker("pipeline-layers", &clock, 5);
    let calls = AtomicU32::new(0);
    let call = |shop: &str| -> Result<u32, Fault<AppError>> {
        layer::circuit(Some(&*cb), &AllErrors, || {
            layer::keyed_rate_limit(Some(&per_shop), shop, 1, || {
                layer::bulkhead(None, || Ok(calls.fetch_add(1, Ordering::SeqCst) + 1))
            })
        })
    };
    assert_eq!(call("a").map_err(Fault::into_error), Ok(1));
    assert!(
        matches!(call("a"), Err(Fault::Rejected(Error::RateLimited { .. }))),
        "shop a's bucket is empty"
    );
    assert_eq!(call("b").map_err(Fault::into_error), Ok(2), "shop b has its own");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cb.stats().failures, 0, "a rate-limit rejection is not the service failing");
    let untouched: Result<u32, Fault<AppError>> =
        layer::circuit(None, &AllErrors, || layer::rate_limit(None, 1, || Ok(9)));
    assert_eq!(untouched.map_err(Fault::into_error), Ok(9));
}
