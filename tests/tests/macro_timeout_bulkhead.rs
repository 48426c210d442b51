//! `#[timeout]` and `#[bulkhead]` as a user writes them.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use resilience::{Error, bulkhead, registry, timeout};
use tokio::time::Instant;

#[derive(Debug, PartialEq)]
enum AppError {
    Resilience(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Resilience(e)
    }
}

struct DropFlag<'a>(&'a AtomicBool);

impl Drop for DropFlag<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[timeout(2s)]
async fn slow(work: Duration, dropped: &AtomicBool) -> Result<u32, AppError> {
    let _guard = DropFlag(dropped);
    tokio::time::sleep(work).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn an_async_timeout_fires_at_exactly_the_limit_and_drops_the_body() {
    let dropped = AtomicBool::new(false);
    let start = Instant::now();
    let r = slow(Duration::from_secs(5), &dropped).await;
    assert_eq!(r, Err(AppError::Resilience(Error::timeout(Duration::from_secs(2)))));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(dropped.load(Ordering::SeqCst), "the timed-out body was cancelled");

    let start = Instant::now();
    assert_eq!(slow(Duration::from_millis(1500), &AtomicBool::new(false)).await, Ok(1));
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
}

#[timeout(duration = 1ms)]
fn blocked(rx: mpsc::Receiver<u32>) -> Result<u32, AppError> {
    Ok(rx.recv().unwrap_or(0))
}

#[timeout(10s)]
fn quick(x: u32) -> Result<u32, AppError> {
    Ok(x * 2)
}

#[test]
fn a_sync_timeout_returns_at_the_deadline_and_lets_fast_calls_through() {
    // The one place real time passes: a worker blocked on a channel nobody sends to.
    let (_tx, rx) = mpsc::channel();
    assert_eq!(blocked(rx), Err(AppError::Resilience(Error::timeout(Duration::from_millis(1)))));
    assert_eq!(quick(21), Ok(42));
}

#[bulkhead(name = "macro-bulkhead-reject", max_concurrent = 2)]
async fn guarded(in_flight: &AtomicU32, peak: &AtomicU32) -> Result<(), AppError> {
    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    in_flight.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_rejects_at_once() {
    let (in_flight, peak) = (AtomicU32::new(0), AtomicU32::new(0));
    let (a, b, c) = tokio::join!(
        guarded(&in_flight, &peak),
        guarded(&in_flight, &peak),
        guarded(&in_flight, &peak)
    );
    let results = [a, b, c];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
    assert!(results.iter().any(|r| matches!(
        r,
        Err(AppError::Resilience(Error::BulkheadFull { max_concurrent: 2, .. }))
    )));
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    let stats = registry().bulkheads().stats("macro-bulkhead-reject").unwrap();
    assert_eq!((stats.rejected, stats.in_flight), (1, 0));
}

#[bulkhead(max_concurrent = 1, max_wait = 5s)]
async fn serialized(in_flight: &AtomicU32, peak: &AtomicU32) -> Result<(), AppError> {
    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    in_flight.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn waiters_get_the_permit_when_it_is_released() {
    let (in_flight, peak) = (AtomicU32::new(0), AtomicU32::new(0));
    let start = Instant::now();
    let (a, b, c) = tokio::join!(
        serialized(&in_flight, &peak),
        serialized(&in_flight, &peak),
        serialized(&in_flight, &peak)
    );
    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[bulkhead(name = "macro-bulkhead-threads", max_concurrent = 3)]
fn threaded(in_flight: &AtomicU32, peak: &AtomicU32) -> Result<(), AppError> {
    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    peak.fetch_max(now, Ordering::SeqCst);
    std::hint::spin_loop();
    in_flight.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

#[test]
fn many_threads_never_exceed_the_limit() {
    let (in_flight, peak) = (AtomicU32::new(0), AtomicU32::new(0));
    let rejected = AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..1_000 {
                    if threaded(&in_flight, &peak).is_err() {
                        rejected.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert!(peak.load(Ordering::SeqCst) <= 3);
    let stats = registry().bulkheads().stats("macro-bulkhead-threads").unwrap();
    assert_eq!(stats.completed + stats.rejected, 8_000);
    assert_eq!(stats.rejected, u64::from(rejected.load(Ordering::SeqCst)));
}
