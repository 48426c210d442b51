//! The retry API as a user sees it: an own error type, classification, a layered call.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use resilience::backoff::Jitter;
use resilience::clock::ManualClock;
use resilience::retry::{Classified, Hooks, RetryEvent};
use resilience::{Backoff, Classify, Error, ErrorClass, Fault, RetryAfter, RetryPolicy};

#[derive(Debug, PartialEq)]
enum ApiError {
    Status(u16, Option<Duration>),
    Resilience(Error),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Resilience(e)
    }
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        match self {
            ApiError::Status(code, _) => {
                resilience::classify::http_status(*code).unwrap_or(ErrorClass::Permanent)
            }
            ApiError::Resilience(e) => e.class(),
        }
    }
}

impl RetryAfter for ApiError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status(_, hint) => *hint,
            ApiError::Resilience(e) => e.retry_after(),
        }
    }
}

fn policy(clock: &ManualClock) -> RetryPolicy {
    RetryPolicy::builder()
        .name("shopify-orders")
        .max_attempts(5)
        .backoff(Backoff::exponential(Duration::from_millis(500)).with_jitter(Jitter::None))
        .clock(clock.shared())
        .build()
        .unwrap()
}

#[test]
fn classified_errors_retry_transient_statuses_and_honour_retry_after() {
    let clock = ManualClock::new();
    let mut responses = vec![
        Err(ApiError::Status(429, Some(Duration::from_secs(2)))),
        Err(ApiError::Status(503, None)),
        Ok("orders"),
    ]
    .into_iter();
    let r = policy(&clock).call_with(&Classified, || responses.next().unwrap());
    assert_eq!(r, Ok("orders"));
    // The 429's hint replaces the first delay; the 503 waits the computed second delay.
    assert_eq!(clock.sleeps(), [Duration::from_secs(2), Duration::from_secs(1)]);
}

#[test]
fn permanent_statuses_are_returned_at_once() {
    let clock = ManualClock::new();
    let r: Result<(), _> =
        policy(&clock).call_with(&Classified, || Err(ApiError::Status(404, None)));
    assert_eq!(r, Err(ApiError::Status(404, None)));
    assert!(clock.sleeps().is_empty());
}

#[test]
fn layered_run_turns_an_open_circuit_into_the_users_error() {
    let clock = ManualClock::new();
    let mut attempts = 0;
    let hooks = Hooks::new().on_retry(|_: &RetryEvent<'_, (), ApiError>| {});
    let r = policy(&clock).run(&hooks, || {
        attempts += 1;
        match attempts {
            1 => Err(Fault::Rejected(Error::timeout(Duration::from_secs(1)))),
            _ => Err(Fault::Rejected(Error::circuit_open("shopify", Duration::from_secs(30)))),
        }
    });
    let user_error = r.map_err(Fault::into_error).unwrap_err();
    assert!(matches!(user_error, ApiError::Resilience(Error::CircuitOpen { .. })));
    assert_eq!(attempts, 2, "the timeout is retried, the open circuit is not");
}
