//! Tower layers: a circuit breaker and a rate limiter with permits left around a ready
//! `Service` that answers at once. `resilience`'s `ResilienceLayer` (breaker + limiter)
//! against tower-resilience's `CircuitBreakerLayer` + `RateLimiterLayer`, against
//! `tower::limit::RateLimit` alone (a limiter only, its window kept in the one service:
//! the floor of one layer), and against `RateLimit` behind `tower::buffer::Buffer` (the
//! same window shared by every clone, as tower shares it). Hedging's
//! primary-wins path (the first attempt answers before any hedge): `resilience`'s
//! `HedgeLayer` against `tower::hedge::Hedge`.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use resilience::tower::ResilienceLayer;
use resilience::{CircuitBreakerConfig, RateLimitConfig, ResilienceConfig};
use tower::{Layer, Service, ServiceExt, service_fn};

type Res = http::Response<()>;

/// The ready service that answers at once.
fn upstream() -> impl Service<(), Response = Res, Error = Infallible, Future: Send> + Clone + Send {
    service_fn(|()| std::future::ready(Ok::<_, Infallible>(Res::new(()))))
}

/// A budget no run uses up.
const PLENTY: u32 = 1_000_000_000;

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread().enable_time().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tower bench: no tokio runtime: {e}");
            std::process::exit(1)
        }
    }
}

/// `iters` calls of `svc`, each `ready().await` then `call(())`, as a tower caller
/// makes them.
async fn calls<S>(mut svc: S, iters: u64) -> Duration
where
    S: Service<(), Response = Res>,
{
    let start = Instant::now();
    for _ in 0..iters {
        let ready = match svc.ready().await {
            Ok(svc) => svc,
            Err(_) => break,
        };
        let _ = black_box(ready.call(()).await.is_ok());
    }
    start.elapsed()
}

/// The function id of `tower::limit::RateLimit` behind `tower::buffer::Buffer`: one
/// window shared by every clone of the service, as tower shares a service that is not
/// `Clone`, and as our limiter's one bucket is shared by every clone, thread and
/// front-end of its name.
const RATE_LIMIT_SHARED: &str = "tower-limit-RateLimit-in-Buffer";

/// `iters` calls through a `RateLimit` behind a `Buffer` (its worker spawned on the
/// bench's runtime, one fresh window per sample), through a clone of the buffer, as a
/// task sharing the limit makes them.
async fn calls_shared_rate_limit(iters: u64) -> Duration {
    let shared = tower::buffer::Buffer::new(rate_limited(upstream()), 1024);
    calls(shared.clone(), iters).await
}

/// `iters` calls through a `RateLimit` of its own (one fresh window per sample).
async fn calls_rate_limit(iters: u64) -> Duration {
    calls(rate_limited(upstream()), iters).await
}

/// `svc` behind `tower::limit::RateLimit` with a budget no run uses up.
fn rate_limited<S>(svc: S) -> tower::limit::RateLimit<S> {
    tower::limit::RateLimitLayer::new(u64::from(PLENTY), Duration::from_secs(1)).layer(svc)
}

fn layer_breaker_and_limiter(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("tower_breaker_limiter");

    let limit = match RateLimitConfig::builder().per_second(PLENTY).burst(PLENTY).build() {
        Ok(limit) => limit,
        Err(e) => return eprintln!("tower bench: {e}"),
    };
    let config = ResilienceConfig::default()
        .with_circuit_breaker(CircuitBreakerConfig::default())
        .with_rate_limit(limit);
    match ResilienceLayer::from_config("bench-tower", &config) {
        Ok(layer) => {
            let svc = layer.layer(upstream());
            g.bench_function("resilience", |b| {
                b.to_async(&rt).iter_custom(|iters| calls(svc.clone(), iters))
            });
        }
        Err(e) => eprintln!("tower bench: {e}"),
    }

    let breaker = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .build();
    let limiter = tower_resilience::ratelimiter::RateLimiterLayer::builder()
        .limit_for_period(PLENTY as usize)
        .refresh_period(Duration::from_secs(1))
        .timeout_duration(Duration::ZERO)
        .build();
    if let (Ok(breaker), Ok(limiter)) = (breaker, limiter) {
        let svc = breaker.layer(limiter.layer(upstream()));
        g.bench_function("tower-resilience", |b| {
            b.to_async(&rt).iter_custom(|iters| calls(svc.clone(), iters))
        });
    }

    g.bench_function("tower-limit-RateLimit", |b| b.to_async(&rt).iter_custom(calls_rate_limit));
    g.bench_function(RATE_LIMIT_SHARED, |b| b.to_async(&rt).iter_custom(calls_shared_rate_limit));
    g.finish();
}

/// What the breaker + limiter row is made of, one layer at a time, each against its
/// nearest peer: our `RateLimitLayer` alone against `tower::limit::RateLimit` (a shared,
/// named bucket against a window kept in the service), our `CircuitBreakerLayer` alone
/// against tower-resilience's, and the upstream with no layer (the floor every row
/// stands on).
fn layer_by_layer(c: &mut Criterion) {
    use resilience::tower::{CircuitBreakerLayer, RateLimitLayer};
    use resilience::{CircuitBreaker, RateLimiter};
    use std::sync::Arc;

    let rt = runtime();
    let limit = match RateLimitConfig::builder().per_second(PLENTY).burst(PLENTY).build() {
        Ok(limit) => limit,
        Err(e) => return eprintln!("tower bench: {e}"),
    };

    let mut g = c.benchmark_group("tower_limiter_only");
    let ours = RateLimitLayer::new(Arc::new(RateLimiter::new("bench-tower-limiter", limit)))
        .layer(upstream());
    g.bench_function("resilience", |b| {
        b.to_async(&rt).iter_custom(|iters| calls(ours.clone(), iters))
    });
    g.bench_function("tower-limit-RateLimit", |b| b.to_async(&rt).iter_custom(calls_rate_limit));
    g.bench_function(RATE_LIMIT_SHARED, |b| b.to_async(&rt).iter_custom(calls_shared_rate_limit));
    g.bench_function("upstream-alone", |b| {
        b.to_async(&rt).iter_custom(|iters| calls(upstream(), iters))
    });
    g.finish();

    let mut g = c.benchmark_group("tower_breaker_only");
    let breaker = CircuitBreaker::new("bench-tower-breaker", CircuitBreakerConfig::default());
    let ours = CircuitBreakerLayer::new(Arc::new(breaker)).layer(upstream());
    g.bench_function("resilience", |b| {
        b.to_async(&rt).iter_custom(|iters| calls(ours.clone(), iters))
    });
    let theirs = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .build();
    if let Ok(theirs) = theirs {
        let svc = theirs.layer(upstream());
        g.bench_function("tower-resilience", |b| {
            b.to_async(&rt).iter_custom(|iters| calls(svc.clone(), iters))
        });
    }
    g.bench_function("upstream-alone", |b| {
        b.to_async(&rt).iter_custom(|iters| calls(upstream(), iters))
    });
    g.finish();
}

/// `tower::hedge`'s policy: every request may be cloned and hedged.
#[derive(Clone)]
struct HedgeAll;

impl tower::hedge::Policy<()> for HedgeAll {
    fn clone_request(&self, _: &()) -> Option<()> {
        Some(())
    }

    fn can_retry(&self, _: &()) -> bool {
        true
    }
}

fn hedge_primary_wins(c: &mut Criterion) {
    use resilience::hedge::{Hedge, HedgeConfig, HedgeDelay};
    use resilience::tower::HedgeLayer;

    let rt = runtime();
    let mut g = c.benchmark_group("tower_hedge_primary_wins");
    let config = HedgeConfig::builder().delay(HedgeDelay::Fixed(Duration::from_millis(50))).build();
    match config {
        Ok(config) => {
            let layer = HedgeLayer::new(std::sync::Arc::new(Hedge::new("bench-hedge", config)));
            let svc = layer.layer(upstream());
            g.bench_function("resilience", |b| {
                b.to_async(&rt).iter_custom(|iters| calls(svc.clone(), iters))
            });
        }
        Err(e) => eprintln!("tower bench: {e}"),
    }
    g.bench_function("tower-hedge", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            // p95 of observed latencies after 10 data points, over a 1 s rotation.
            let svc =
                tower::hedge::Hedge::new(upstream(), HedgeAll, 10, 0.95, Duration::from_secs(1));
            calls(svc, iters)
        })
    });
    g.finish();
}

criterion_group!(benches, layer_breaker_and_limiter, layer_by_layer, hedge_primary_wins);
criterion_main!(benches);
