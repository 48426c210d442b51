//! Async behaviour of the rate limiters under tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use resilience::Error;
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, Rate, RateLimitConfig, RateLimiter};
use tokio::time::Instant;

fn config(per_second: u32, burst: u32, on: OnLimit) -> RateLimitConfig {
    let b = RateLimitConfig::builder().per_second(per_second).burst(burst).on_limit(on);
    let b = if on == OnLimit::Queue { b.max_queue(3) } else { b };
    b.build().unwrap_or_else(|e| unreachable!("{e}"))
}

fn retry_after(r: &Result<(), Error>) -> Option<Duration> {
    match r {
        Err(Error::RateLimited { retry_after, .. }) => Some(*retry_after),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn wait_sleeps_exactly_the_needed_time() {
    let l = RateLimiter::new("w", config(2, 1, OnLimit::Wait));
    let start = Instant::now();
    for _ in 0..3 {
        assert_eq!(l.acquire_async(1).await, Ok(()));
    }
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(l.stats().waited, 2);
}

#[tokio::test(start_paused = true)]
async fn queue_admits_max_queue_waiters_rejects_the_next_and_serves_fifo() {
    let l = Arc::new(RateLimiter::new("q", config(1, 1, OnLimit::Queue)));
    assert_eq!(l.try_acquire(1), Ok(()));
    let start = Instant::now();
    let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..3u64 {
        let (l, order) = (l.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let r = l.acquire_async(1).await;
            order.lock().push((i, Instant::now()));
            r
        }));
        tokio::task::yield_now().await; // task i reserves before task i + 1 starts
    }
    assert_eq!(l.stats().waiting, 3);
    let full = l.acquire_async(1).await;
    assert_eq!(retry_after(&full), Some(Duration::from_secs(4)));
    for t in tasks {
        assert_eq!(t.await.ok(), Some(Ok(())));
    }
    let order = order.lock().clone();
    let ids: Vec<u64> = order.iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, vec![0, 1, 2]);
    let times: Vec<Duration> = order.iter().map(|(_, at)| *at - start).collect();
    let secs = |s| Duration::from_secs(s);
    assert_eq!(times, vec![secs(1), secs(2), secs(3)]);
    let s = l.stats();
    assert_eq!((s.granted, s.waited, s.waiting, s.rejected), (4, 3, 0, 1));
}

#[tokio::test(start_paused = true)]
async fn max_wait_rejects_without_consuming() {
    let c = RateLimitConfig::builder()
        .per_second(1)
        .burst(1)
        .max_wait(Duration::from_millis(500))
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let l = RateLimiter::new("m", c);
    assert_eq!(l.acquire_async(1).await, Ok(()));
    let start = Instant::now();
    let r = l.acquire_async(1).await;
    assert_eq!(retry_after(&r), Some(Duration::from_secs(1)));
    assert_eq!(start.elapsed(), Duration::ZERO);
    tokio::time::advance(Duration::from_millis(600)).await;
    assert_eq!(l.acquire_async(1).await, Ok(()));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_last_waiter_gives_its_permits_back() {
    let l = RateLimiter::new("c", config(1, 1, OnLimit::Wait));
    assert_eq!(l.try_acquire(1), Ok(()));
    let cancelled = tokio::time::timeout(Duration::from_millis(100), l.acquire_async(1)).await;
    assert!(cancelled.is_err());
    assert_eq!(l.stats().waiting, 0);
    // The slot at t = 1 s is free again: the next waiter gets it, not t = 2 s.
    let start = Instant::now();
    assert_eq!(l.acquire_async(1).await, Ok(()));
    assert_eq!(start.elapsed(), Duration::from_millis(900));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_with_waiters_behind_keeps_its_slot_consumed() {
    let l = Arc::new(RateLimiter::new("c", config(1, 1, OnLimit::Wait)));
    assert_eq!(l.try_acquire(1), Ok(()));
    let first = tokio::spawn({
        let l = l.clone();
        async move { l.acquire_async(1).await }
    });
    tokio::task::yield_now().await;
    let second = tokio::spawn({
        let l = l.clone();
        async move {
            let start = Instant::now();
            let r = l.acquire_async(1).await;
            (r, start.elapsed())
        }
    });
    tokio::task::yield_now().await;
    first.abort();
    let (r, waited) = second.await.unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(r, Ok(()));
    assert_eq!(waited, Duration::from_secs(2));
    assert_eq!(l.available(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn call_async_future_is_send_and_spawnable() {
    let l = Arc::new(RateLimiter::new("s", config(1000, 10, OnLimit::Wait)));
    let keyed: Arc<KeyedRateLimiter> =
        Arc::new(KeyedRateLimiter::new("ks", config(1000, 10, OnLimit::Wait)));
    let mut handles = Vec::new();
    for i in 0..8u32 {
        let (l, keyed) = (l.clone(), keyed.clone());
        handles.push(tokio::spawn(async move {
            let key = format!("k{}", i % 2);
            keyed.acquire_async(key.as_str(), 1).await?;
            l.call_async(async || Ok::<u32, Error>(i)).await
        }));
    }
    let mut sum = 0;
    for h in handles {
        let r = h.await.unwrap_or_else(|e| unreachable!("{e}"));
        sum += r.unwrap_or_else(|e| unreachable!("{e}"));
    }
    assert_eq!(sum, (0..8).sum::<u32>());
}

#[tokio::test(start_paused = true)]
async fn tasks_on_a_frozen_clock_get_exactly_the_burst() {
    let l = Arc::new(RateLimiter::new("h", config(1, 64, OnLimit::Reject)));
    let granted = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..32 {
        let (l, granted) = (l.clone(), granted.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..10 {
                if l.acquire_async(1).await.is_ok() {
                    granted.fetch_add(1, Ordering::Relaxed);
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    assert_eq!(granted.load(Ordering::Relaxed), 64);
    assert_eq!(l.stats().rejected, 32 * 10 - 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_on_many_threads_share_one_burst() {
    // Cannot refill within the test: one permit per day.
    let c = RateLimitConfig::builder()
        .rate(Rate::new(1, Duration::from_secs(86_400)))
        .burst(100)
        .on_limit(OnLimit::Reject)
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let l = Arc::new(RateLimiter::new("mt", c));
    let granted = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..16 {
        let (l, granted) = (l.clone(), granted.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..100 {
                if l.acquire_async(1).await.is_ok() {
                    granted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    assert_eq!(granted.load(Ordering::Relaxed), 100);
}

#[tokio::test(start_paused = true)]
async fn keyed_queue_limit_applies_per_key() {
    let l: Arc<KeyedRateLimiter> =
        Arc::new(KeyedRateLimiter::new("kq", config(1, 1, OnLimit::Queue)));
    assert_eq!(l.try_acquire("a", 1), Ok(()));
    assert_eq!(l.try_acquire("b", 1), Ok(()));
    let mut tasks = Vec::new();
    for key in ["a", "a", "a", "b"] {
        let l = l.clone();
        tasks.push(tokio::spawn(async move { l.acquire_async(key, 1).await }));
        tokio::task::yield_now().await;
    }
    assert!(retry_after(&l.acquire_async("a", 1).await).is_some());
    assert_eq!(l.stats_for("b").waiting, 1);
    assert_eq!(l.stats().waiting, 4);
    for t in tasks {
        assert_eq!(t.await.ok(), Some(Ok(())));
    }
    assert_eq!(l.stats().rejected, 1);
}
