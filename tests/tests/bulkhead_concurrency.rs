//! Many threads and tasks through one bulkhead never exceed its limit.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::Error;
use resilience::bulkhead::{Bulkhead, BulkheadConfig};

const MAX: u32 = 3;
const WORKERS: usize = 8;
const CALLS: usize = 1000;

/// Tracks how many ops run at once and the highest count seen.
#[derive(Default)]
struct Gauge {
    now: AtomicU32,
    max_seen: AtomicU32,
}

impl Gauge {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_seen.fetch_max(now, Ordering::SeqCst);
    }

    fn exit(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

fn bulkhead() -> Bulkhead {
    // A long bounded wait: every call should get a slot; a lost wake-up would show as a
    // rejection once the wait runs out instead of a hang.
    let config =
        BulkheadConfig::builder().max_concurrent(MAX).max_wait(Duration::from_secs(60)).build();
    Bulkhead::new("shared", config.unwrap())
}

#[test]
fn eight_threads_never_exceed_the_limit() {
    let b = bulkhead();
    let gauge = Gauge::default();
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                for _ in 0..CALLS {
                    let r = b.call(|| {
                        gauge.enter();
                        std::thread::yield_now();
                        gauge.exit();
                        Ok::<_, Error>(())
                    });
                    assert_eq!(r, Ok(()));
                }
            });
        }
    });
    let max_seen = gauge.max_seen.load(Ordering::SeqCst);
    assert!((1..=MAX).contains(&max_seen), "max in flight observed: {max_seen}");
    let stats = b.stats();
    assert_eq!(stats.completed, (WORKERS * CALLS) as u64);
    assert_eq!((stats.in_flight, stats.waiting, stats.rejected), (0, 0, 0));
}

#[test]
fn try_acquire_from_many_threads_never_exceeds_the_limit() {
    let b = bulkhead();
    let gauge = Gauge::default();
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                for _ in 0..CALLS {
                    if let Ok(_permit) = b.try_acquire() {
                        gauge.enter();
                        std::thread::yield_now();
                        gauge.exit();
                    }
                }
            });
        }
    });
    assert!(gauge.max_seen.load(Ordering::SeqCst) <= MAX);
    let stats = b.stats();
    assert_eq!(stats.completed + stats.rejected, (WORKERS * CALLS) as u64);
    assert_eq!(stats.in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_never_exceed_the_limit() {
    let b = Arc::new(bulkhead());
    let gauge = Arc::new(Gauge::default());
    let tasks: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (b, gauge) = (b.clone(), gauge.clone());
            tokio::spawn(async move {
                for _ in 0..CALLS {
                    let r = b
                        .call_async(|| async {
                            gauge.enter();
                            tokio::task::yield_now().await;
                            gauge.exit();
                            Ok::<_, Error>(())
                        })
                        .await;
                    assert_eq!(r, Ok(()));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let max_seen = gauge.max_seen.load(Ordering::SeqCst);
    assert!((1..=MAX).contains(&max_seen), "max in flight observed: {max_seen}");
    let stats = b.stats();
    assert_eq!(stats.completed, (WORKERS * CALLS) as u64);
    assert_eq!((stats.in_flight, stats.waiting, stats.rejected), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_tasks_never_leak_a_slot() {
    let b = Arc::new(bulkhead());
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move {
                let _ = b.call_async(std::future::pending::<Result<(), Error>>).await;
            })
        })
        .collect();
    while b.stats().waiting + u64::from(b.in_flight()) < 64 {
        tokio::task::yield_now().await;
    }
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        assert!(t.await.unwrap_err().is_cancelled());
    }
    let stats = b.stats();
    assert_eq!((stats.in_flight, stats.waiting, stats.rejected), (0, 0, 0));
    // Aborts are not simultaneous: a waiter may take a slot freed by an aborted holder
    // before its own abort lands, so more than MAX permits may have come and gone.
    assert!((u64::from(MAX)..=64).contains(&stats.completed), "completed: {}", stats.completed);
}
