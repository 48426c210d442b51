//! Guarantee: when the breaker turns half-open under 64 concurrent callers (threads, and
//! tokio tasks), exactly `half_open_max_calls` probes reach the service, the others are
//! rejected with `CircuitOpen`; a cancelled probe gives its slot back.
//!
//! Real threads for the concurrency, simulated time (`ManualClock`) for the recovery.
//! `cargo test -p resilience-tests --test guarantee_half_open -- --nocapture`

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use resilience::circuit::{CircuitBreakerConfig, CircuitState};
use resilience::clock::ManualClock;
use resilience::{CircuitBreaker, Error};

const CALLERS: u64 = 64;
const RECOVERY: Duration = Duration::from_secs(30);

/// A breaker tripped open whose recovery period has just elapsed.
fn half_open_ready(name: &str, probes: u32) -> (Arc<CircuitBreaker>, ManualClock) {
    let clock = ManualClock::new();
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(RECOVERY)
        .half_open_max_calls(probes)
        .success_threshold(probes)
        .build()
        .unwrap();
    let breaker = Arc::new(CircuitBreaker::with_clock(name, config, clock.shared()));
    let _ = breaker.call(|| Err::<(), _>(Error::timeout(Duration::from_secs(1))));
    assert_eq!(breaker.state(), CircuitState::Open);
    clock.advance(RECOVERY);
    (breaker, clock)
}

fn wait_until(done: impl Fn() -> bool) {
    while !done() {
        std::thread::yield_now();
    }
}

#[test]
fn sixty_four_threads_exactly_half_open_max_calls_probes_reach_the_service() {
    for probes in [1_u32, 4, 16] {
        let (breaker, _clock) = half_open_ready(&format!("half-open-threads-{probes}"), probes);
        let reached = Arc::new(AtomicU64::new(0));
        let rejected = Arc::new(AtomicU64::new(0));
        let start = Arc::new(Barrier::new(CALLERS as usize));
        let handles: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (b, reached, rejected, start) =
                    (breaker.clone(), reached.clone(), rejected.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let r = b.call(|| {
                        reached.fetch_add(1, Ordering::SeqCst);
                        // Hold the probe slot until every other caller has been turned away.
                        wait_until(|| {
                            reached.load(Ordering::SeqCst) + rejected.load(Ordering::SeqCst)
                                == CALLERS
                        });
                        Ok::<_, Error>(())
                    });
                    if let Err(e) = r {
                        assert!(matches!(e, Error::CircuitOpen { .. }), "{e:?}");
                        rejected.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let (reached, rejected) = (reached.load(Ordering::SeqCst), rejected.load(Ordering::SeqCst));
        println!(
            "half-open, {CALLERS} threads, half_open_max_calls {probes}: {reached} probes reached the service, {rejected} rejected"
        );
        assert_eq!(reached, u64::from(probes));
        assert_eq!(rejected, CALLERS - u64::from(probes));
        assert_eq!(breaker.state(), CircuitState::Closed, "all probes succeeded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_exactly_half_open_max_calls_probes_reach_the_service() {
    for probes in [1_u32, 4, 16] {
        let (breaker, _clock) = half_open_ready(&format!("half-open-tasks-{probes}"), probes);
        let reached = Arc::new(AtomicU64::new(0));
        let rejected = Arc::new(AtomicU64::new(0));
        let all_tried = Arc::new(tokio::sync::Notify::new());
        let start = Arc::new(tokio::sync::Barrier::new(CALLERS as usize));
        let tasks: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (b, reached, rejected, all_tried, start) = (
                    breaker.clone(),
                    reached.clone(),
                    rejected.clone(),
                    all_tried.clone(),
                    start.clone(),
                );
                tokio::spawn(async move {
                    start.wait().await;
                    let r = b
                        .call_async(|| async {
                            reached.fetch_add(1, Ordering::SeqCst);
                            loop {
                                let notified = all_tried.notified();
                                if reached.load(Ordering::SeqCst) + rejected.load(Ordering::SeqCst)
                                    == CALLERS
                                {
                                    break;
                                }
                                notified.await;
                            }
                            all_tried.notify_waiters();
                            Ok::<_, Error>(())
                        })
                        .await;
                    if let Err(e) = r {
                        assert!(matches!(e, Error::CircuitOpen { .. }), "{e:?}");
                        rejected.fetch_add(1, Ordering::SeqCst);
                        all_tried.notify_waiters();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let (reached, rejected) = (reached.load(Ordering::SeqCst), rejected.load(Ordering::SeqCst));
        println!(
            "half-open, {CALLERS} tokio tasks, half_open_max_calls {probes}: {reached} probes reached the service, {rejected} rejected"
        );
        assert_eq!(reached, u64::from(probes));
        assert_eq!(rejected, CALLERS - u64::from(probes));
        assert_eq!(breaker.state(), CircuitState::Closed);
    }
}

#[tokio::test]
async fn cancelling_a_probe_future_returns_its_permit() {
    let (breaker, _clock) = half_open_ready("half-open-cancel", 1);
    let mut probe = Box::pin(breaker.call_async(std::future::pending::<Result<(), Error>>));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(probe.as_mut().poll(&mut cx).is_pending(), "the probe is in flight");
    let blocked = breaker.call(|| Ok::<_, Error>("must not run"));
    assert!(matches!(blocked, Err(Error::CircuitOpen { .. })), "the only slot is taken");
    drop(probe); // cancelled mid-call
    let mut ran = false;
    let next = breaker.call(|| {
        ran = true;
        Ok::<_, Error>(())
    });
    assert!(next.is_ok() && ran, "the slot came back");
    assert_eq!(breaker.stats().ignored, 1, "the cancelled probe counts as ignored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aborting_sixty_four_probe_tasks_leaks_no_slot() {
    let probes = 4;
    let (breaker, _clock) = half_open_ready("half-open-abort", probes);
    let reached = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (b, reached) = (breaker.clone(), reached.clone());
            tokio::spawn(async move {
                b.call_async(|| async {
                    reached.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<Result<(), Error>>().await
                })
                .await
            })
        })
        .collect();
    // The probes hang forever; the other callers return CircuitOpen.
    while reached.load(Ordering::SeqCst) < u64::from(probes) {
        tokio::task::yield_now().await;
    }
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    assert_eq!(reached.load(Ordering::SeqCst), u64::from(probes));
    // Every slot is free again: `probes` new callers all get through and close it.
    for _ in 0..probes {
        assert!(breaker.call(|| Ok::<_, Error>(())).is_ok());
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
}
