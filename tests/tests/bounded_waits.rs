//! Every wait is bounded by default: a limiter in `Wait` or `Queue` mode refuses at once,
//! with its `retry_after`, a call whose permit is further away than `max_wait`, instead
//! of sleeping through it; presets carry their own bounds.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use resilience::backoff::{Backoff, Jitter};
use resilience::bulkhead::{Bulkhead, BulkheadConfig};
use resilience::clock::{Clock, ManualClock};
use resilience::presets::Preset;
use resilience::rate_limit::{
    DEFAULT_MAX_WAIT, OnLimit, RateLimitConfig, RateLimitConfigBuilder, RateLimiter,
};
use resilience::retry::{DefaultHooks, RetryPolicy};
use resilience::{Error, Pipeline};
use tokio::time::Instant;

fn retry_after(r: &Result<(), Error>) -> Option<Duration> {
    match r {
        Err(Error::RateLimited { retry_after, .. }) => Some(*retry_after),
        _ => None,
    }
}

fn built(b: RateLimitConfigBuilder) -> RateLimitConfig {
    b.build().unwrap_or_else(|e| unreachable!("{e}"))
}

#[test]
fn the_default_max_wait_is_ten_seconds_and_bulkheads_do_not_wait() {
    assert_eq!(DEFAULT_MAX_WAIT, Duration::from_secs(10));
    let c = built(RateLimitConfig::builder().per_second(1));
    assert_eq!((c.on_limit(), c.max_wait()), (OnLimit::Wait, DEFAULT_MAX_WAIT));
    let b = BulkheadConfig::builder().build().unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(b.max_wait(), Duration::ZERO);
}

#[test]
fn a_default_blocking_limiter_refuses_a_longer_wait_without_sleeping() {
    let clock = ManualClock::new();
    let c = built(RateLimitConfig::builder().per_minute(1).burst(1));
    let l = RateLimiter::with_clock("default-wait", c, clock.shared());
    assert_eq!(l.acquire(1), Ok(()));
    // The next permit is a minute away: six times the default bound.
    let r = l.acquire(1);
    assert_eq!(retry_after(&r), Some(Duration::from_secs(60)));
    assert_eq!(clock.sleeps(), Vec::<Duration>::new(), "refused without sleeping");
    assert_eq!(clock.now(), Duration::ZERO);
    // Nothing was consumed: 50 s later the permit is exactly the bound away, and waited for.
    clock.advance(Duration::from_secs(50));
    assert_eq!(l.acquire(1), Ok(()));
    assert_eq!(clock.sleeps(), vec![DEFAULT_MAX_WAIT]);
    let s = l.stats();
    assert_eq!((s.granted, s.waited, s.rejected), (2, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_default_async_limiter_under_overload_refuses_the_caller_past_the_bound_at_once() {
    let c = built(RateLimitConfig::builder().per_second(1).burst(1));
    let l = Rc::new(RateLimiter::new("default-wait-async", c));
    let start = Instant::now();
    assert_eq!(l.acquire_async(1).await, Ok(()));
    // Ten callers reserve the slots 1 s .. 10 s away: each within the bound.
    let local = tokio::task::LocalSet::new();
    let mut waiters = Vec::new();
    for _ in 0..10 {
        let l = l.clone();
        waiters.push(local.spawn_local(async move {
            let r = l.acquire_async(1).await;
            (r, start.elapsed())
        }));
    }
    local
        .run_until(async {
            tokio::task::yield_now().await;
            assert_eq!(l.stats().waiting, 10);
            // The next slot is 11 s away: refused now, with that wait as retry_after.
            let r = l.acquire_async(1).await;
            assert_eq!(retry_after(&r), Some(Duration::from_secs(11)));
            assert_eq!(start.elapsed(), Duration::ZERO, "refused without sleeping");
            let mut done = Vec::new();
            for w in waiters {
                done.push(w.await.unwrap_or_else(|e| unreachable!("{e}")));
            }
            let secs: Vec<_> = (1..=10).map(|s| (Ok(()), Duration::from_secs(s))).collect();
            assert_eq!(done, secs);
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn every_preset_bounds_the_wait_for_a_permit() {
    let s = Duration::from_secs;
    for p in Preset::ALL {
        let c = p.config().rate_limit.unwrap_or_else(|| unreachable!("{p}: no rate limit"));
        assert_eq!(c.on_limit(), OnLimit::Wait, "{p}");
        let expected = match p {
            Preset::Database | Preset::Postgres | Preset::Development => s(5),
            Preset::Api | Preset::File => s(10),
            _ => s(30),
        };
        assert_eq!(c.max_wait(), expected, "{p}");
        let timeout = p.config().timeout.unwrap_or_else(|| unreachable!("{p}: no timeout"));
        assert!(c.max_wait() <= timeout, "{p}: the wait fits in an attempt's time");
        // Overload: callers keep coming at once; every one either goes within the
        // bound or is refused at once with a retry_after past it.
        let l = Rc::new(RateLimiter::new(format!("preset-{p}"), c.clone()));
        let start = Instant::now();
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let mut waiters = Vec::new();
                let refused = loop {
                    let l2 = l.clone();
                    let task = tokio::task::spawn_local(async move { l2.acquire_async(1).await });
                    tokio::task::yield_now().await;
                    if !task.is_finished() {
                        waiters.push(task);
                        continue;
                    }
                    let r = task.await.unwrap_or_else(|e| unreachable!("{e}"));
                    if let Some(after) = retry_after(&r) {
                        break after;
                    }
                    assert_eq!(r, Ok(()), "{p}");
                };
                assert_eq!(start.elapsed(), Duration::ZERO, "{p}: refused at once");
                assert!(refused > c.max_wait(), "{p}: refused only past the bound ({refused:?})");
                let interval = c.rate().interval();
                let most = c.max_wait().as_nanos() / interval.as_nanos();
                assert_eq!(
                    u128::from(l.stats().waiting),
                    most,
                    "{p}: as many waiters as the bound allows, no more"
                );
                for w in waiters {
                    assert_eq!(w.await.unwrap_or_else(|e| unreachable!("{e}")), Ok(()), "{p}");
                }
                let last = start.elapsed();
                assert!(last <= c.max_wait() && last + interval > c.max_wait(), "{p}: {last:?}");
            })
            .await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_queue_limiter_holds_at_most_max_queue_waiters_and_refuses_the_rest_at_once() {
    let c = built(
        RateLimitConfig::builder().per_second(1).burst(1).on_limit(OnLimit::Queue).max_queue(3),
    );
    let l = Rc::new(RateLimiter::new("queue-bound", c));
    let start = Instant::now();
    let local = tokio::task::LocalSet::new();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let l = l.clone();
        tasks.push(local.spawn_local(async move {
            let r = l.acquire_async(1).await;
            (r, start.elapsed())
        }));
    }
    local
        .run_until(async {
            tokio::task::yield_now().await;
            assert_eq!(l.stats().waiting, 3);
            let mut results = Vec::new();
            for t in tasks {
                results.push(t.await.unwrap_or_else(|e| unreachable!("{e}")));
            }
            let granted: Vec<Duration> =
                results.iter().filter(|(r, _)| r.is_ok()).map(|(_, at)| *at).collect();
            let s = Duration::from_secs;
            assert_eq!(granted, vec![s(0), s(1), s(2), s(3)]);
            let refused: Vec<_> = results.iter().filter(|(r, _)| r.is_err()).collect();
            assert_eq!(refused.len(), 6);
            for (r, at) in refused {
                assert_eq!(*at, Duration::ZERO, "a full queue refuses at once");
                assert!(retry_after(r).is_some_and(|d| d > Duration::ZERO), "{r:?}");
            }
        })
        .await;
    assert_eq!(l.stats().rejected, 6);
}

/// 1000 callers arrive at 100 per second against a default limiter of 10 per second
/// (burst 10): ten times its rate. No caller waits longer than the default bound of 10 s,
/// at most 100 (10 s × 10/s) wait at once, and every other caller is refused on arrival
/// with a `retry_after` past the bound.
#[tokio::test(start_paused = true)]
async fn overload_at_ten_times_the_rate_keeps_every_wait_within_the_bound() {
    let c = built(RateLimitConfig::builder().per_second(10).burst(10));
    let l = Rc::new(RateLimiter::new("overload", c));
    let local = tokio::task::LocalSet::new();
    let peak = Rc::new(Cell::new(0u64));
    let mut tasks = Vec::new();
    local
        .run_until(async {
            for _ in 0..1000 {
                let l2 = l.clone();
                let peak2 = peak.clone();
                tasks.push(tokio::task::spawn_local(async move {
                    let arrived = Instant::now();
                    let r = l2.acquire_async(1).await;
                    peak2.set(peak2.get().max(l2.stats().waiting));
                    (r, arrived.elapsed())
                }));
                tokio::task::yield_now().await;
                peak.set(peak.get().max(l.stats().waiting));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut longest = Duration::ZERO;
            let (mut granted, mut refused) = (0, 0);
            for t in tasks {
                let (r, waited) = t.await.unwrap_or_else(|e| unreachable!("{e}"));
                match r {
                    Ok(()) => {
                        granted += 1;
                        longest = longest.max(waited);
                    }
                    Err(ref e) => {
                        refused += 1;
                        assert_eq!(waited, Duration::ZERO, "refused on arrival: {e:?}");
                        assert!(retry_after(&r).is_some_and(|d| d > DEFAULT_MAX_WAIT), "{e:?}");
                    }
                }
            }
            assert_eq!(longest, DEFAULT_MAX_WAIT, "the longest wait is the bound, no more");
            // The burst, the refill over the 10 s of arrivals (the last at 9.99 s) and the
            // 100 reservations the bound allows ahead: 10 + 99 + 100.
            assert_eq!((granted, refused), (209, 791));
            assert_eq!(peak.get(), 100, "at most 10 s × 10/s wait at once");
        })
        .await;
}

#[resilience::rate_limit(name = "bounded-waits-attribute", per_minute = 1, burst = 1)]
async fn limited_by_attribute() -> Result<(), Error> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_attribute_without_max_wait_refuses_a_wait_past_the_default_bound_at_once() {
    assert_eq!(limited_by_attribute().await, Ok(()));
    let start = Instant::now();
    // The next permit is a minute away: past the default 10 s, refused without sleeping.
    let r = limited_by_attribute().await;
    assert_eq!(retry_after(&r), Some(Duration::from_secs(60)));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

/// The whole stack under ten times its rate for a minute (tokio's paused clock): callers
/// arrive at 100 per second against a limiter of 10 per second, through a pipeline with a
/// 4 s deadline (retry of up to 3 attempts, 500 ms apart; 2 s max wait for a permit; a
/// bulkhead of 5 slots with 1 s max wait; 1 s timeout per attempt) around a service
/// taking 100 ms. No caller waits longer than its deadline, and the callers waiting at
/// once stay bounded: at most `rate × max_wait` for a permit. As in the presets, the max
/// wait for a permit is well below the deadline, so that a caller that waited still has
/// time for its attempt.
#[tokio::test(start_paused = true)]
async fn ten_times_overload_for_a_minute_keeps_every_caller_within_its_deadline() {
    let deadline = Duration::from_secs(4);
    let limit =
        RateLimitConfig::builder().per_second(10).burst(10).max_wait(Duration::from_secs(2));
    let limiter = Arc::new(RateLimiter::new("overload-deadline", built(limit)));
    let slots = BulkheadConfig::builder().max_concurrent(5).max_wait(Duration::from_secs(1));
    let slots = slots.build().unwrap_or_else(|e| unreachable!("{e}"));
    let bulkhead = Arc::new(Bulkhead::new("overload-deadline", slots));
    let retry = RetryPolicy::builder()
        .max_attempts(3)
        .backoff(Backoff::constant(Duration::from_millis(500)).with_jitter(Jitter::None))
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let pipeline = Rc::new(
        Pipeline::new()
            .with_retry(retry)
            .with_rate_limiter(limiter.clone())
            .with_bulkhead(bulkhead.clone())
            .with_timeout(Duration::from_secs(1))
            .with_deadline(deadline)
            .unwrap_or_else(|e| unreachable!("{e}")),
    );
    let in_flight = Rc::new(Cell::new(0u64));
    let (mut peak_callers, mut peak_permit, mut peak_slot) = (0u64, 0u64, 0u64);
    let local = tokio::task::LocalSet::new();
    let mut tasks = Vec::new();
    let start = Instant::now();
    local
        .run_until(async {
            for _ in 0..6000 {
                let (p, n) = (pipeline.clone(), in_flight.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    n.set(n.get() + 1);
                    let arrived = Instant::now();
                    let r: Result<(), Error> = p
                        .call_async_with(&DefaultHooks, || async {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Ok(())
                        })
                        .await;
                    n.set(n.get() - 1);
                    (r.is_ok(), arrived.elapsed())
                }));
                tokio::task::yield_now().await;
                peak_callers = peak_callers.max(in_flight.get());
                peak_permit = peak_permit.max(limiter.stats().waiting);
                peak_slot = peak_slot.max(bulkhead.stats().waiting);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut longest = Duration::ZERO;
            let mut ok = 0u32;
            for t in tasks {
                let (succeeded, waited) = t.await.unwrap_or_else(|e| unreachable!("{e}"));
                longest = longest.max(waited);
                ok += u32::from(succeeded);
            }
            println!(
                "10x overload, 60 s: {ok} of 6000 succeeded, longest caller {longest:?} (deadline \
                 {deadline:?}), peak callers {peak_callers}, peak waiting for a permit \
                 {peak_permit}, for a slot {peak_slot}, ended at {:?}",
                start.elapsed()
            );
            assert!(longest <= deadline, "no caller waits past its deadline: {longest:?}");
            assert_eq!(longest, deadline, "the longest caller gives up at its deadline");
            // The burst, 10 permits a second for the minute and the waits ahead: the
            // limiter's rate, not a collapse (a caller that waited has time left).
            assert_eq!(ok, 629);
            // Memory for waiters: at most rate × max_wait wait for a permit (10/s × 2 s),
            // the callers alive at once stay well under arrivals × deadline (400).
            assert_eq!((peak_permit, peak_slot), (20, 5));
            assert_eq!(peak_callers, 210);
        })
        .await;
}
