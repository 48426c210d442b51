//! Many threads on one circuit breaker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Barrier};
use std::time::Duration;

use resilience::Error;
use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitState, Window};
use resilience::clock::ManualClock;

#[test]
fn half_open_admits_exactly_k_probes_under_contention() {
    const K: u32 = 3;
    let clock = ManualClock::new();
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(1))
        .half_open_max_calls(K)
        .success_threshold(K)
        .build()
        .unwrap();
    let b = Arc::new(CircuitBreaker::with_clock("cc-probes", config, clock.shared()));
    b.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(1));

    let threads = 16;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let b = b.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut admitted = 0u32;
                let mut held = Vec::new();
                for _ in 0..200 {
                    // Permits are held, never released, so the limit is never freed.
                    if let Ok(p) = b.try_acquire() {
                        admitted += 1;
                        held.push(p);
                    }
                }
                barrier.wait(); // everyone still holds their permits here
                drop(held);
                admitted
            })
        })
        .collect();
    let admitted: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(admitted, K);
    let s = b.stats();
    assert_eq!(s.state, CircuitState::HalfOpen);
    assert_eq!(s.rejections, u64::from(threads as u32 * 200 - K));
    // The dropped probes freed their slots.
    for _ in 0..K {
        b.try_acquire().unwrap().success();
    }
    assert_eq!(b.state(), CircuitState::Closed);
}

fn hammer(name: &str, config: CircuitBreakerConfig) {
    const THREADS: u64 = 8;
    const CALLS: u64 = 10_000;
    let clock = ManualClock::new();
    let b = Arc::new(CircuitBreaker::with_clock(name, config, clock.shared()));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let b = b.clone();
            let clock = clock.clone();
            std::thread::spawn(move || {
                for i in 0..CALLS {
                    if t == 0 && i % 500 == 0 {
                        clock.advance(Duration::from_millis(50));
                    }
                    // Mostly failures in bursts so the circuit keeps tripping and healing.
                    let fail = (i / 64 + t) % 3 != 0;
                    let _: Result<(), Error> = b.call(|| {
                        if fail { Err(Error::timeout(Duration::from_secs(1))) } else { Ok(()) }
                    });
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = b.stats();
    assert_eq!(s.calls + s.rejections, THREADS * CALLS, "{s:?}");
    assert_eq!(s.calls, s.successes + s.failures + s.ignored);
    assert!(s.transitions > 0 && s.rejections > 0 && s.successes > 0, "{s:?}");
    // No leaked probe slots: once open periods pass, probes get through and close it.
    clock.advance(Duration::from_secs(10));
    b.reset();
    b.try_acquire().unwrap().success();
}

#[test]
fn eight_threads_consecutive_stats_stay_consistent() {
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(20)
        .recovery_timeout(Duration::from_millis(100))
        .half_open_max_calls(4)
        .success_threshold(2)
        .build()
        .unwrap();
    hammer("cc-consecutive", config);
}

#[test]
fn eight_threads_count_window_stats_stay_consistent() {
    let config = CircuitBreakerConfig::builder()
        .failure_rate(0.5)
        .window(Window::calls(100))
        .min_calls(50)
        .recovery_timeout(Duration::from_millis(100))
        .half_open_max_calls(4)
        .build()
        .unwrap();
    hammer("cc-count-window", config);
}

#[test]
fn eight_threads_time_window_stats_stay_consistent() {
    let config = CircuitBreakerConfig::builder()
        .failure_rate(0.5)
        .window(Window::duration(Duration::from_secs(1)))
        .min_calls(50)
        .recovery_timeout(Duration::from_millis(100))
        .half_open_max_calls(4)
        .build()
        .unwrap();
    hammer("cc-time-window", config);
}

#[test]
fn probe_slots_never_leak_while_the_circuit_cycles() {
    // Threads take probes and succeed, fail or drop them while the circuit cycles between
    // open and half-open; afterwards exactly K probes are admitted again.
    const K: u32 = 2;
    let clock = ManualClock::new();
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_millis(1))
        .half_open_max_calls(K)
        .success_threshold(10_000)
        .build()
        .unwrap();
    let b = Arc::new(CircuitBreaker::with_clock("cc-cycling", config, clock.shared()));
    b.try_acquire().unwrap().failure();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let b = b.clone();
            let clock = clock.clone();
            std::thread::spawn(move || {
                for i in 0..5_000u32 {
                    if t == 0 && i % 10 == 0 {
                        clock.advance(Duration::from_millis(1));
                    }
                    if let Ok(p) = b.try_acquire() {
                        match i % 11 {
                            0 => p.failure(), // re-opens a half-open circuit
                            1..=3 => p.success(),
                            _ => drop(p),
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = b.stats();
    assert!(s.transitions > 10, "{s:?}");
    assert_eq!(s.calls + s.rejections, 8 * 5_000 + 1);
    clock.advance(Duration::from_millis(1));
    let held: Vec<_> = (0..10).filter_map(|_| b.try_acquire().ok()).collect();
    // Every failure re-opened it before 10 000 successes, and the last open period is
    // over, so it is half-open with all K slots free.
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert_eq!(held.len(), K as usize);
}
