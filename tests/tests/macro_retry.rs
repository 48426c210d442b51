//! `#[retry]` as a user writes it: attempts counted, exact delays under controlled time,
//! predicates, hooks, server hints, budgets, presets and registry precedence.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::backoff::{Backoff, Jitter};
use resilience::classify::{Classify, ErrorClass, RetryAfter};
use resilience::clock::ManualClock;
use resilience::retry::{RetryBudgetConfig, RetryEvent, RetryPolicy};
use resilience::{Error, registry, retry};
use tokio::time::Instant;

#[derive(Debug, PartialEq)]
enum AppError {
    Flaky(u32),
    Fatal,
    Resilience(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Resilience(e)
    }
}

/// Fails until the `ok_at`-th call.
fn flaky(calls: &AtomicU32, ok_at: u32) -> Result<u32, AppError> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    if n < ok_at { Err(AppError::Flaky(n)) } else { Ok(n) }
}

#[retry(max_attempts = 4, initial_delay = 100ms, jitter = none)]
async fn exponential(calls: &AtomicU32, ok_at: u32) -> Result<u32, AppError> {
    flaky(calls, ok_at)
}

#[tokio::test(start_paused = true)]
async fn attempts_are_counted_and_delays_are_exact() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(exponential(&calls, 3).await, Ok(3));
    assert_eq!(start.elapsed(), Duration::from_millis(100 + 200));

    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(exponential(&calls, 99).await, Err(AppError::Flaky(4)), "the last error");
    assert_eq!(calls.load(Ordering::SeqCst), 4, "max_attempts counts the first call");
    assert_eq!(start.elapsed(), Duration::from_millis(100 + 200 + 400));
}

#[retry(max_attempts = 5, backoff = constant, initial_delay = 250ms, jitter = none)]
async fn constant(calls: &AtomicU32) -> Result<u32, AppError> {
    flaky(calls, 99)
}

#[retry(max_attempts = 5, backoff = linear, initial_delay = 100ms, jitter = none)]
async fn linear(calls: &AtomicU32) -> Result<u32, AppError> {
    flaky(calls, 99)
}

#[retry(max_attempts = 6, backoff = fibonacci, initial_delay = 10ms, jitter = none)]
async fn fibonacci(calls: &AtomicU32) -> Result<u32, AppError> {
    flaky(calls, 99)
}

#[retry(max_attempts = 5, initial_delay = 1s, multiplier = 3.0, max_delay = 5s, jitter = none)]
async fn capped(calls: &AtomicU32) -> Result<u32, AppError> {
    flaky(calls, 99)
}

#[tokio::test(start_paused = true)]
async fn every_backoff_strategy_waits_what_it_says() {
    let elapsed = |ms: u64| Duration::from_millis(ms);
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let _ = constant(&calls).await;
    assert_eq!(start.elapsed(), elapsed(4 * 250));

    let start = Instant::now();
    let _ = linear(&calls).await;
    assert_eq!(start.elapsed(), elapsed(100 + 200 + 300 + 400));

    let start = Instant::now();
    let _ = fibonacci(&calls).await;
    assert_eq!(start.elapsed(), elapsed(10 + 10 + 20 + 30 + 50));

    let start = Instant::now();
    let _ = capped(&calls).await;
    assert_eq!(start.elapsed(), elapsed(1_000 + 3_000 + 5_000 + 5_000), "capped at max_delay");
}

#[retry(max_attempts = 10, backoff = constant, initial_delay = 1s, jitter = none, max_elapsed = 3500ms)]
async fn bounded(calls: &AtomicU32) -> Result<u32, AppError> {
    flaky(calls, 99)
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_stops_before_a_sleep_that_would_pass_it() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(bounded(&calls).await, Err(AppError::Flaky(4)));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

fn is_flaky(e: &AppError) -> bool {
    matches!(e, AppError::Flaky(_))
}

#[retry(max_attempts = 5, initial_delay = 1ms, retry_if = is_flaky)]
async fn with_path_predicate(calls: &AtomicU32, fatal_at: u32) -> Result<u32, AppError> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    if n == fatal_at { Err(AppError::Fatal) } else { Err(AppError::Flaky(n)) }
}

#[retry(max_attempts = 5, initial_delay = 1ms, retry_if = |e: &AppError| *e != AppError::Fatal)]
fn with_closure_predicate(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Fatal)
}

#[tokio::test(start_paused = true)]
async fn retry_if_stops_on_errors_it_rejects() {
    let calls = AtomicU32::new(0);
    assert_eq!(with_path_predicate(&calls, 2).await, Err(AppError::Fatal));
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let calls = AtomicU32::new(0);
    assert_eq!(with_closure_predicate(&calls), Err(AppError::Fatal));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[retry(max_attempts = 4, initial_delay = 1ms, retry_on_result = |v: &u32| *v < 3)]
async fn soft_failures(calls: &AtomicU32) -> Result<u32, AppError> {
    Ok(calls.fetch_add(1, Ordering::SeqCst) + 1)
}

#[retry(max_attempts = 2, initial_delay = 1ms, retry_on_result = |v: &u32| *v < 100)]
async fn soft_failures_run_out(calls: &AtomicU32) -> Result<u32, AppError> {
    Ok(calls.fetch_add(1, Ordering::SeqCst) + 1)
}

#[tokio::test(start_paused = true)]
async fn retry_on_result_retries_soft_failures_and_returns_the_last_value() {
    let calls = AtomicU32::new(0);
    assert_eq!(soft_failures(&calls).await, Ok(3));
    let calls = AtomicU32::new(0);
    assert_eq!(soft_failures_run_out(&calls).await, Ok(2));
}

static RETRIES_SEEN: Mutex<Vec<(u32, Duration)>> = Mutex::new(Vec::new());

fn record(event: &RetryEvent<'_, u32, AppError>) {
    RETRIES_SEEN.lock().unwrap().push((event.attempt, event.delay));
}

#[retry(max_attempts = 3, backoff = constant, initial_delay = 40ms, jitter = none, on_retry = record)]
async fn observed(calls: &AtomicU32) -> Result<u32, AppError> {
    flaky(calls, 99)
}

#[tokio::test(start_paused = true)]
async fn on_retry_sees_each_attempt_and_delay() {
    let calls = AtomicU32::new(0);
    let _ = observed(&calls).await;
    let seen = RETRIES_SEEN.lock().unwrap().clone();
    assert_eq!(seen, [(1, Duration::from_millis(40)), (2, Duration::from_millis(40))]);
}

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

#[retry(max_attempts = 5, initial_delay = 1s, jitter = none)]
async fn http(calls: &AtomicU32, statuses: &[HttpError]) -> Result<u32, HttpError> {
    let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
    match statuses.get(n) {
        Some(HttpError::Status(s)) => Err(HttpError::Status(*s)),
        Some(HttpError::TooManyRequests(d)) => Err(HttpError::TooManyRequests(*d)),
        _ => Ok(n as u32 + 1),
    }
}

#[tokio::test(start_paused = true)]
async fn classify_and_retry_after_are_honoured_without_being_asked() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(http(&calls, &[HttpError::Status(404)]).await, Err(HttpError::Status(404)));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a permanent error is not retried");
    assert_eq!(start.elapsed(), Duration::ZERO);

    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let statuses = [HttpError::Status(503), HttpError::TooManyRequests(Duration::from_millis(300))];
    assert_eq!(http(&calls, &statuses).await, Ok(3));
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(1_000 + 300),
        "the computed 1 s, then the server's 300 ms hint in place of 2 s"
    );
}

#[retry(max_attempts = 3, backoff = constant, initial_delay = 1ms, jitter = none, budget = "macro-retry-budget")]
async fn budgeted(calls: &AtomicU32) -> Result<u32, AppError> {
    flaky(calls, 99)
}

#[tokio::test(start_paused = true)]
async fn a_shared_budget_limits_amplification() {
    registry().retry_budgets().configure(
        "macro-retry-budget",
        RetryBudgetConfig::builder().ratio(0.1).min_retries_per_sec(0).build().unwrap(),
    );
    let calls = AtomicU32::new(0);
    for _ in 0..100 {
        let _ = budgeted(&calls).await;
    }
    let total = calls.load(Ordering::SeqCst);
    assert!((100..=110).contains(&total), "100 calls made {total} attempts");
    let stats = registry()
        .retry_budgets()
        .all_stats()
        .into_iter()
        .find(|s| s.name == "macro-retry-budget")
        .unwrap();
    assert_eq!(stats.calls, 100);
    assert_eq!(u64::from(total) - 100, stats.retries);
}

#[retry(preset = "api", initial_delay = 10ms, jitter = none)]
async fn from_preset(calls: &AtomicU32) -> Result<u32, AppError> {
    flaky(calls, 99)
}

#[retry(preset = "api", max_attempts = 2, initial_delay = 10ms, jitter = none)]
async fn preset_overridden(calls: &AtomicU32) -> Result<u32, AppError> {
    flaky(calls, 99)
}

#[tokio::test(start_paused = true)]
async fn presets_fill_what_the_attribute_leaves_out() {
    let calls = AtomicU32::new(0);
    let _ = from_preset(&calls).await;
    assert_eq!(calls.load(Ordering::SeqCst), 5, "the api preset makes 5 attempts");
    let calls = AtomicU32::new(0);
    let _ = preset_overridden(&calls).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "a literal wins over the preset");
}

#[retry(max_attempts = 2, backoff = constant, initial_delay = 1h)]
fn blocking(calls: &AtomicU32) -> Result<u32, AppError> {
    flaky(calls, 99)
}

#[test]
fn the_registry_policy_wins_and_blocking_sleeps_use_its_clock() {
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .max_attempts(4)
        .backoff(Backoff::exponential(Duration::from_millis(100)).with_jitter(Jitter::None))
        .clock(clock.shared())
        .build()
        .unwrap();
    registry().configure_retry(concat!(module_path!(), "::blocking"), policy);
    let calls = AtomicU32::new(0);
    assert_eq!(blocking(&calls), Err(AppError::Flaky(4)));
    assert_eq!(calls.load(Ordering::SeqCst), 4, "the registry's 4 attempts, not the attribute's 2");
    assert_eq!(
        clock.sleeps(),
        [Duration::from_millis(100), Duration::from_millis(200), Duration::from_millis(400)]
    );
}

static SEEDED_DELAYS: Mutex<Vec<Duration>> = Mutex::new(Vec::new());

#[retry(max_attempts = 5, initial_delay = 100ms, on_retry = |e: &RetryEvent<'_, u32, AppError>| SEEDED_DELAYS.lock().unwrap().push(e.delay))]
async fn seeded(calls: &AtomicU32) -> Result<u32, AppError> {
    flaky(calls, 99)
}

#[tokio::test(start_paused = true)]
async fn a_seeded_policy_gives_exact_jittered_delays() {
    let backoff = Backoff::exponential(Duration::from_millis(100)).with_jitter(Jitter::Full);
    let policy = RetryPolicy::builder().max_attempts(5).backoff(backoff).seed(42).build().unwrap();
    registry().configure_retry(concat!(module_path!(), "::seeded"), policy);
    let expected: Vec<Duration> = backoff.iter_seeded(42).take(4).collect();
    for _ in 0..2 {
        SEEDED_DELAYS.lock().unwrap().clear();
        let calls = AtomicU32::new(0);
        let _ = seeded(&calls).await;
        assert_eq!(*SEEDED_DELAYS.lock().unwrap(), expected, "the same seed, the same delays");
    }
    assert!(expected.iter().any(|d| d.subsec_nanos() % 1_000_000 != 0), "jittered: {expected:?}");
}

#[retry(max_attempts = 3, initial_delay = 1ms)]
fn sync_flaky(calls: &AtomicU32, ok_at: u32) -> Result<u32, AppError> {
    flaky(calls, ok_at)
}

#[test]
fn a_sync_function_is_retried_in_place() {
    let calls = AtomicU32::new(0);
    assert_eq!(sync_flaky(&calls, 2), Ok(2));
    let calls = AtomicU32::new(0);
    assert_eq!(sync_flaky(&calls, 1), Ok(1), "a first-attempt success makes one call");
}
