//! Circuit breakers publish every transition.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
use resilience::clock::ManualClock;
use resilience::events::{self, EventKind, Interest, StateTransition};

fn record(name: &'static str) -> (Arc<Mutex<Vec<StateTransition>>>, events::Subscription) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let sub = events::subscribe(Interest::TRANSITIONS, move |e| {
        if let EventKind::Transition(t) = &e.kind
            && &*t.name == name
        {
            sink.lock().unwrap().push(t.clone());
        }
    });
    (seen, sub)
}

#[test]
fn every_transition_is_emitted_with_details() {
    let (seen, _sub) = record("ev-cycle");
    let clock = ManualClock::new();
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(2)
        .recovery_timeout(Duration::from_secs(30))
        .success_threshold(1)
        .build()
        .unwrap();
    let b = CircuitBreaker::with_clock("ev-cycle", config, clock.shared());
    clock.advance(Duration::from_secs(1));
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(30));
    b.try_acquire().unwrap().success();
    b.force_open();
    b.disable();
    b.reset();
    b.reset(); // already closed: no event

    let seen = seen.lock().unwrap();
    let path: Vec<_> = seen.iter().map(|t| (t.from, t.to)).collect();
    use CircuitState::*;
    assert_eq!(
        path,
        vec![
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed),
            (Closed, ForcedOpen),
            (ForcedOpen, Disabled),
            (Disabled, Closed)
        ]
    );
    let open = &seen[0];
    assert_eq!(open.consecutive_failures, 2);
    assert_eq!(open.open_for, Some(Duration::from_secs(30)));
    assert_eq!(open.at, Duration::from_secs(1));
    assert_eq!(open.failure_rate, None);
    assert_eq!(seen[1].at, Duration::from_secs(31));
    assert_eq!(seen[1].open_for, None);
    assert_eq!(b.stats().transitions, 6);
}

#[test]
fn rate_breakers_report_the_failure_rate() {
    let (seen, _sub) = record("ev-rate");
    let config = CircuitBreakerConfig::builder()
        .failure_rate(0.5)
        .window(resilience::circuit::Window::calls(4))
        .min_calls(4)
        .build()
        .unwrap();
    let b = CircuitBreaker::new("ev-rate", config);
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].failure_rate, Some(0.5));
    assert_eq!(seen[0].consecutive_failures, 2);
}
