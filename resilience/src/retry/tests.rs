//! Behaviour of the retry drivers, under controlled time.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::*;
use crate::backoff::{Backoff, Jitter};
use crate::clock::{Clock, ManualClock};
use crate::{ConfigError, Error, Fault};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A policy on a fresh manual clock with exponential 100 ms, x2, no jitter.
fn policy(max_attempts: u32) -> (RetryPolicy, ManualClock) {
    policy_with(max_attempts, Backoff::exponential(ms(100)))
}

/// A policy on a fresh manual clock with this backoff.
fn policy_with(max_attempts: u32, backoff: Backoff) -> (RetryPolicy, ManualClock) {
    let clock = ManualClock::new();
    let p = RetryPolicy::builder()
        .max_attempts(max_attempts)
        .backoff(backoff)
        .clock(clock.shared())
        .build()
        .unwrap();
    (p, clock)
}

/// A budget on `clock` allowing retries for 10 % of the calls, with no per-second floor.
fn ten_percent_budget(name: &str, clock: &ManualClock) -> Arc<RetryBudget> {
    let config = RetryBudgetConfig::builder().ratio(0.1).min_retries_per_sec(0).build().unwrap();
    Arc::new(RetryBudget::with_clock(name, config, clock.shared()))
}

/// Three attempts without delays, spending a [`ten_percent_budget`].
fn budgeted_policy() -> (RetryPolicy, Arc<RetryBudget>) {
    let (p, clock) = policy_with(3, Backoff::constant(Duration::ZERO));
    let budget = ten_percent_budget("svc", &clock);
    (p.to_builder().budget(budget.clone()).build().unwrap(), budget)
}

/// Fails `failures` times with `"boom"`, then returns the attempt number.
fn flaky(failures: u32, calls: &AtomicU32) -> impl FnMut() -> Result<u32, &'static str> + '_ {
    move || {
        let n = calls.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= failures { Err("boom") } else { Ok(n) }
    }
}

/// Runs [`flaky`] failing `failures` times under [`policy`]`(max_attempts)`: the
/// result, the calls made and the clock that recorded the sleeps.
fn run_flaky(max_attempts: u32, failures: u32) -> (Result<u32, &'static str>, u32, ManualClock) {
    let (p, clock) = policy(max_attempts);
    let calls = AtomicU32::new(0);
    let r = p.call(flaky(failures, &calls));
    (r, calls.load(Ordering::Relaxed), clock)
}

#[test]
fn max_attempts_one_means_no_retry() {
    let (r, calls, clock) = run_flaky(1, 5);
    assert_eq!(r, Err("boom"));
    assert_eq!(calls, 1);
    assert!(clock.sleeps().is_empty());
}

#[test]
fn max_attempts_three_means_three_calls_and_two_exact_sleeps() {
    let (r, calls, clock) = run_flaky(3, 5);
    assert_eq!(r, Err("boom"));
    assert_eq!(calls, 3);
    assert_eq!(clock.sleeps(), [ms(100), ms(200)]);
    assert_eq!(clock.now(), ms(300));
}

#[test]
fn success_after_failures_returns_the_value() {
    let (r, _, clock) = run_flaky(5, 3);
    assert_eq!(r, Ok(4));
    assert_eq!(clock.sleeps(), [ms(100), ms(200), ms(400)]);
}

#[test]
fn first_attempt_success_does_not_sleep() {
    let (r, _, clock) = run_flaky(3, 0);
    assert_eq!(r, Ok(1));
    assert!(clock.sleeps().is_empty());
}

#[test]
fn predicate_stops_retries() {
    let (p, clock) = policy(5);
    let hooks = Hooks::new().retry_if(|e: &&str| *e != "fatal");
    let mut outcomes = ["flaky", "fatal", "flaky"].into_iter();
    let r: Result<(), &str> = p.call_with(&hooks, || Err(outcomes.next().unwrap_or("none")));
    assert_eq!(r, Err("fatal"));
    assert_eq!(clock.sleeps(), [ms(100)]);
}

#[test]
fn soft_failures_are_retried_and_the_last_value_returned() {
    let (p, clock) = policy(3);
    let hooks = Hooks::new().retry_on_result(|v: &&str| *v == "pending");
    let calls = AtomicU32::new(0);
    let r: Result<&str, ()> = p.call_with(&hooks, || {
        calls.fetch_add(1, Ordering::Relaxed);
        Ok("pending")
    });
    assert_eq!(r, Ok("pending"), "attempts ran out: the last Ok value");
    assert_eq!(calls.load(Ordering::Relaxed), 3);
    assert_eq!(clock.sleeps(), [ms(100), ms(200)]);

    let mut values = ["pending", "ready"].into_iter();
    let r: Result<&str, ()> = p.call_with(&hooks, || Ok(values.next().unwrap_or("none")));
    assert_eq!(r, Ok("ready"));
}

#[test]
fn on_retry_sees_attempt_numbers_delays_and_reasons() {
    let (p, clock) = policy(4);
    let seen = RefCell::new(Vec::new());
    let hooks = Hooks::new().on_retry(|ev: &RetryEvent<'_, u32, &str>| {
        let reason = match ev.reason {
            RetryReason::Error(e) => e.to_string(),
            RetryReason::Rejected(r) => r.to_string(),
            RetryReason::Result(v) => v.to_string(),
        };
        seen.borrow_mut().push((ev.attempt, ev.max_attempts, ev.delay, reason));
    });
    let calls = AtomicU32::new(0);
    assert_eq!(p.call_with(&hooks, flaky(10, &calls)), Err("boom"));
    let boom = || "boom".to_string();
    assert_eq!(
        seen.into_inner(),
        [(1, 4, ms(100), boom()), (2, 4, ms(200), boom()), (3, 4, ms(400), boom())]
    );
    assert_eq!(clock.sleeps(), [ms(100), ms(200), ms(400)]);
}

#[test]
fn event_carries_the_policy_name() {
    let p = RetryPolicy::builder()
        .name("orders")
        .max_attempts(2)
        .backoff(Backoff::constant(Duration::ZERO))
        .clock(ManualClock::new().shared())
        .build()
        .unwrap();
    let name = RefCell::new(None);
    let hooks = Hooks::new()
        .on_retry(|ev: &RetryEvent<'_, (), ()>| *name.borrow_mut() = ev.name.map(str::to_owned));
    let _ = p.call_with(&hooks, || Err(()));
    assert_eq!(name.into_inner().as_deref(), Some("orders"));
}

#[test]
fn retry_after_hint_replaces_the_delay_and_is_capped() {
    let (p, clock) = policy_with(4, Backoff::exponential(ms(100)).with_max_delay(secs(10)));
    // Hints: 3 s (replaces 100 ms), none (the computed 200 ms), 60 s (capped at 10 s).
    let hooks = Hooks::new().retry_after(|e: &Option<u64>| e.map(secs));
    let mut errors = [Some(3), None, Some(60), None].into_iter();
    let r: Result<(), Option<u64>> = p.call_with(&hooks, || Err(errors.next().flatten()));
    assert_eq!(r, Err(None));
    assert_eq!(clock.sleeps(), [secs(3), ms(200), secs(10)]);

    let clock = ManualClock::new();
    let p = p.to_builder().honor_retry_after(false).clock(clock.shared()).build().unwrap();
    let _ = p.call_with(&hooks, || Err(Some(3)));
    assert_eq!(clock.sleeps(), [ms(100), ms(200), ms(400)], "hints ignored");
}

#[test]
fn classified_hooks_honour_rate_limit_hints_from_crate_errors() {
    let (p, clock) = policy(2);
    let r: Result<(), Error> =
        p.call_with(&Classified, || Err(Error::rate_limited("api", ms(700))));
    assert!(matches!(r, Err(Error::RateLimited { .. })));
    assert_eq!(clock.sleeps(), [ms(700)]);
}

#[test]
fn max_elapsed_stops_before_a_sleep_that_would_pass_it() {
    let (p, clock) = policy_with(10, Backoff::constant(secs(1)));
    let p = p.to_builder().max_elapsed(ms(2500)).build().unwrap();
    let calls = AtomicU32::new(0);
    assert_eq!(p.call(flaky(100, &calls)), Err("boom"));
    // Sleeps end at 1 s and 2 s; a third would end at 3 s > 2.5 s.
    assert_eq!(clock.sleeps(), [secs(1), secs(1)]);
    assert_eq!(calls.load(Ordering::Relaxed), 3);

    // Time spent in the operation counts too (measured from the first attempt's start).
    clock.clear_sleeps();
    let slow = || {
        clock.advance(ms(800));
        Err::<(), _>("slow")
    };
    assert_eq!(p.call(slow), Err("slow"));
    // 0.8 + 1 = 1.8 s; then 2.6 s elapsed + 1 s > 2.5 s.
    assert_eq!(clock.sleeps(), [secs(1)]);
}

#[test]
fn a_sleep_ending_exactly_at_max_elapsed_is_taken() {
    let (p, clock) = policy_with(10, Backoff::constant(secs(1)));
    let p = p.to_builder().max_elapsed(secs(2)).build().unwrap();
    let _ = p.call(|| Err::<(), _>(()));
    assert_eq!(clock.sleeps(), [secs(1), secs(1)]);
}

/// A clock that counts its readings.
#[derive(Debug, Default)]
struct CountingClock {
    reads: AtomicU64,
}

impl Clock for CountingClock {
    fn now(&self) -> Duration {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Duration::ZERO
    }

    fn sleep(&self, _: Duration) {}
}

#[test]
fn the_clock_is_read_only_when_max_elapsed_is_set() {
    let clock = Arc::new(CountingClock::default());
    let p = RetryPolicy::builder()
        .backoff(Backoff::constant(ms(1)))
        .clock(clock.clone())
        .build()
        .unwrap();
    let calls = AtomicU32::new(0);
    assert_eq!(p.call(flaky(2, &calls)), Ok(3));
    assert_eq!(clock.reads.load(Ordering::Relaxed), 0);

    let p = p.to_builder().max_elapsed(secs(1)).build().unwrap();
    let _ = p.call(|| Ok::<_, ()>(()));
    assert_eq!(clock.reads.load(Ordering::Relaxed), 1, "one reading at the start");
}

#[test]
fn seeded_policy_repeats_its_jittered_delays_on_every_call() {
    let backoff = Backoff::exponential(ms(100)).with_jitter(Jitter::Full);
    let (p, clock) = policy_with(5, backoff);
    let p = p.to_builder().seed(77).build().unwrap();
    let expected: Vec<_> = backoff.iter_seeded(77).take(4).collect();
    let _ = p.call(|| Err::<(), _>(()));
    assert_eq!(clock.sleeps(), expected);
    clock.clear_sleeps();
    let _ = p.call(|| Err::<(), _>(()));
    assert_eq!(clock.sleeps(), expected);
}

#[test]
fn budget_limits_amplification_to_ten_percent() {
    let (p, budget) = budgeted_policy();
    let service_calls = AtomicU32::new(0);
    for _ in 0..100 {
        let r = p.call(|| {
            service_calls.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>("down")
        });
        assert_eq!(r, Err("down"));
    }
    let s = budget.stats();
    assert!(service_calls.load(Ordering::Relaxed) <= 110);
    assert_eq!(service_calls.load(Ordering::Relaxed), 110);
    assert_eq!((s.calls, s.retries, s.exhausted), (100, 10, 100));
}

#[test]
fn budget_is_shared_by_threads() {
    let (p, budget) = budgeted_policy();
    let service_calls = AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..250 {
                    let _ = p.call(|| {
                        service_calls.fetch_add(1, Ordering::Relaxed);
                        Err::<(), _>("down")
                    });
                }
            });
        }
    });
    let stats = budget.stats();
    assert_eq!(stats.calls, 2000);
    assert!(stats.retries <= 200, "{stats:?}");
    assert_eq!(u64::from(service_calls.load(Ordering::Relaxed)), 2000 + stats.retries);
}

fn run_with(
    p: &RetryPolicy,
    mut faults: Vec<Fault<&'static str>>,
) -> Result<(), Fault<&'static str>> {
    faults.reverse();
    // Hooks that would refuse every inner error: rejections do not consult them.
    let hooks = Hooks::new().retry_if(|_: &&str| false);
    p.run(&hooks, || match faults.pop() {
        Some(f) => Err(f),
        None => Ok(()),
    })
}

#[test]
fn circuit_open_and_config_rejections_are_never_retried() {
    let (p, clock) = policy(5);
    let open = Fault::Rejected(Error::circuit_open("c", secs(30)));
    assert_eq!(run_with(&p, vec![open.clone()]), Err(open));
    let cfg = Fault::Rejected(Error::Config(ConfigError::new("x", "bad")));
    assert_eq!(run_with(&p, vec![cfg.clone()]), Err(cfg));
    assert!(clock.sleeps().is_empty());
}

#[test]
fn rate_limited_waits_at_least_its_hint_uncapped() {
    let (p, clock) = policy_with(5, Backoff::constant(ms(100)).with_max_delay(secs(1)));
    let limited = |d| Fault::Rejected(Error::rate_limited("rl", d));
    let r = run_with(&p, vec![limited(secs(2)), limited(ms(10)), limited(secs(120))]);
    assert_eq!(r, Ok(()));
    // max(100 ms, hint): 2 s (above the 1 s cap), 100 ms, 120 s.
    assert_eq!(clock.sleeps(), [secs(2), ms(100), secs(120)]);
}

#[test]
fn rate_limited_hint_past_max_elapsed_gives_up() {
    let (p, clock) = policy(5);
    let p = p.to_builder().max_elapsed(secs(5)).build().unwrap();
    let limited = Fault::Rejected(Error::rate_limited("rl", secs(6)));
    assert_eq!(run_with(&p, vec![limited.clone()]), Err(limited));
    assert!(clock.sleeps().is_empty());
}

#[test]
fn timeouts_and_full_bulkheads_are_retried_like_transient_errors() {
    let (p, clock) = policy(5);
    let r = run_with(
        &p,
        vec![
            Fault::Rejected(Error::timeout(secs(1))),
            Fault::Rejected(Error::bulkhead_full("b", 2)),
        ],
    );
    assert_eq!(r, Ok(()));
    assert_eq!(clock.sleeps(), [ms(100), ms(200)]);
    // ... but the inner error is refused by the hooks.
    assert_eq!(run_with(&p, vec![Fault::Inner("no")]), Err(Fault::Inner("no")));
}

#[test]
fn rejections_count_against_attempts() {
    let (p, clock) = policy(2);
    let t = || Fault::Rejected(Error::timeout(secs(1)));
    assert_eq!(run_with(&p, vec![t(), t(), t()]), Err(t()));
    assert_eq!(clock.sleeps(), [ms(100)]);
}

#[test]
fn policies_are_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RetryPolicy>();
    assert_send_sync::<RetryBudget>();
    let p = RetryPolicy::default();
    let q = p.clone();
    assert!(Arc::ptr_eq(&p.inner, &q.inner));
}

#[cfg(feature = "tokio")]
mod async_tests {
    use super::*;
    use tokio::time::Instant;

    fn async_policy(max_attempts: u32) -> RetryPolicy {
        async_policy_with(max_attempts, Backoff::exponential(ms(100)))
    }

    /// A policy sleeping on tokio's timer (no clock set) with this backoff.
    fn async_policy_with(max_attempts: u32, backoff: Backoff) -> RetryPolicy {
        RetryPolicy::builder().max_attempts(max_attempts).backoff(backoff).build().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn elapsed_time_is_the_sum_of_the_delays() {
        let p = async_policy(4);
        let start = Instant::now();
        let mut calls = 0;
        let r: Result<(), &str> = p
            .call_async(|| {
                calls += 1;
                async { Err("boom") }
            })
            .await;
        assert_eq!(r, Err("boom"));
        assert_eq!(calls, 4);
        assert_eq!(start.elapsed(), ms(100 + 200 + 400));
    }

    #[tokio::test(start_paused = true)]
    async fn on_retry_delays_match_tokio_time() {
        let p = async_policy(3);
        let delays = std::sync::Mutex::new(Vec::new());
        let hooks = Hooks::new().on_retry(|ev: &RetryEvent<'_, u32, &str>| {
            delays.lock().unwrap().push(ev.delay);
        });
        let start = Instant::now();
        let mut n = 0;
        let r = p
            .call_async_with(&hooks, || {
                n += 1;
                let n = n;
                async move { if n < 3 { Err("boom") } else { Ok(n) } }
            })
            .await;
        assert_eq!(r, Ok(3));
        let delays = delays.into_inner().unwrap();
        assert_eq!(delays, [ms(100), ms(200)]);
        assert_eq!(start.elapsed(), delays.iter().sum::<Duration>());
    }

    #[tokio::test(start_paused = true)]
    async fn run_async_waits_rate_limit_hints_and_stops_at_open_circuits() {
        let p = async_policy(5);
        let start = Instant::now();
        let mut faults = vec![
            Fault::Rejected(Error::circuit_open("c", secs(30))),
            Fault::Rejected(Error::rate_limited("rl", secs(3))),
        ];
        let r: Result<(), Fault<&str>> = p
            .run_async(&DefaultHooks, || {
                let next = faults.pop();
                async move {
                    tokio::time::sleep(Duration::ZERO).await;
                    match next {
                        Some(f) => Err(f),
                        None => Ok(()),
                    }
                }
            })
            .await;
        assert!(matches!(r, Err(Fault::Rejected(Error::CircuitOpen { .. }))));
        assert_eq!(start.elapsed(), secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn max_elapsed_follows_tokio_time() {
        let p = async_policy_with(100, Backoff::constant(secs(1)));
        let p = p.to_builder().max_elapsed(ms(3500)).build().unwrap();
        let start = Instant::now();
        let mut calls = 0;
        let r: Result<(), ()> = p
            .call_async(|| {
                calls += 1;
                async { Err(()) }
            })
            .await;
        assert_eq!(r, Err(()));
        assert_eq!(calls, 4);
        assert_eq!(start.elapsed(), secs(3));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn call_async_future_is_send_and_can_be_spawned() {
        let p = async_policy_with(3, Backoff::constant(Duration::ZERO));
        let calls = Arc::new(AtomicU32::new(0));
        let mut handles = Vec::new();
        for _ in 0..16 {
            let p = p.clone();
            let calls = calls.clone();
            handles.push(tokio::spawn(async move {
                p.call_async_with(&Classified, || {
                    let calls = calls.clone();
                    async move {
                        let n = calls.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                        if n.is_multiple_of(2) {
                            Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
                        } else {
                            Ok(n)
                        }
                    }
                })
                .await
                .is_ok()
            }));
        }
        for h in handles {
            let _ = h.await.unwrap();
        }
        assert!(calls.load(Ordering::Relaxed) >= 16);
        let rp = p.clone();
        let run = tokio::spawn(async move {
            rp.run_async(&DefaultHooks, || async { Err::<(), _>(Fault::Inner("x")) }).await
        });
        assert_eq!(run.await.unwrap(), Err(Fault::Inner("x")));
    }
}

mod tracing_events {
    use super::*;
    use std::collections::BTreeMap;
    use std::fmt::Debug;
    use std::sync::Mutex;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    type Fields = BTreeMap<String, String>;

    /// A subscriber that keeps every event's level and fields.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<(Level, Fields)>>>);

    struct Visitor<'a>(&'a mut Fields);

    impl Visit for Visitor<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }

        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields::new();
            event.record(&mut Visitor(&mut fields));
            self.0.lock().unwrap().push((*event.metadata().level(), fields));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    fn at_level(capture: &Capture, level: Level) -> Vec<Fields> {
        let events = capture.0.lock().unwrap();
        events.iter().filter(|(l, _)| *l == level).map(|(_, f)| f.clone()).collect()
    }

    fn warnings(capture: &Capture) -> Vec<Fields> {
        at_level(capture, Level::WARN)
    }

    #[test]
    fn each_retry_is_a_debug_event_and_giving_up_is_the_one_warning() {
        let capture = Capture::default();
        let (p, _) = policy(3);
        let p = p.to_builder().name("fetch-orders").build().unwrap();
        tracing::subscriber::with_default(capture.clone(), || {
            let _ = p.call(|| Err::<(), _>("boom"));
        });
        let retries: Vec<Fields> = at_level(&capture, Level::DEBUG)
            .into_iter()
            .filter(|f| f["message"] == "retrying after a failure")
            .collect();
        assert_eq!(retries.len(), 2, "{retries:?}");
        for (r, (attempt, delay)) in retries.iter().zip([("1", "100ms"), ("2", "200ms")]) {
            assert_eq!(r["name"], "fetch-orders");
            assert_eq!(r["attempt"], attempt);
            assert_eq!(r["max_attempts"], "3");
            assert_eq!(r["error"], "\"boom\"");
            assert_eq!(r["delay"], delay);
        }
        let warns = warnings(&capture);
        assert_eq!(warns.len(), 1, "one warning per failed call, none per attempt: {warns:?}");
        assert_eq!(warns[0]["name"], "fetch-orders");
        assert_eq!(warns[0]["attempts"], "3");
        assert_eq!(warns[0]["reason"], "attempts_exhausted");
        assert!(warns[0]["message"].contains("giving up"));
    }

    #[test]
    fn a_success_after_retries_warns_nothing() {
        let capture = Capture::default();
        let (p, _) = policy(3);
        let calls = AtomicU32::new(0);
        tracing::subscriber::with_default(capture.clone(), || {
            let r = p.call(|| {
                if calls.fetch_add(1, Ordering::Relaxed) < 2 { Err("flaky") } else { Ok(()) }
            });
            assert_eq!(r, Ok(()));
        });
        assert_eq!(warnings(&capture), Vec::<Fields>::new());
        assert_eq!(at_level(&capture, Level::DEBUG).len(), 2);
    }

    #[test]
    fn a_circuit_opening_is_a_warning() {
        use crate::circuit::{CircuitBreaker, CircuitBreakerConfig};
        let capture = Capture::default();
        let config = CircuitBreakerConfig::builder().failure_threshold(1).build().unwrap();
        let breaker = CircuitBreaker::new("payments-api", config);
        tracing::subscriber::with_default(capture.clone(), || {
            let _ = breaker.call(|| Err::<(), Error>(Error::timeout(ms(10))));
        });
        let events = capture.0.lock().unwrap();
        let opened: Vec<&(Level, Fields)> =
            events.iter().filter(|(_, f)| f["message"] == "circuit opened").collect();
        assert_eq!(opened.len(), 1, "{events:?}");
        assert_eq!(opened[0].0, Level::WARN);
        assert_eq!(opened[0].1["name"], "payments-api");
        assert_eq!(opened[0].1["to"], "open");
        assert!(events.iter().all(|(l, _)| *l != Level::ERROR), "{events:?}");
    }

    #[test]
    fn an_exhausted_budget_warns_with_the_budget_name() {
        let capture = Capture::default();
        let budget = ten_percent_budget("payments", &ManualClock::new());
        let (p, _) = policy(3);
        let p = p.to_builder().name("charge").budget(budget).build().unwrap();
        tracing::subscriber::with_default(capture.clone(), || {
            let _ = p.call(|| Err::<(), _>("down"));
        });
        let warns = warnings(&capture);
        assert_eq!(warns.len(), 1, "{warns:?}");
        assert_eq!(warns[0]["name"], "charge");
        assert_eq!(warns[0]["budget"], "payments");
        assert!(warns[0]["message"].contains("retry budget exhausted"));
    }
}
