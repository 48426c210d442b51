//! What the compile-time diagnostics point users to works at run time: a timeout read
//! from a `const`, a generic error type bounded by `Classify`, a preset registered at run
//! time named `user:..`, an `io::Result` function, predicates given as paths.

use std::fmt::Debug;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::backoff::{Backoff, Jitter};
use resilience::classify::{Classify, ErrorClass, RetryAfter};
use resilience::presets::ResilienceConfig;
use resilience::retry::RetryPolicy;
use resilience::{Error, registry, resilient, retry, timeout};
use tokio::time::Instant;

/// An error that classifies itself and carries a server hint.
#[derive(Debug, PartialEq)]
enum HttpError {
    Status(u16),
    TooManyRequests(Duration),
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
            HttpError::Status(code) => {
                resilience::classify::http_status(*code).unwrap_or(ErrorClass::Permanent)
            }
            HttpError::TooManyRequests(_) => ErrorClass::Transient,
            HttpError::Resilience(e) => e.class(),
        }
    }
}

impl RetryAfter for HttpError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpError::TooManyRequests(d) => Some(*d),
            _ => None,
        }
    }
}

impl HttpError {
    fn is_server_error(&self) -> bool {
        matches!(self, HttpError::Status(500..=599))
    }
}

// ----- a timeout read from a `const` ---------------------------------------------------

const LIMIT: Duration = Duration::from_millis(1500);

mod limits {
    pub(crate) const SLOW: std::time::Duration = std::time::Duration::from_secs(3);
}

#[derive(Debug, PartialEq)]
enum AppError {
    Resilience(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Resilience(e)
    }
}

#[timeout(LIMIT)]
async fn bounded_by_a_const(work: Duration) -> Result<u8, AppError> {
    tokio::time::sleep(work).await;
    Ok(1)
}

#[resilient(timeout(duration = limits::SLOW))]
async fn bounded_by_a_const_path(work: Duration) -> Result<u8, AppError> {
    tokio::time::sleep(work).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_timeout_const_is_the_limit() {
    let start = Instant::now();
    assert_eq!(
        bounded_by_a_const(Duration::from_secs(10)).await,
        Err(Error::timeout(LIMIT).into())
    );
    assert_eq!(start.elapsed(), LIMIT);
    assert_eq!(bounded_by_a_const(Duration::from_secs(1)).await, Ok(1));

    let start = Instant::now();
    assert_eq!(
        bounded_by_a_const_path(Duration::from_secs(10)).await,
        Err(Error::timeout(limits::SLOW).into())
    );
    assert_eq!(start.elapsed(), limits::SLOW);
}

// ----- generic error types --------------------------------------------------------------

/// The caller's error type decides what is retried: the bound makes `Classify` and
/// `RetryAfter` visible where the function is compiled.
#[retry(max_attempts = 5, initial_delay = 1s, jitter = none)]
async fn generic<E>(calls: &AtomicU32, errors: &mut Vec<E>) -> Result<u32, E>
where
    E: Classify + RetryAfter + From<Error> + Debug,
{
    calls.fetch_add(1, Ordering::SeqCst);
    if errors.is_empty() { Ok(calls.load(Ordering::SeqCst)) } else { Err(errors.remove(0)) }
}

#[tokio::test(start_paused = true)]
async fn a_generic_error_bounded_by_classify_is_classified() {
    let calls = AtomicU32::new(0);
    let mut errors = vec![HttpError::Status(404), HttpError::Status(503)];
    assert_eq!(generic(&calls, &mut errors).await, Err(HttpError::Status(404)));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a permanent error is not retried");

    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let mut errors =
        vec![HttpError::Status(503), HttpError::TooManyRequests(Duration::from_millis(300))];
    assert_eq!(generic(&calls, &mut errors).await, Ok(3));
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(1_000 + 300),
        "the server's hint is honoured"
    );
}

/// Without the bound, `retry_if` says which errors to retry.
#[retry(max_attempts = 5, initial_delay = 1ms, retry_if = |_| true)]
async fn generic_retrying_everything<E: From<Error> + Debug>(
    calls: &AtomicU32,
    error: fn() -> E,
) -> Result<u32, E> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(error())
}

#[tokio::test(start_paused = true)]
async fn an_unbounded_generic_error_retries_what_retry_if_says() {
    let calls = AtomicU32::new(0);
    let r = generic_retrying_everything(&calls, || HttpError::Status(404)).await;
    assert_eq!(r, Err(HttpError::Status(404)));
    assert_eq!(calls.load(Ordering::SeqCst), 5, "retry_if = |_| true retries a permanent error");
}

// ----- predicates given as paths --------------------------------------------------------

fn is_transient<E: Classify>(e: &E) -> bool {
    e.is_transient()
}

#[retry(max_attempts = 4, initial_delay = 1ms, retry_if = HttpError::is_server_error)]
async fn by_method(calls: &AtomicU32) -> Result<u32, HttpError> {
    let n = calls.fetch_add(1, Ordering::SeqCst);
    Err(if n == 0 { HttpError::Status(500) } else { HttpError::Status(429) })
}

#[retry(max_attempts = 4, initial_delay = 1ms, retry_if = is_transient)]
async fn by_generic_fn(calls: &AtomicU32) -> Result<u32, HttpError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(HttpError::Status(503))
}

#[tokio::test(start_paused = true)]
async fn predicate_paths_to_methods_and_generic_fns_are_called() {
    let calls = AtomicU32::new(0);
    assert_eq!(by_method(&calls).await, Err(HttpError::Status(429)));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "a 500 is retried, a 429 is not by this predicate");

    let calls = AtomicU32::new(0);
    assert_eq!(by_generic_fn(&calls).await, Err(HttpError::Status(503)));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

// ----- presets registered at run time ---------------------------------------------------

#[retry(preset = "user:macro-diagnostics-two-attempts")]
fn with_a_user_preset(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Resilience(Error::timeout(Duration::from_secs(1))))
}

#[test]
fn a_user_preset_is_looked_up_by_the_name_after_its_prefix() {
    let policy = RetryPolicy::builder()
        .max_attempts(2)
        .backoff(Backoff::constant(Duration::ZERO).with_jitter(Jitter::None))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    registry().register_preset(
        "macro-diagnostics-two-attempts",
        ResilienceConfig::new().with_retry(policy),
    );
    let calls = AtomicU32::new(0);
    assert!(with_a_user_preset(&calls).is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the registered preset's two attempts");
}

#[retry(preset = "user:macro-diagnostics-never-registered")]
fn with_a_missing_user_preset(calls: &AtomicU32) -> Result<u32, AppError> {
    Ok(calls.fetch_add(1, Ordering::SeqCst))
}

#[test]
fn a_missing_user_preset_fails_each_call_saying_how_to_register_it() {
    let calls = AtomicU32::new(0);
    for _ in 0..2 {
        match with_a_missing_user_preset(&calls) {
            Err(AppError::Resilience(Error::Config(e))) => {
                assert_eq!(e.field(), "preset");
                assert!(
                    e.message().starts_with(
                        "no preset registered as `macro-diagnostics-never-registered`"
                    ),
                    "{e}"
                );
                assert!(
                    e.message().contains(
                        "registry().register_preset(\"macro-diagnostics-never-registered\", config)"
                    ),
                    "{e}"
                );
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the body never ran");
}

// ----- `std::io::Result` ----------------------------------------------------------------

#[timeout(1s)]
async fn read_slowly(work: Duration) -> io::Result<u8> {
    tokio::time::sleep(work).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn an_io_result_fn_carries_rejections_as_io_errors() {
    let e = read_slowly(Duration::from_secs(5)).await.err().unwrap_or_else(|| panic!("no timeout"));
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    let inner = e.get_ref().and_then(|e| e.downcast_ref::<Error>());
    assert_eq!(inner, Some(&Error::timeout(Duration::from_secs(1))));
    assert!(e.is_transient(), "classified as the timeout it carries");

    let limited = io::Error::from(Error::rate_limited("io", Duration::from_millis(200)));
    assert_eq!(limited.kind(), io::ErrorKind::Other);
    assert!(limited.is_transient(), "a rate limit is transient, though its kind is `Other`");
    assert_eq!(limited.retry_after(), Some(Duration::from_millis(200)));
    assert!(!io::Error::other("plain").is_transient());
}
