//! The breaker counts what the service did wrong: with an error type that implements
//! `Classify`, a transient error (503) is a failure, a permanent one (404, 402, 403: the
//! service answered) a success, a throttled one (429) neither, through the runtime API,
//! `#[circuit_breaker]`, `#[resilient(preset = "shopify")]` and `Pipeline`; explicit
//! `failure_if` / `ignore_if` still decide; `failure_if_ok` counts bad `Ok` values.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::circuit::{
    AllErrors, ByClass, CircuitBreaker, CircuitBreakerConfig, CircuitState, CircuitStats,
    FailureIfOk,
};
use resilience::classify::http_status;
use resilience::{
    Classify, Error, ErrorClass, Pipeline, RetryAfter, circuit_breaker, registry, resilient,
};

#[derive(Debug, Clone, PartialEq)]
enum HttpError {
    Status(u16),
    Resilience(Error),
}

impl From<Error> for HttpError {
    fn from(e: Error) -> Self {
        HttpError::Resilience(e)
    }
}

impl Classify for HttpError {
    fn class(&self) -> ErrorClass {
        match self {
            HttpError::Status(code) => http_status(*code).unwrap_or(ErrorClass::Permanent),
            HttpError::Resilience(e) => e.class(),
        }
    }
}

impl RetryAfter for HttpError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpError::Status(429) => Some(Duration::from_secs(1)),
            HttpError::Status(_) => None,
            HttpError::Resilience(e) => e.retry_after(),
        }
    }
}

/// An error type that says nothing about itself.
#[derive(Debug, PartialEq)]
enum OpaqueError {
    Status(u16),
    Resilience(Error),
}

impl From<Error> for OpaqueError {
    fn from(e: Error) -> Self {
        OpaqueError::Resilience(e)
    }
}

fn stats(name: &str) -> CircuitStats {
    registry().circuit_breakers().stats(name).expect("the call site registered its circuit")
}

fn threshold(n: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig::builder().failure_threshold(n).build().expect("valid")
}

fn is_open(r: &Result<u32, HttpError>) -> bool {
    matches!(r, Err(HttpError::Resilience(Error::CircuitOpen { .. })))
}

// ----- the runtime API -----------------------------------------------------------------

#[test]
fn call_classified_does_not_count_404_counts_503_and_ignores_429() {
    let breaker = CircuitBreaker::new("classify-runtime", threshold(2));
    for _ in 0..10 {
        let r: Result<u32, _> = breaker.call_classified(|| Err(HttpError::Status(404)));
        assert_eq!(r, Err(HttpError::Status(404)));
    }
    for _ in 0..10 {
        let _ = breaker.call_classified(|| Err::<u32, _>(HttpError::Status(429)));
    }
    let s = breaker.stats();
    assert_eq!((s.state, s.successes, s.failures, s.ignored), (CircuitState::Closed, 10, 0, 10));

    for _ in 0..2 {
        let _ = breaker.call_classified(|| Err::<u32, _>(HttpError::Status(503)));
    }
    assert_eq!(breaker.state(), CircuitState::Open, "two 503s open it");
}

#[test]
fn plain_call_still_counts_every_error() {
    let breaker = CircuitBreaker::new("classify-runtime-plain", threshold(2));
    for _ in 0..2 {
        let _ = breaker.call(|| Err::<u32, _>(HttpError::Status(404)));
    }
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[test]
fn failure_if_ok_through_call_with_opens_on_bad_values() {
    let breaker = CircuitBreaker::new("classify-runtime-ok", threshold(2));
    let classifier = FailureIfOk::new(ByClass, |v: &u32| *v == 0);
    let r: Result<u32, HttpError> = breaker.call_with(&classifier, || Ok(7));
    assert_eq!(r, Ok(7));
    for _ in 0..2 {
        let r: Result<u32, HttpError> = breaker.call_with(&classifier, || Ok(0));
        assert_eq!(r, Ok(0), "the value still reaches the caller");
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    let r: Result<u32, HttpError> = breaker.call_with(&classifier, || Ok(7));
    assert!(is_open(&r));
    // Errors still go to the inner classifier.
    let breaker = CircuitBreaker::new("classify-runtime-ok-errors", threshold(1));
    let _ = breaker.call_with(&FailureIfOk::new(AllErrors, |_: &u32| false), || {
        Err::<u32, _>(HttpError::Status(404))
    });
    assert_eq!(breaker.state(), CircuitState::Open, "AllErrors counts the 404");
}

// ----- #[circuit_breaker] --------------------------------------------------------------

#[circuit_breaker(name = "classify-macro", failure_threshold = 2)]
fn get(code: u16) -> Result<u32, HttpError> {
    Err(HttpError::Status(code))
}

#[test]
fn circuit_breaker_attribute_counts_by_class() {
    for _ in 0..10 {
        assert_eq!(get(404), Err(HttpError::Status(404)));
        assert_eq!(get(429), Err(HttpError::Status(429)));
    }
    let s = stats("classify-macro");
    assert_eq!((s.state, s.successes, s.failures, s.ignored), (CircuitState::Closed, 10, 0, 10));
    assert_eq!(get(503), Err(HttpError::Status(503)));
    assert_eq!(get(503), Err(HttpError::Status(503)));
    assert_eq!(stats("classify-macro").state, CircuitState::Open);
    assert!(is_open(&get(404)));
}

#[circuit_breaker(name = "classify-macro-async", failure_threshold = 2)]
async fn get_async(code: u16) -> Result<u32, HttpError> {
    Err(HttpError::Status(code))
}

#[tokio::test]
async fn async_circuit_breaker_attribute_counts_by_class() {
    for _ in 0..5 {
        let _ = get_async(404).await;
        let _ = get_async(429).await;
    }
    assert_eq!(stats("classify-macro-async").state, CircuitState::Closed);
    let _ = get_async(503).await;
    let _ = get_async(503).await;
    assert_eq!(stats("classify-macro-async").state, CircuitState::Open);
}

#[circuit_breaker(name = "classify-macro-opaque", failure_threshold = 2)]
fn get_opaque(code: u16) -> Result<u32, OpaqueError> {
    Err(OpaqueError::Status(code))
}

#[test]
fn an_error_type_without_classify_counts_every_error() {
    assert_eq!(get_opaque(404), Err(OpaqueError::Status(404)));
    assert_eq!(get_opaque(404), Err(OpaqueError::Status(404)));
    assert_eq!(stats("classify-macro-opaque").state, CircuitState::Open);
}

fn is_404(e: &HttpError) -> bool {
    *e == HttpError::Status(404)
}

#[circuit_breaker(name = "classify-macro-failure-if", failure_threshold = 2, failure_if = is_404)]
fn get_failure_if(code: u16) -> Result<u32, HttpError> {
    Err(HttpError::Status(code))
}

#[test]
fn explicit_failure_if_wins_over_the_class() {
    for _ in 0..5 {
        let _ = get_failure_if(503);
    }
    assert_eq!(stats("classify-macro-failure-if").state, CircuitState::Closed, "503 is not 404");
    let _ = get_failure_if(404);
    let _ = get_failure_if(404);
    assert_eq!(stats("classify-macro-failure-if").state, CircuitState::Open);
}

#[circuit_breaker(
    name = "classify-macro-ignore-if",
    failure_threshold = 2,
    ignore_if = |e: &HttpError| *e == HttpError::Status(503)
)]
fn get_ignore_if(code: u16) -> Result<u32, HttpError> {
    Err(HttpError::Status(code))
}

#[test]
fn explicit_ignore_if_wins_and_the_class_decides_the_rest() {
    for _ in 0..5 {
        let _ = get_ignore_if(503);
        let _ = get_ignore_if(404);
    }
    let s = stats("classify-macro-ignore-if");
    assert_eq!((s.state, s.ignored, s.successes), (CircuitState::Closed, 5, 5));
    let _ = get_ignore_if(500);
    let _ = get_ignore_if(502);
    assert_eq!(stats("classify-macro-ignore-if").state, CircuitState::Open);
}

#[derive(Debug, PartialEq)]
struct Reply {
    degraded: bool,
}

fn is_degraded(r: &Reply) -> bool {
    r.degraded
}

#[circuit_breaker(name = "classify-macro-ok", failure_threshold = 2, failure_if_ok = is_degraded)]
fn fetch(degraded: bool) -> Result<Reply, HttpError> {
    Ok(Reply { degraded })
}

#[test]
fn failure_if_ok_opens_the_breaker_on_bad_ok_values() {
    assert_eq!(fetch(false), Ok(Reply { degraded: false }));
    assert_eq!(fetch(true), Ok(Reply { degraded: true }), "the value is returned");
    assert_eq!(stats("classify-macro-ok").state, CircuitState::Closed);
    assert_eq!(fetch(true), Ok(Reply { degraded: true }));
    let s = stats("classify-macro-ok");
    assert_eq!((s.state, s.successes, s.failures), (CircuitState::Open, 1, 2));
    assert!(matches!(fetch(false), Err(HttpError::Resilience(Error::CircuitOpen { .. }))));
}

#[resilient(circuit_breaker(
    name = "classify-resilient-ok",
    failure_threshold = 2,
    failure_if_ok = |r: &Reply| r.degraded
))]
async fn fetch_resilient(degraded: bool) -> Result<Reply, HttpError> {
    Ok(Reply { degraded })
}

#[tokio::test]
async fn failure_if_ok_in_resilient_opens_the_breaker() {
    assert_eq!(fetch_resilient(true).await, Ok(Reply { degraded: true }));
    assert_eq!(fetch_resilient(true).await, Ok(Reply { degraded: true }));
    assert_eq!(stats("classify-resilient-ok").state, CircuitState::Open);
}

// ----- #[resilient(preset = "shopify")] ------------------------------------------------

#[resilient(
    preset = "shopify",
    key = none,
    circuit_breaker(name = "classify-shopify"),
    retry(initial_delay = 10ms, jitter = none)
)]
async fn shopify(code: u16, attempts: &AtomicU32) -> Result<u32, HttpError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Err(HttpError::Status(code))
}

#[tokio::test(start_paused = true)]
async fn shopify_breaker_ignores_throttling_and_payment_and_permission_errors() {
    let attempts = AtomicU32::new(0);
    for code in [402, 403, 402, 403] {
        assert_eq!(shopify(code, &attempts).await, Err(HttpError::Status(code)));
    }
    assert_eq!(attempts.swap(0, Ordering::SeqCst), 4, "permanent: not retried");
    for _ in 0..2 {
        assert_eq!(shopify(429, &attempts).await, Err(HttpError::Status(429)));
    }
    assert_eq!(attempts.swap(0, Ordering::SeqCst), 10, "throttled: retried, 5 attempts each");
    let s = stats("classify-shopify");
    assert_eq!((s.state, s.successes, s.failures, s.ignored), (CircuitState::Closed, 4, 0, 10));

    let r = shopify(503, &attempts).await;
    assert!(matches!(r, Err(HttpError::Resilience(Error::CircuitOpen { .. }))), "{r:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "the third 503 opens it (threshold 3)");
    assert_eq!(stats("classify-shopify").state, CircuitState::Open);
}

// ----- Pipeline ------------------------------------------------------------------------

fn pipeline(name: &str) -> (Pipeline, Arc<CircuitBreaker>) {
    let breaker = Arc::new(CircuitBreaker::new(name, threshold(2)));
    (Pipeline::new().with_circuit_breaker(breaker.clone()), breaker)
}

#[test]
fn pipeline_call_counts_by_class() {
    let (p, breaker) = pipeline("classify-pipeline");
    for _ in 0..5 {
        assert_eq!(p.call(|| Err::<u32, _>(HttpError::Status(404))), Err(HttpError::Status(404)));
        assert_eq!(p.call(|| Err::<u32, _>(HttpError::Status(429))), Err(HttpError::Status(429)));
    }
    let s = breaker.stats();
    assert_eq!((s.state, s.successes, s.failures, s.ignored), (CircuitState::Closed, 5, 0, 5));
    let _ = p.call(|| Err::<u32, _>(HttpError::Status(503)));
    let _ = p.call(|| Err::<u32, _>(HttpError::Status(503)));
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test]
async fn pipeline_call_async_counts_by_class() {
    let (p, breaker) = pipeline("classify-pipeline-async");
    for code in [404, 429, 404, 429] {
        let _ = p.call_async(|| async move { Err::<u32, _>(HttpError::Status(code)) }).await;
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    for _ in 0..2 {
        let _ = p.call_async(|| async { Err::<u32, _>(HttpError::Status(503)) }).await;
    }
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[test]
fn pipeline_call_blocking_counts_by_class() {
    let (p, breaker) = pipeline("classify-pipeline-blocking");
    let p = p.with_timeout(Duration::MAX);
    for code in [404, 429, 404, 429] {
        let _ = p.call_blocking(move || Err::<u32, _>(HttpError::Status(code)));
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    for _ in 0..2 {
        let _ = p.call_blocking(|| Err::<u32, _>(HttpError::Status(503)));
    }
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[test]
fn pipeline_failure_if_ok_opens_the_breaker_on_bad_ok_values() {
    let (p, breaker) = pipeline("classify-pipeline-ok");
    let degraded = p.failure_if_ok(|r: &Reply| r.degraded);
    assert_eq!(
        degraded.call(|| Ok::<_, HttpError>(Reply { degraded: false })),
        Ok(Reply { degraded: false })
    );
    for _ in 0..2 {
        let r = degraded.call(|| Ok::<_, HttpError>(Reply { degraded: true }));
        assert_eq!(r, Ok(Reply { degraded: true }), "the value is returned");
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    // Errors still count by class.
    let (p, breaker) = pipeline("classify-pipeline-ok-errors");
    let degraded = p.failure_if_ok(|r: &Reply| r.degraded);
    for _ in 0..3 {
        let _ = degraded.call(|| Err::<Reply, _>(HttpError::Status(404)));
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test]
async fn pipeline_failure_if_ok_async_and_blocking() {
    let (p, breaker) = pipeline("classify-pipeline-ok-async");
    let empty = p.failure_if_ok(|v: &Vec<u32>| v.is_empty());
    for _ in 0..2 {
        let r = empty.call_async(|| async { Ok::<_, HttpError>(Vec::new()) }).await;
        assert_eq!(r, Ok(vec![]));
    }
    assert_eq!(breaker.state(), CircuitState::Open);

    let (p, breaker) = pipeline("classify-pipeline-ok-blocking");
    let p = p.with_timeout(Duration::MAX);
    let empty = p.failure_if_ok(|v: &Vec<u32>| v.is_empty());
    for _ in 0..2 {
        assert_eq!(empty.call_blocking(|| Ok::<_, HttpError>(Vec::new())), Ok(vec![]));
    }
    assert_eq!(breaker.state(), CircuitState::Open);
}
