//! One event interface for every layer: each kind of event from the instance that reports
//! it, topics, registry isolation and unsubscribing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::backoff::Backoff;
use resilience::bulkhead::{Bulkhead, BulkheadConfig};
use resilience::circuit::{CallOutcome, CircuitBreaker, CircuitBreakerConfig, CircuitState};
use resilience::clock::ManualClock;
use resilience::events::{self, Event, EventKind, GiveUpReason, Interest, Layer, Subscription};
use resilience::rate_limit::{OnLimit, RateLimitConfig, RateLimiter};
use resilience::registry::Registry;
use resilience::retry::{RetryBudget, RetryBudgetConfig, RetryPolicy};
use resilience::{Error, timeout};

type Seen = Arc<Mutex<Vec<Event>>>;

/// Events of the process default hub for instance `name`.
fn record(interest: Interest, name: &'static str) -> (Seen, Subscription) {
    let seen = Seen::default();
    let sink = seen.clone();
    let sub = events::subscribe(interest, move |e| {
        if &*e.name == name {
            sink.lock().unwrap().push(e.clone());
        }
    });
    (seen, sub)
}

fn kinds(seen: &Seen) -> Vec<EventKind> {
    seen.lock().unwrap().iter().map(|e| e.kind.clone()).collect()
}

fn failing() -> Result<(), Error> {
    Err(Error::timeout(Duration::from_secs(1)))
}

#[test]
fn a_breaker_reports_transitions_and_rejections() {
    let (seen, _sub) = record(Interest::TRANSITIONS | Interest::REJECTIONS, "ev-breaker");
    let clock = ManualClock::new();
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let b = CircuitBreaker::with_clock("ev-breaker", config, clock.shared());
    let _ = b.call(failing);
    clock.advance(Duration::from_secs(4));
    let _ = b.call(|| Ok::<(), Error>(()));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|e| e.layer == Layer::CircuitBreaker));
    match &seen[0].kind {
        EventKind::Transition(t) => {
            assert_eq!((t.from, t.to), (CircuitState::Closed, CircuitState::Open));
            assert_eq!(t.open_for, Some(Duration::from_secs(10)));
        }
        other => panic!("expected a transition, got {other:?}"),
    }
    assert_eq!(
        seen[1].kind,
        EventKind::Rejected { retry_after: Some(Duration::from_secs(6)), reason: "circuit open" }
    );
    assert_eq!(seen[1].at, Duration::from_secs(4), "the breaker clock's time");
}

#[test]
fn a_breaker_reports_each_counted_call_with_its_duration_only_to_call_subscribers() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::with_clock("ev-calls", CircuitBreakerConfig::default(), clock.shared());
    let (others, _other_sub) = record(Interest::ALL.without(Interest::CALLS), "ev-calls");
    let slow = || {
        clock.advance(Duration::from_millis(250));
        Ok::<(), Error>(())
    };
    let _ = b.call(slow);
    {
        let (seen, _sub) = record(Interest::CALLS, "ev-calls");
        let _ = b.call(slow);
        let _ = b.call(|| {
            clock.advance(Duration::from_millis(40));
            failing()
        });
        assert_eq!(
            kinds(&seen),
            [
                EventKind::CallRecorded {
                    outcome: CallOutcome::Success,
                    duration: Duration::from_millis(250)
                },
                EventKind::CallRecorded {
                    outcome: CallOutcome::Failure,
                    duration: Duration::from_millis(40)
                },
            ]
        );
    }
    assert!(kinds(&others).is_empty(), "no call event reaches other topics");
    assert_eq!(b.stats().calls, 3);
}

#[test]
fn a_limiter_reports_waits_and_rejections_with_the_reason() {
    let (seen, _sub) = record(Interest::WAITS | Interest::REJECTIONS, "ev-limiter");
    let clock = ManualClock::new();
    let config = RateLimitConfig::builder()
        .per_second(10)
        .burst(1)
        .on_limit(OnLimit::Wait)
        .max_wait(Duration::from_millis(150))
        .build()
        .unwrap();
    let limiter = RateLimiter::with_clock("ev-limiter", config, clock.shared());
    limiter.acquire(1).unwrap();
    limiter.acquire(1).unwrap(); // waits 100 ms (the blocking sleep moves the manual clock)
    let denied = limiter.try_acquire(1);
    assert!(matches!(denied, Err(Error::RateLimited { .. })));
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().all(|e| e.layer == Layer::RateLimiter && e.key.is_none()));
    assert_eq!(
        seen.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(),
        [
            EventKind::Waited { waited: Duration::from_millis(100) },
            EventKind::Rejected {
                retry_after: Some(Duration::from_millis(100)),
                reason: "no permit"
            },
        ]
    );
}

#[test]
fn a_keyed_limiter_names_the_key() {
    let (seen, _sub) = record(Interest::REJECTIONS, "ev-keyed");
    let config = RateLimitConfig::builder().per_second(1).burst(1).build().unwrap();
    let limiter = resilience::KeyedRateLimiter::<String>::new("ev-keyed", config);
    limiter.try_acquire("shop-a", 1).unwrap();
    assert!(limiter.try_acquire("shop-a", 1).is_err());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].key.as_deref(), Some("\"shop-a\""));
}

#[test]
fn a_bulkhead_reports_rejections() {
    let (seen, _sub) = record(Interest::REJECTIONS, "ev-bulkhead");
    let bulkhead =
        Bulkhead::new("ev-bulkhead", BulkheadConfig::builder().max_concurrent(1).build().unwrap());
    let _held = bulkhead.try_acquire().unwrap();
    assert!(bulkhead.try_acquire().is_err());
    assert_eq!(kinds(&seen), [EventKind::Rejected { retry_after: None, reason: "bulkhead full" }]);
    assert_eq!(seen.lock().unwrap()[0].layer, Layer::Bulkhead);
}

#[tokio::test(start_paused = true)]
async fn a_bulkhead_reports_how_long_an_async_caller_waited() {
    let (seen, _sub) = record(Interest::WAITS, "ev-bulkhead-wait");
    let config = BulkheadConfig::builder()
        .max_concurrent(1)
        .max_wait(Duration::from_secs(5))
        .build()
        .unwrap();
    let bulkhead = Arc::new(Bulkhead::new("ev-bulkhead-wait", config));
    let held = bulkhead.try_acquire().unwrap();
    let waiter = {
        let bulkhead = bulkhead.clone();
        tokio::spawn(async move { bulkhead.acquire_async().await.map(drop) })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(held);
    waiter.await.unwrap().unwrap();
    assert_eq!(kinds(&seen), [EventKind::Waited { waited: Duration::from_secs(2) }]);
}

#[test]
fn a_retry_reports_attempts_retries_and_giving_up() {
    let (seen, _sub) = record(Interest::ATTEMPTS | Interest::RETRIES, "ev-retry");
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .name("ev-retry")
        .max_attempts(2)
        .backoff(Backoff::constant(Duration::from_millis(30)))
        .clock(clock.shared())
        .build()
        .unwrap();
    let r: Result<(), &str> = policy.call(|| Err("down"));
    assert_eq!(r, Err("down"));
    assert_eq!(
        kinds(&seen),
        [
            EventKind::Attempt { attempt: 1, succeeded: false },
            EventKind::RetryScheduled {
                attempt: 1,
                max_attempts: 2,
                delay: Duration::from_millis(30),
                error: "\"down\"".into()
            },
            EventKind::Attempt { attempt: 2, succeeded: false },
            EventKind::GaveUp { attempts: 2, reason: GiveUpReason::AttemptsExhausted },
        ]
    );
    let at: Vec<Duration> = seen.lock().unwrap().iter().map(|e| e.at).collect();
    assert_eq!(at[3], Duration::from_millis(30), "the second attempt ran after the sleep");
}

#[test]
fn an_exhausted_budget_is_a_rejection_event() {
    let (seen, _sub) = record(Interest::REJECTIONS | Interest::RETRIES, "ev-budget");
    let clock = ManualClock::new();
    let config = RetryBudgetConfig::builder().ratio(0.1).min_retries_per_sec(0).build().unwrap();
    let budget = Arc::new(RetryBudget::with_clock("ev-budget-pool", config, clock.shared()));
    let policy = RetryPolicy::builder()
        .name("ev-budget")
        .max_attempts(3)
        .budget(budget)
        .clock(clock.shared())
        .build()
        .unwrap();
    let _ = policy.call(|| Err::<(), _>("down"));
    assert_eq!(
        kinds(&seen),
        [
            EventKind::BudgetExhausted { budget: "ev-budget-pool".into(), attempt: 1 },
            EventKind::GaveUp { attempts: 1, reason: GiveUpReason::BudgetExhausted },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_reported() {
    let seen = Seen::default();
    let sink = seen.clone();
    let _sub = events::subscribe(Interest::TIMEOUTS, move |e| sink.lock().unwrap().push(e.clone()));
    let r = timeout::timeout(Duration::from_millis(70), std::future::pending::<()>()).await;
    assert!(matches!(r, Err(Error::Timeout { .. })));
    assert!(
        kinds(&seen).contains(&EventKind::TimedOut { limit: Duration::from_millis(70) }),
        "{:?}",
        kinds(&seen)
    );
}

#[test]
fn a_registry_delivers_only_its_own_instances_events() {
    let mine = Registry::new();
    let (global, _global_sub) = record(Interest::ALL, "ev-isolated");
    let seen = Seen::default();
    let sink = seen.clone();
    let _sub = mine.subscribe(Interest::ALL, move |e| sink.lock().unwrap().push(e.clone()));

    let config = CircuitBreakerConfig::builder().failure_threshold(1).build().unwrap();
    let b = mine.circuit_breakers().get_or_create("ev-isolated", config.clone()).unwrap();
    let _ = b.call(failing);
    let topics = |seen: &Seen| kinds(seen).iter().map(EventKind::interest).collect::<Vec<_>>();
    let call_and_transition = [Interest::CALLS, Interest::TRANSITIONS];
    assert_eq!(topics(&seen), call_and_transition, "to this registry's subscriber");
    assert!(kinds(&global).is_empty(), "nothing reaches the process default");

    // An instance built by hand reports to the process default, not to `mine`.
    let by_hand = CircuitBreaker::new("ev-isolated", config);
    let _ = by_hand.call(failing);
    assert_eq!(topics(&seen), call_and_transition);
    assert_eq!(topics(&global), call_and_transition);
}

#[test]
fn a_registry_gives_its_hub_to_the_retry_policies_it_resolves() {
    let mine = Registry::new();
    let seen = Seen::default();
    let sink = seen.clone();
    let _sub = mine.subscribe(Interest::RETRIES, move |e| sink.lock().unwrap().push(e.clone()));
    let clock = ManualClock::new();
    let policy = mine
        .resolve_retry("ev-resolved", || {
            RetryPolicy::builder()
                .name("ev-resolved")
                .max_attempts(2)
                .backoff(Backoff::constant(Duration::ZERO))
                .clock(clock.shared())
                .build()
        })
        .unwrap();
    let _ = policy.call(|| Err::<(), _>("down"));
    assert_eq!(seen.lock().unwrap().len(), 2, "one retry scheduled, then giving up");
}

#[test]
fn dropping_the_subscription_stops_delivery() {
    let (seen, sub) = record(Interest::REJECTIONS, "ev-unsubscribe");
    let bulkhead = Bulkhead::new(
        "ev-unsubscribe",
        BulkheadConfig::builder().max_concurrent(1).build().unwrap(),
    );
    let _held = bulkhead.try_acquire().unwrap();
    let _ = bulkhead.try_acquire();
    drop(sub);
    let _ = bulkhead.try_acquire();
    assert_eq!(kinds(&seen).len(), 1);
}

#[test]
fn a_retry_reports_its_result_and_attempt_count_to_call_subscribers() {
    let (seen, _sub) = record(Interest::CALLS, "ev-retry-finished");
    let policy = RetryPolicy::builder()
        .name("ev-retry-finished")
        .max_attempts(3)
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .clock(ManualClock::new().shared())
        .build()
        .unwrap();
    let mut calls = 0;
    let ok = policy.call(|| {
        calls += 1;
        if calls < 3 { Err("down") } else { Ok(calls) }
    });
    assert_eq!(ok, Ok(3));
    let _ = policy.call(|| Err::<u32, _>("down"));
    assert_eq!(
        kinds(&seen),
        [
            EventKind::RetryFinished { attempts: 3, succeeded: true },
            EventKind::RetryFinished { attempts: 3, succeeded: false },
        ]
    );
}

fn stale(_fail: bool) -> Result<u32, Error> {
    Ok(0)
}

#[resilience::fallback(stale, on = "any")]
fn answered_by_a_fallback(fail: bool) -> Result<u32, Error> {
    if fail { Err(Error::timeout(Duration::from_secs(1))) } else { Ok(1) }
}

#[test]
fn a_fallback_reports_each_answer_under_the_function_or_the_pipeline_name() {
    use resilience::Pipeline;
    use resilience::fallback::{AnyError, Rejections};

    // The attribute: named after the function, as its whole-call events.
    let (seen, _sub) = record(Interest::FALLBACKS, "events::answered_by_a_fallback");
    assert_eq!(answered_by_a_fallback(false), Ok(1));
    assert!(kinds(&seen).is_empty(), "a success is not reported");
    assert_eq!(answered_by_a_fallback(true), Ok(0));
    assert_eq!(kinds(&seen), [EventKind::FallbackUsed { rejected: false }]);
    let event = seen.lock().unwrap()[0].clone();
    assert_eq!(event.layer, Layer::Fallback);
    assert_eq!(event.kind.interest(), Interest::FALLBACKS);
    assert!(Interest::ALL.contains(Interest::FALLBACKS));

    // A named pipeline: a rejection and an operation's error, each as what it was.
    let (seen, _sub) = record(Interest::FALLBACKS, "events-fallback-pipeline");
    let config = CircuitBreakerConfig::builder().failure_threshold(1).build().unwrap();
    let breaker = Arc::new(CircuitBreaker::new("events-fallback-circuit", config));
    let pipeline =
        Pipeline::new().with_circuit_breaker(breaker.clone()).named("events-fallback-pipeline");
    let any = pipeline.fallback(AnyError, |_: Error| Ok::<u32, Error>(0));
    assert_eq!(any.call(failing_u32), Ok(0), "the failure answered; the circuit opens");
    assert_eq!(any.call(|| Ok(1)), Ok(0), "the open circuit answered");
    assert_eq!(
        kinds(&seen),
        [EventKind::FallbackUsed { rejected: false }, EventKind::FallbackUsed { rejected: true }]
    );
    // An error the fallback does not answer is not reported; nor is an unnamed pipeline's.
    breaker.reset();
    let rejections = pipeline.fallback(Rejections, |_: Error| Ok::<u32, Error>(0));
    assert!(rejections.call(failing_u32).is_err());
    let unnamed = Pipeline::new().with_circuit_breaker(breaker);
    assert_eq!(unnamed.fallback(AnyError, |_: Error| Ok::<u32, Error>(0)).call(|| Ok(1)), Ok(0));
    assert_eq!(kinds(&seen).len(), 2);
}

fn failing_u32() -> Result<u32, Error> {
    Err(Error::timeout(Duration::from_secs(1)))
}
