//! `Pipeline::call*` classify errors as `#[resilient]` does: with an error type that
//! implements `Classify` and `RetryAfter`, only transient errors are retried, a server
//! hint sets the wait, and the same error sequence takes the same number of attempts
//! through either front-end.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::classify::http_status;
use resilience::clock::ManualClock;
use resilience::retry::{DefaultHooks, RetryPolicy};
use resilience::{Classify, Error, ErrorClass, Pipeline, Preset, RetryAfter, registry, resilient};
use tokio::time::Instant;

/// An HTTP client's error: a status with its `Retry-After` hint, or a rejection.
#[derive(Debug, Clone, PartialEq)]
enum HttpError {
    Status(u16, Option<Duration>),
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
            HttpError::Status(code, _) => http_status(*code).unwrap_or(ErrorClass::Permanent),
            HttpError::Resilience(e) => e.class(),
        }
    }
}

impl RetryAfter for HttpError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpError::Status(_, hint) => *hint,
            HttpError::Resilience(e) => e.retry_after(),
        }
    }
}

fn status(code: u16) -> Result<u32, HttpError> {
    Err(HttpError::Status(code, None))
}

/// The replies of a fake server, one per attempt, then `Ok(0)`; counts the attempts.
#[derive(Clone, Default)]
struct Script {
    replies: Arc<Mutex<VecDeque<Result<u32, HttpError>>>>,
    attempts: Arc<AtomicU32>,
}

impl Script {
    fn new(replies: &[Result<u32, HttpError>]) -> Self {
        let script = Script::default();
        script.replies.lock().expect("not poisoned").extend(replies.iter().cloned());
        script
    }

    fn reply(&self) -> Result<u32, HttpError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.replies.lock().expect("not poisoned").pop_front().unwrap_or(Ok(0))
    }

    fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::SeqCst)
    }
}

/// An error sequence, what the call returns and after how many attempts, and the one
/// wait it takes when that wait is known (a server hint).
struct Scenario {
    what: &'static str,
    replies: Vec<Result<u32, HttpError>>,
    result: Result<u32, HttpError>,
    attempts: u32,
    hinted_wait: Option<Duration>,
}

fn scenarios() -> Vec<Scenario> {
    let hint = Duration::from_secs(3);
    vec![
        Scenario {
            what: "a 404 is permanent: tried once",
            replies: vec![status(404)],
            result: status(404),
            attempts: 1,
            hinted_wait: Some(Duration::ZERO),
        },
        Scenario {
            what: "503s are transient: retried until the success",
            replies: vec![status(503), status(503), Ok(7)],
            result: Ok(7),
            attempts: 3,
            hinted_wait: None,
        },
        Scenario {
            what: "a 429's Retry-After sets the wait",
            replies: vec![Err(HttpError::Status(429, Some(hint))), Ok(9)],
            result: Ok(9),
            attempts: 2,
            hinted_wait: Some(hint),
        },
        Scenario {
            what: "a 503 is retried, the 404 after it is not",
            replies: vec![status(503), status(404)],
            result: status(404),
            attempts: 2,
            hinted_wait: None,
        },
    ]
}

#[resilient(preset = "api")]
async fn fetch_async(script: &Script) -> Result<u32, HttpError> {
    script.reply()
}

#[resilient(preset = "api")]
fn fetch_blocking(script: Script) -> Result<u32, HttpError> {
    script.reply()
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_tried_once_through_the_api_preset_with_call_async() {
    let p = Pipeline::from_config("classify-permanent-async", &Preset::Api.config())
        .expect("valid preset");
    let script = Script::new(&[status(404), Ok(1)]);
    let r = p
        .call_async(|| {
            let script = script.clone();
            async move { script.reply() }
        })
        .await;
    assert_eq!(r, status(404));
    assert_eq!(script.attempts(), 1, "a 404 is not retried");
}

#[test]
fn a_permanent_error_is_tried_once_through_the_api_preset_with_call_blocking() {
    let p = Pipeline::from_config("classify-permanent-blocking", &Preset::Api.config())
        .expect("valid preset");
    let script = Script::new(&[status(404), Ok(1)]);
    let op = script.clone();
    let r = p.call_blocking(move || op.reply());
    assert_eq!(r, status(404));
    assert_eq!(script.attempts(), 1, "a 404 is not retried");
}

#[tokio::test(start_paused = true)]
async fn the_with_drivers_and_default_hooks_still_retry_every_error() {
    let p = Pipeline::from_config("classify-default-hooks", &Preset::Api.config())
        .expect("valid preset");
    let script = Script::new(&[status(404), status(404), Ok(5)]);
    let r = p
        .call_async_with(&DefaultHooks, || {
            let script = script.clone();
            async move { script.reply() }
        })
        .await;
    assert_eq!(r, Ok(5));
    assert_eq!(script.attempts(), 3, "DefaultHooks retry a 404 too");
}

#[tokio::test(start_paused = true)]
async fn call_async_classifies_errors_as_the_attribute_does() {
    let p = Pipeline::from_config("classify-parity-async", &Preset::Api.config())
        .expect("valid preset");
    for s in scenarios() {
        let by_hand = Script::new(&s.replies);
        let start = Instant::now();
        let r = p
            .call_async(|| {
                let script = by_hand.clone();
                async move { script.reply() }
            })
            .await;
        let waited = start.elapsed();
        assert_eq!(r, s.result, "{}: Pipeline::call_async", s.what);
        assert_eq!(by_hand.attempts(), s.attempts, "{}: Pipeline::call_async", s.what);
        if let Some(wait) = s.hinted_wait {
            assert_eq!(waited, wait, "{}: Pipeline::call_async", s.what);
        }

        let attribute = Script::new(&s.replies);
        let start = Instant::now();
        let r = fetch_async(&attribute).await;
        let waited = start.elapsed();
        assert_eq!(r, s.result, "{}: #[resilient]", s.what);
        assert_eq!(attribute.attempts(), s.attempts, "{}: #[resilient]", s.what);
        if let Some(wait) = s.hinted_wait {
            assert_eq!(waited, wait, "{}: #[resilient]", s.what);
        }
    }
    // The breaker layer counts the same attempts in both, by class: the 503s are
    // failures, the 404s and the values successes, the 429 neither.
    let by_hand = p.circuit_breaker().expect("the api preset has a breaker").stats();
    let attribute = registry()
        .circuit_breakers()
        .stats(concat!(module_path!(), "::fetch_async"))
        .expect("the attribute's breaker");
    assert_eq!(
        (by_hand.failures, by_hand.successes, by_hand.ignored),
        (3, 4, 1),
        "503s: 0 + 2 + 0 + 1; 404s and values: 1 + 1 + 1 + 1; the 429"
    );
    assert_eq!(
        (attribute.failures, attribute.successes, attribute.ignored),
        (by_hand.failures, by_hand.successes, by_hand.ignored)
    );
}

/// The `api` preset's retry policy, its blocking sleeps on `clock`.
fn api_retry_on(clock: &ManualClock) -> RetryPolicy {
    let api = Preset::Api.config().retry.expect("the api preset retries");
    api.to_builder().clock(clock.shared()).build().expect("valid policy")
}

#[test]
fn call_blocking_classifies_errors_as_the_attribute_does() {
    let by_hand_clock = ManualClock::new();
    let config = Preset::Api.config().with_retry(api_retry_on(&by_hand_clock));
    let p = Pipeline::from_config("classify-parity-blocking", &config).expect("valid preset");
    let attribute_clock = ManualClock::new();
    registry().configure_retry(
        concat!(module_path!(), "::fetch_blocking"),
        api_retry_on(&attribute_clock),
    );
    for s in scenarios() {
        by_hand_clock.clear_sleeps();
        attribute_clock.clear_sleeps();

        let by_hand = Script::new(&s.replies);
        let op = by_hand.clone();
        let r = p.call_blocking(move || op.reply());
        assert_eq!(r, s.result, "{}: Pipeline::call_blocking", s.what);
        assert_eq!(by_hand.attempts(), s.attempts, "{}: Pipeline::call_blocking", s.what);

        let attribute = Script::new(&s.replies);
        let r = fetch_blocking(attribute.clone());
        assert_eq!(r, s.result, "{}: #[resilient]", s.what);
        assert_eq!(attribute.attempts(), s.attempts, "{}: #[resilient]", s.what);

        let retries = s.attempts as usize - 1;
        assert_eq!(by_hand_clock.sleeps().len(), retries, "{}: Pipeline::call_blocking", s.what);
        assert_eq!(attribute_clock.sleeps().len(), retries, "{}: #[resilient]", s.what);
        if let Some(wait) = s.hinted_wait.filter(|w| !w.is_zero()) {
            assert_eq!(by_hand_clock.sleeps(), [wait], "{}: Pipeline::call_blocking", s.what);
            assert_eq!(attribute_clock.sleeps(), [wait], "{}: #[resilient]", s.what);
        }
    }
    let by_hand = p.circuit_breaker().expect("the api preset has a breaker").stats();
    let attribute = registry()
        .circuit_breakers()
        .stats(concat!(module_path!(), "::fetch_blocking"))
        .expect("the attribute's breaker");
    assert_eq!(
        (by_hand.failures, by_hand.successes, by_hand.ignored),
        (3, 4, 1),
        "503s: 0 + 2 + 0 + 1; 404s and values: 1 + 1 + 1 + 1; the 429"
    );
    assert_eq!(
        (attribute.failures, attribute.successes, attribute.ignored),
        (by_hand.failures, by_hand.successes, by_hand.ignored)
    );
}
