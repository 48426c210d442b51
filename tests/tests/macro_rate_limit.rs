//! `#[rate_limit]` as a user writes it: reject, wait, queue, per-key buckets, cost, stats.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{Error, rate_limit, registry};
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

#[rate_limit(name = "macro-limit-reject", per_second = 1, burst = 2, on_limit = reject)]
fn rejecting(calls: &AtomicU32) -> Result<u32, AppError> {
    Ok(calls.fetch_add(1, Ordering::SeqCst) + 1)
}

#[test]
fn reject_fails_fast_with_the_wait_and_does_not_run_the_body() {
    let calls = AtomicU32::new(0);
    assert_eq!(rejecting(&calls), Ok(1));
    assert_eq!(rejecting(&calls), Ok(2));
    match rejecting(&calls) {
        Err(AppError::Resilience(Error::RateLimited { name, retry_after, .. })) => {
            assert_eq!(&*name, "macro-limit-reject");
            assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let stats = registry().rate_limiters().stats("macro-limit-reject").unwrap();
    assert_eq!((stats.granted, stats.rejected, stats.capacity), (2, 1, 2));
}

#[rate_limit(per_second = 2, burst = 1)]
async fn waiting() -> Result<(), AppError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn wait_sleeps_exactly_until_a_permit_is_free() {
    let start = Instant::now();
    for _ in 0..3 {
        waiting().await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::from_secs(1), "two refills at 2 per second");
    let stats = registry().rate_limiters().stats(concat!(module_path!(), "::waiting")).unwrap();
    assert_eq!((stats.granted, stats.waited), (3, 2));
}

#[rate_limit(per_second = 1, burst = 1, on_limit = wait, max_wait = 500ms)]
async fn bounded_wait() -> Result<(), AppError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn max_wait_refuses_a_longer_wait_at_once() {
    bounded_wait().await.unwrap();
    let start = Instant::now();
    assert!(matches!(bounded_wait().await, Err(AppError::Resilience(Error::RateLimited { .. }))));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[rate_limit(per_second = 1, burst = 1, on_limit = queue, max_queue = 1)]
async fn queued(order: &std::sync::Mutex<Vec<u32>>, id: u32) -> Result<u32, AppError> {
    order.lock().unwrap().push(id);
    Ok(id)
}

#[tokio::test(start_paused = true)]
async fn queue_serves_up_to_max_queue_waiters_and_rejects_the_next() {
    let order = std::sync::Mutex::new(Vec::new());
    let start = Instant::now();
    let (a, b, c) = tokio::join!(queued(&order, 1), queued(&order, 2), queued(&order, 3));
    assert_eq!(a, Ok(1));
    assert_eq!(b, Ok(2), "one waiter fits in the queue");
    assert!(matches!(c, Err(AppError::Resilience(Error::RateLimited { .. }))), "{c:?}");
    assert_eq!(*order.lock().unwrap(), [1, 2]);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[rate_limit(name = "macro-limit-keyed", per_second = 1, burst = 2, on_limit = reject, key = shop)]
async fn per_shop(shop: &str) -> Result<(), AppError> {
    let _ = shop;
    Ok(())
}

#[rate_limit(name = "macro-limit-keyed-int", per_minute = 1, burst = 1, on_limit = reject, key = shop_id)]
fn per_shop_id(shop_id: u64) -> Result<(), AppError> {
    let _ = shop_id;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn per_key_buckets_are_independent() {
    per_shop("a.myshopify.com").await.unwrap();
    per_shop("a.myshopify.com").await.unwrap();
    assert!(per_shop("a.myshopify.com").await.is_err(), "shop a spent its burst");
    per_shop("b.myshopify.com").await.unwrap();
    per_shop("b.myshopify.com").await.unwrap();
    let limiter = registry().keyed_rate_limiters().get("macro-limit-keyed").unwrap();
    assert_eq!(limiter.len(), 2);
    assert_eq!(limiter.available("a.myshopify.com"), 0);

    per_shop_id(1).unwrap();
    per_shop_id(2).unwrap();
    assert!(per_shop_id(1).is_err());
}

struct Query {
    points: u32,
}

#[rate_limit(name = "macro-limit-cost", per_second = 50, burst = 100, on_limit = reject, cost = query.points)]
fn graphql(query: &Query) -> Result<u32, AppError> {
    Ok(query.points)
}

#[test]
fn cost_takes_that_many_permits() {
    assert_eq!(graphql(&Query { points: 60 }), Ok(60));
    assert!(graphql(&Query { points: 60 }).is_err(), "40 left, 60 asked");
    assert_eq!(graphql(&Query { points: 40 }), Ok(40));
    let limiter = registry().rate_limiters().get("macro-limit-cost").unwrap();
    assert_eq!(limiter.available(), 0);
}
