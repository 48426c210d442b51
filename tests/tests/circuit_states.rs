//! Circuit breaker state machine, driven by a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use resilience::circuit::{
    CallOutcome, CircuitBreaker, CircuitBreakerConfig, CircuitState, Window,
};
use resilience::clock::{Clock, ManualClock};
use resilience::{Error, Fault};

const SEC: Duration = Duration::from_secs(1);

#[derive(Debug, PartialEq)]
enum AppError {
    Down,
    NotFound,
    Resilience(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Resilience(e)
    }
}

fn breaker(name: &str, config: CircuitBreakerConfig) -> (ManualClock, CircuitBreaker) {
    let clock = ManualClock::new();
    let b = CircuitBreaker::with_clock(name, config, clock.shared());
    (clock, b)
}

fn consecutive(n: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig::builder()
        .failure_threshold(n)
        .recovery_timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn fail(b: &CircuitBreaker) -> Result<(), AppError> {
    b.call(|| Err(AppError::Down))
}

fn succeed(b: &CircuitBreaker) -> Result<(), AppError> {
    b.call(|| Ok(()))
}

fn retry_after(r: Result<(), AppError>) -> Duration {
    match r {
        Err(AppError::Resilience(Error::CircuitOpen { retry_after, .. })) => retry_after,
        other => panic!("expected CircuitOpen, got {other:?}"),
    }
}

#[test]
fn trips_after_exactly_n_consecutive_failures() {
    let (_, b) = breaker("st-consecutive", consecutive(3));
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.stats().consecutive_failures, 2);
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn a_success_resets_the_consecutive_count() {
    let (_, b) = breaker("st-reset-count", consecutive(3));
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    succeed(&b).unwrap();
    assert_eq!(b.stats().consecutive_failures, 0);
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Closed);
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Open);
}

fn rate_config(window: Window, min_calls: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig::builder()
        .failure_rate(0.5)
        .window(window)
        .min_calls(min_calls)
        .recovery_timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[test]
fn failure_rate_trips_only_after_min_calls() {
    let (_, b) = breaker("st-rate-min", rate_config(Window::calls(10), 4));
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    // 100 % failures but only 3 outcomes.
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.stats().failure_rate, Some(1.0));
    succeed(&b).unwrap();
    // 4 outcomes, 75 %: the rate is checked on failures, so the next failure trips.
    assert_eq!(b.state(), CircuitState::Closed);
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn count_window_slides_old_failures_out() {
    let (_, b) = breaker("st-rate-slide", rate_config(Window::calls(4), 4));
    fail(&b).unwrap_err();
    succeed(&b).unwrap();
    succeed(&b).unwrap();
    succeed(&b).unwrap(); // window: F S S S (25 %)
    succeed(&b).unwrap(); // F slides out: S S S S
    assert_eq!(b.stats().failure_rate, Some(0.0));
    fail(&b).unwrap_err(); // S S S F: 25 %
    assert_eq!(b.state(), CircuitState::Closed);
    fail(&b).unwrap_err(); // S S F F: 50 %
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn time_window_buckets_expire() {
    let window = Window::Time { duration: Duration::from_secs(10), buckets: 10 };
    let (clock, b) = breaker("st-rate-time", rate_config(window, 4));
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    assert_eq!(b.stats().failure_rate, Some(1.0));
    // The three failures expire after the window.
    clock.advance(Duration::from_secs(11));
    assert_eq!(b.stats().failure_rate, None);
    succeed(&b).unwrap();
    succeed(&b).unwrap();
    succeed(&b).unwrap();
    fail(&b).unwrap_err(); // 1 of 4: 25 %
    assert_eq!(b.state(), CircuitState::Closed);
    // Without the expiry this would be 4 of 7 (57 %); it is 2 of 5 (40 %).
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Closed);
    fail(&b).unwrap_err(); // 3 of 6
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn slow_successes_count_as_failures() {
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(2)
        .slow_call(Duration::from_millis(500))
        .build()
        .unwrap();
    let (clock, b) = breaker("st-slow", config);
    let slow = |b: &CircuitBreaker| {
        b.call(|| {
            clock.advance(Duration::from_millis(501));
            Ok::<_, AppError>(())
        })
    };
    slow(&b).unwrap();
    b.call(|| {
        clock.advance(Duration::from_millis(500)); // at the threshold: not slow
        Ok::<_, AppError>(())
    })
    .unwrap();
    assert_eq!(b.stats().consecutive_failures, 0);
    slow(&b).unwrap();
    slow(&b).unwrap();
    let s = b.stats();
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!((s.slow_calls, s.failures, s.successes), (3, 3, 1));
}

#[test]
fn open_rejects_with_retry_after_until_recovery_timeout() {
    let (clock, b) = breaker("st-open", consecutive(1));
    fail(&b).unwrap_err();
    assert_eq!(retry_after(succeed(&b)), Duration::from_secs(30));
    clock.advance(Duration::from_secs(12));
    assert_eq!(retry_after(succeed(&b)), Duration::from_secs(18));
    clock.advance(Duration::from_secs(18) - Duration::from_nanos(1));
    assert_eq!(retry_after(succeed(&b)), Duration::from_nanos(1));
    assert_eq!(b.state(), CircuitState::Open);
    clock.advance(Duration::from_nanos(1));
    // Lazily half-open on the next call, which is a probe.
    let permit = b.try_acquire().unwrap();
    assert!(permit.is_probe());
    assert_eq!(b.state(), CircuitState::HalfOpen);
    permit.success();
    let s = b.stats();
    assert_eq!(s.rejections, 3);
}

fn half_open_config(max: u32, successes: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(SEC)
        .half_open_max_calls(max)
        .success_threshold(successes)
        .build()
        .unwrap()
}

fn to_half_open(b: &CircuitBreaker, clock: &ManualClock) {
    fail(b).unwrap_err();
    clock.advance(SEC);
}

#[test]
fn success_threshold_closes_across_sequential_probes() {
    let (clock, b) = breaker("st-close", half_open_config(1, 3));
    to_half_open(&b, &clock);
    succeed(&b).unwrap();
    succeed(&b).unwrap();
    assert_eq!(b.state(), CircuitState::HalfOpen);
    succeed(&b).unwrap();
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.stats().transitions, 3); // closed→open→half_open→closed
}

#[test]
fn a_failed_probe_reopens_for_a_new_period() {
    let (clock, b) = breaker("st-reopen", half_open_config(2, 2));
    to_half_open(&b, &clock);
    succeed(&b).unwrap();
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(retry_after(succeed(&b)), SEC);
}

#[test]
fn half_open_admits_only_the_probe_limit_and_drop_releases() {
    let (clock, b) = breaker("st-probe-limit", half_open_config(2, 5));
    to_half_open(&b, &clock);
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(Duration::ZERO));
    drop(p1); // no outcome: ignored, slot freed
    let p3 = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    p2.success();
    p3.ignore();
    let s = b.stats();
    assert_eq!((s.successes, s.ignored, s.rejections), (1, 2, 2));
    assert_eq!(b.state(), CircuitState::HalfOpen);
}

#[test]
fn ignored_errors_change_nothing() {
    let (_, b) = breaker("st-ignored", consecutive(2));
    let classify = |e: &AppError| match e {
        AppError::NotFound => CallOutcome::Ignored,
        _ => CallOutcome::Failure,
    };
    fail(&b).unwrap_err();
    for _ in 0..10 {
        let r: Result<(), AppError> = b.call_with(&classify, || Err(AppError::NotFound));
        assert_eq!(r, Err(AppError::NotFound));
    }
    let s = b.stats();
    assert_eq!((s.consecutive_failures, s.ignored, s.failures), (1, 10, 1));
    assert_eq!(s.state, CircuitState::Closed);
    // The ignored calls did not reset the count either: one more failure trips.
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn errors_classified_as_success_reset_the_count() {
    let (_, b) = breaker("st-as-success", consecutive(2));
    fail(&b).unwrap_err();
    let r: Result<(), AppError> =
        b.call_with(&|_: &AppError| CallOutcome::Success, || Err(AppError::NotFound));
    assert!(r.is_err());
    assert_eq!(b.stats().consecutive_failures, 0);
}

#[test]
fn ignored_errors_keep_the_rate_window_unchanged() {
    let (_, b) = breaker("st-ignored-rate", rate_config(Window::calls(4), 2));
    succeed(&b).unwrap();
    let _ = b.call_with(&|_: &AppError| CallOutcome::Ignored, || Err::<(), _>(AppError::Down));
    assert_eq!(b.stats().failure_rate, Some(0.0));
}

#[test]
fn force_open_rejects_with_zero_retry_after_until_reset() {
    let (clock, b) = breaker("st-force", consecutive(5));
    b.force_open();
    assert_eq!(b.state(), CircuitState::ForcedOpen);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(retry_after(succeed(&b)), Duration::ZERO);
    b.reset();
    assert_eq!(b.state(), CircuitState::Closed);
    succeed(&b).unwrap();
}

#[test]
fn disabled_lets_everything_through_and_never_trips() {
    let (_, b) = breaker("st-disable", consecutive(1));
    b.disable();
    for _ in 0..20 {
        fail(&b).unwrap_err();
    }
    let s = b.stats();
    assert_eq!(s.state, CircuitState::Disabled);
    assert_eq!((s.failures, s.consecutive_failures, s.rejections), (20, 0, 0));
}

#[test]
fn reset_closes_and_clears_the_window() {
    let (_, b) = breaker("st-reset", rate_config(Window::calls(10), 2));
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Open);
    b.reset();
    let s = b.stats();
    assert_eq!((s.state, s.failure_rate, s.consecutive_failures), (CircuitState::Closed, None, 0));
    assert_eq!(s.failures, 2, "stats counters survive a reset");
}

#[test]
fn reconfigure_keeps_counters_and_state() {
    let (_, b) = breaker("st-reconfigure", consecutive(3));
    succeed(&b).unwrap();
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    b.reconfigure(consecutive(10));
    assert_eq!(b.config().failure_threshold(), Some(10));
    let s = b.stats();
    assert_eq!((s.calls, s.successes, s.failures, s.consecutive_failures), (3, 1, 2, 2));
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Closed, "the new threshold applies");
    b.reconfigure(consecutive(4));
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn reconfigure_keeps_a_window_of_the_same_shape() {
    let (_, b) = breaker("st-reconfigure-window", rate_config(Window::calls(10), 5));
    fail(&b).unwrap_err();
    succeed(&b).unwrap();
    let same_shape = b.config().to_builder().failure_rate(0.9).build().unwrap();
    b.reconfigure(same_shape);
    assert_eq!(b.stats().failure_rate, Some(0.5));
    b.reconfigure(rate_config(Window::calls(20), 5));
    assert_eq!(b.stats().failure_rate, None);
}

#[test]
fn outcomes_from_an_earlier_generation_are_ignored() {
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(2)
        .recovery_timeout(SEC)
        .success_threshold(1)
        .build()
        .unwrap();
    let (clock, b) = breaker("st-stale", config);
    // A slow call admitted while closed.
    let slow = b.try_acquire().unwrap();
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Open);
    // ... finishes with a success while open: it must not count as a probe or close.
    slow.success();
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(b.stats().successes, 1, "stats still count the late call");
    // A call admitted while closed that fails after an operator reset does not count
    // toward the new closed period.
    clock.advance(SEC);
    b.reset();
    let before_reset = b.try_acquire().unwrap();
    fail(&b).unwrap_err();
    b.reset();
    before_reset.failure();
    assert_eq!(b.stats().consecutive_failures, 0);
    fail(&b).unwrap_err();
    assert_eq!(b.state(), CircuitState::Closed, "one failure of the new period only");
}

#[test]
fn stale_probe_outcome_does_not_touch_a_new_half_open_period() {
    let (clock, b) = breaker("st-stale-probe", half_open_config(1, 1));
    to_half_open(&b, &clock);
    let old_probe = b.try_acquire().unwrap();
    b.force_open();
    b.reset();
    to_half_open(&b, &clock);
    let new_probe = b.try_acquire().unwrap();
    // The old probe failing must not re-open the new half-open period...
    old_probe.failure();
    assert_eq!(b.state(), CircuitState::HalfOpen);
    // ...nor free the new period's only slot.
    assert!(b.try_acquire().is_err());
    new_probe.success();
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn run_counts_inner_timeouts_and_ignores_other_rejections() {
    let (_, b) = breaker("st-run", consecutive(2));
    let all = resilience::circuit::AllErrors;
    let r: Result<(), Fault<AppError>> =
        b.run(&all, || Err(Fault::Rejected(Error::rate_limited("inner", SEC))));
    assert!(r.is_err());
    let r: Result<(), Fault<AppError>> =
        b.run(&all, || Err(Fault::Rejected(Error::bulkhead_full("inner", 4))));
    assert!(r.is_err());
    assert_eq!(b.stats().ignored, 2);
    let r: Result<(), Fault<AppError>> = b.run(&all, || Err(Fault::Rejected(Error::timeout(SEC))));
    assert!(r.is_err());
    let r: Result<(), Fault<AppError>> = b.run(&all, || Err(Fault::Inner(AppError::Down)));
    assert!(r.is_err());
    assert_eq!(b.state(), CircuitState::Open);
    let r: Result<(), Fault<AppError>> = b.run(&all, || Ok(()));
    assert!(matches!(r, Err(Fault::Rejected(Error::CircuitOpen { .. }))));
}

#[test]
fn stats_track_time_in_state_and_transitions() {
    let (clock, b) = breaker("st-stats", consecutive(1));
    clock.advance(Duration::from_secs(5));
    let s = b.stats();
    assert_eq!((s.time_in_state, s.last_transition, s.transitions), (5 * SEC, None, 0));
    assert_eq!(s.name, "st-stats");
    fail(&b).unwrap_err();
    clock.advance(Duration::from_secs(2));
    let s = b.stats();
    assert_eq!(s.last_transition, Some(5 * SEC));
    assert_eq!(s.time_in_state, 2 * SEC);
    assert_eq!(s.transitions, 1);
    assert_eq!(clock.now(), 7 * SEC);
}

#[test]
fn a_panicking_call_releases_its_probe_slot() {
    let (clock, b) = breaker("st-panic", half_open_config(1, 1));
    to_half_open(&b, &clock);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<(), AppError> = b.call(|| panic!("boom"));
    }));
    assert!(caught.is_err());
    assert_eq!(b.stats().ignored, 1);
    succeed(&b).unwrap();
    assert_eq!(b.state(), CircuitState::Closed);
}
