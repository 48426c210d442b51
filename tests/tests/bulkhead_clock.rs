//! A blocking bulkhead wait is timed on the bulkhead's clock.

use std::sync::Arc;
use std::time::Duration;

use resilience::Error;
use resilience::bulkhead::{Bulkhead, BulkheadConfig};
use resilience::clock::ManualClock;

fn bulkhead(clock: &ManualClock) -> Arc<Bulkhead> {
    let config = BulkheadConfig::builder()
        .max_concurrent(1)
        .max_wait(Duration::from_secs(1))
        .build()
        .expect("valid config");
    Arc::new(Bulkhead::with_clock("clocked-bulkhead", config, clock.shared()))
}

/// Spin (yielding, never sleeping) until a thread is inside the bulkhead's wait.
fn until_waiting(b: &Bulkhead) {
    while b.stats().waiting == 0 {
        std::thread::yield_now();
    }
}

#[test]
fn the_deadline_follows_a_manual_clock() {
    let clock = ManualClock::new();
    let b = bulkhead(&clock);
    let held = b.try_acquire().expect("free slot");
    let waiter = {
        let b = b.clone();
        std::thread::spawn(move || b.acquire().map(|_| ()))
    };
    until_waiting(&b);
    clock.advance(Duration::from_millis(1500));
    let result = waiter.join().expect("waiter thread");
    assert!(matches!(result, Err(Error::BulkheadFull { .. })), "{result:?}");
    assert_eq!(b.stats().rejected, 1);
    drop(held);
}

#[test]
fn a_release_before_the_deadline_hands_over_the_slot() {
    let clock = ManualClock::new();
    let b = bulkhead(&clock);
    let held = b.try_acquire().expect("free slot");
    let waiter = {
        let b = b.clone();
        std::thread::spawn(move || b.acquire().map(|_| ()))
    };
    until_waiting(&b);
    clock.advance(Duration::from_millis(900)); // still inside max_wait
    drop(held);
    assert!(waiter.join().expect("waiter thread").is_ok());
    assert_eq!(b.stats().rejected, 0);
}
