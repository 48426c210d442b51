//! Timed blocking calls run on a bounded pool of worker threads: calls that time out and
//! never return use the workers up, then further calls are refused at once with
//! `Error::BlockingPoolFull` instead of starting a thread each. One test in this file, so
//! that no other test shares the process-wide pool.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use resilience::Error;
use resilience::timeout::{
    blocking_workers, call_blocking, max_blocking_workers, set_max_blocking_workers,
};

/// The threads of this process named as the pool names its workers (Linux only; the
/// kernel keeps the first 15 bytes of a thread's name).
fn pool_threads() -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    Some(
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim_end() == &"resilience-timeout"[..15])
            .count(),
    )
}

#[test]
fn ten_thousand_timed_out_blocking_calls_leave_at_most_the_pool_maximum_of_threads() {
    assert_eq!(max_blocking_workers(), 64, "the default");
    assert!(matches!(set_max_blocking_workers(0), Err(e) if e.field() == "max_blocking_workers"));

    // Every call blocks until the test releases the gate. A zero limit times each one out
    // without waiting (the worker has not answered yet): no real time is measured.
    let gate = Arc::new(RwLock::new(()));
    let closed = gate.write().expect("not poisoned");
    let (mut timed_out, mut refused) = (0, 0);
    for _ in 0..10_000 {
        let gate = gate.clone();
        match call_blocking(Duration::ZERO, move || drop(gate.read())) {
            Err(Error::Timeout { .. }) => timed_out += 1,
            Err(Error::BlockingPoolFull { workers, .. }) => {
                assert_eq!(workers, 64);
                refused += 1;
            }
            other => panic!("a call through a closed gate cannot succeed: {other:?}"),
        }
    }
    assert_eq!((timed_out, refused), (64, 10_000 - 64), "64 stuck workers, then refusals");
    assert_eq!(blocking_workers(), 64);
    if let Some(threads) = pool_threads() {
        assert_eq!(threads, 64, "threads left behind by 10 000 timed-out calls");
    }
    let e = Error::blocking_pool_full(64).to_string();
    assert!(e.contains("exhausted") && e.contains("64 workers are busy"), "{e}");

    // Released, the stuck workers finish and take the next calls: no new thread.
    drop(closed);
    let answered = loop {
        match call_blocking(Duration::MAX, || 42) {
            // A worker that just finished may not have reported itself idle yet.
            Err(Error::BlockingPoolFull { .. }) => std::thread::yield_now(),
            other => break other,
        }
    };
    assert_eq!(answered, Ok(42));
    for i in 0..1_000 {
        assert_eq!(call_blocking(Duration::MAX, move || i), Ok(i));
    }
    assert_eq!(blocking_workers(), 64, "the workers are reused");

    // A lowered maximum: the extra workers exit as they finish their next call.
    set_max_blocking_workers(4).expect("valid");
    assert_eq!(max_blocking_workers(), 4);
    let gate = Arc::new(RwLock::new(()));
    let closed = gate.write().expect("not poisoned");
    let mut refused = 0;
    for _ in 0..100 {
        let gate = gate.clone();
        if let Err(Error::BlockingPoolFull { .. }) =
            call_blocking(Duration::ZERO, move || drop(gate.read()))
        {
            refused += 1;
        }
    }
    assert!(refused > 0, "64 idle workers took calls; the pool refuses once they are stuck");
    drop(closed);
    while blocking_workers() > 4 {
        // The surplus workers exit once their call returns; others may stay idle.
        let _ = call_blocking(Duration::MAX, || ());
    }
    assert!(blocking_workers() <= 4);
}
