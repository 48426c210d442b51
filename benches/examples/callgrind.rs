//! Runs one hot path `n` times, for instruction counts under
//! `valgrind --tool=callgrind` (steady where wall-clock timings are not):
//!
//! ```sh
//! cargo build -p resilience-benches --release --example callgrind
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
//!     --toggle-collect='callgrind::hot*' target/release/examples/callgrind breaker 100000
//! ```
//!
//! Only the loop in `hot` is counted (not the set-up): divide the total by `n`. Paths:
//! `breaker`, `limiter`, `retry`, `resilient`; `limiter_manual` and `keyed_manual` (a
//! direct limiter, and a keyed one over 1024 existing keys, on a `ManualClock`: the
//! limiter's own instructions without a clock read), `governor` (governor's `check` on
//! its default clock, the peer of `limiter`), `governor_keyed` (governor's `check_key` on
//! its DashMap store over the same 1024 keys, on its fake clock: the peer of
//! `keyed_manual`), `tower` (a `ResilienceLayer` with a
//! breaker and a limiter around a service answering at once) and `tower_limit`
//! (`tower::limit::RateLimit` around the same), each call `poll_ready`, `call` and one
//! poll of its future, as the `tower` bench makes it;
//! for reference, `macro_breaker` and
//! `hand_breaker` (a `#[circuit_breaker]` fn and the same call by hand), `clock` (one
//! read of the default clock) and `bare` (the loop returning `Ok::<u64, Error>`, no
//! library call: the floor of every path above); with `PROBE_QUANTA=1` the default clock is
//! `QuantaClock` (under valgrind quanta may fall back to `clock_gettime`, as valgrind's
//! CPU model does not advertise an invariant TSC; compare such counts with care); with
//! `PROBE_METRICS=1`, `resilience::metrics` is installed on the Prometheus recorder; with
//! `PROBE_FILTERED=1`, the global `tracing` subscriber is one that filters every span of
//! target `resilience` out (the call should cost what it costs with no subscriber).
#![allow(missing_docs)]

use std::hint::black_box;

use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig};
use resilience::rate_limit::{OnLimit, RateLimitConfig, RateLimiter};
use resilience::retry::RetryPolicy;
use resilience::{Error, resilient};

#[derive(Debug)]
enum ProbeError {
    #[allow(dead_code)] // carried for the `From` impl the attributes need; never inspected
    Resilience(Error),
}

impl From<Error> for ProbeError {
    fn from(e: Error) -> Self {
        ProbeError::Resilience(e)
    }
}

#[resilient(
    retry(max_attempts = 3),
    circuit_breaker(name = "probe-resilient", failure_threshold = 5),
    rate_limit(name = "probe-resilient", per_second = 1_000_000_000, burst = 1_000_000),
    bulkhead(max_concurrent = 64)
)]
fn resilient_stack() -> Result<u64, ProbeError> {
    Ok(black_box(1))
}

#[resilience::circuit_breaker(name = "probe-macro-breaker", failure_threshold = 5)]
fn macro_breaker() -> Result<u64, ProbeError> {
    Ok(black_box(1))
}

/// What `#[circuit_breaker]` stands for, by hand: a breaker per call site.
fn hand_breaker() -> Result<u64, ProbeError> {
    static BREAKER: std::sync::OnceLock<CircuitBreaker> = std::sync::OnceLock::new();
    let config = || CircuitBreakerConfig::builder().failure_threshold(5).build();
    BREAKER
        .get_or_init(|| CircuitBreaker::new("probe-hand", config().unwrap_or_default()))
        .call(|| Ok(black_box(1)))
}

/// A tower service that answers at once.
fn ready_service() -> impl tower::Service<
    (),
    Response = http::Response<()>,
    Error = std::convert::Infallible,
    Future = std::future::Ready<Result<http::Response<()>, std::convert::Infallible>>,
> + Clone {
    tower::service_fn(|()| std::future::ready(Ok(http::Response::new(()))))
}

/// One tower call as a caller makes it: `poll_ready`, then `call`, then the response
/// future polled, each once (the service and its future complete at once).
#[inline(always)]
fn tower_call<S: tower::Service<()>>(svc: &mut S) -> Option<Result<S::Response, S::Error>> {
    match resilience_benches::poll_once(std::future::poll_fn(|cx| svc.poll_ready(cx))) {
        Some(Ok(())) => resilience_benches::poll_once(svc.call(())),
        Some(Err(e)) => Some(Err(e)),
        None => None,
    }
}

/// `n` tower calls of `svc` in the measured loop, after one outside it that must answer
/// (a probe that counts a loop of failures would measure nothing useful).
fn tower_probe<S>(n: u64, mut svc: S)
where
    S: tower::Service<()>,
    S::Error: std::fmt::Debug,
{
    match tower_call(&mut svc) {
        Some(Ok(_)) => {}
        Some(Err(e)) => return eprintln!("the probe's first call failed: {e:?}"),
        None => return eprintln!("the probe's first call did not complete on its first poll"),
    }
    hot(n, || tower_call(&mut svc).is_some_and(|r| r.is_ok()));
}

/// A subscriber that records nothing of target `resilience` (and nothing else either).
struct FiltersOut;

impl tracing::Subscriber for FiltersOut {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if self.enabled(metadata) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() != "resilience" && metadata.target().starts_with("app")
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The measured loop (callgrind counts only inside it).
#[inline(never)]
fn hot<R>(n: u64, mut f: impl FnMut() -> R) {
    for _ in 0..n {
        let _ = black_box(f());
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    if std::env::var_os("PROBE_QUANTA").is_some() {
        let _ = resilience::clock::set_default_clock(std::sync::Arc::new(
            resilience::clock::QuantaClock::new(),
        ));
    }
    if std::env::var_os("PROBE_FILTERED").is_some() {
        let _ = tracing::subscriber::set_global_default(FiltersOut);
    }
    if std::env::var_os("PROBE_METRICS").is_some() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                resilience::metrics::DURATION_BUCKETS,
            )
            .unwrap_or_else(|e| unreachable!("valid buckets: {e}"))
            .build_recorder();
        let _ = metrics::set_global_recorder(recorder);
        resilience::metrics::install().forever();
    }
    match path.as_str() {
        "breaker" => {
            let b = CircuitBreaker::new("probe", CircuitBreakerConfig::default());
            hot(n, || b.call(|| Ok::<u64, Error>(black_box(1))));
        }
        "limiter" => {
            let config = RateLimitConfig::builder()
                .per_second(1_000_000_000)
                .burst(1_000_000)
                .on_limit(OnLimit::Reject)
                .build()
                .unwrap_or_else(|e| unreachable!("valid config: {e}"));
            let l = RateLimiter::new("probe", config);
            hot(n, || l.try_acquire(1));
        }
        "limiter_manual" => {
            // The limiter's own instructions: a `ManualClock` read is one atomic load,
            // where valgrind makes `QuantaClock` fall back to `clock_gettime`.
            let config = RateLimitConfig::builder()
                .per_second(1_000_000_000)
                .burst(1_000_000)
                .on_limit(OnLimit::Reject)
                .build()
                .unwrap_or_else(|e| unreachable!("valid config: {e}"));
            let clock = resilience::clock::ManualClock::new();
            let l = RateLimiter::with_clock("probe-manual", config, clock.shared());
            hot(n, || l.try_acquire(1));
        }
        "keyed_manual" => {
            let config = RateLimitConfig::builder()
                .per_second(1_000_000_000)
                .burst(1_000_000)
                .on_limit(OnLimit::Reject)
                .build()
                .unwrap_or_else(|e| unreachable!("valid config: {e}"));
            let clock = resilience::clock::ManualClock::new();
            let l: resilience::rate_limit::KeyedRateLimiter<String> =
                resilience::rate_limit::KeyedRateLimiter::with_clock(
                    "probe-keyed",
                    config,
                    clock.shared(),
                );
            let keys: Vec<String> = (0..1024).map(|i| format!("shop-{i}.example.com")).collect();
            for k in &keys {
                let _ = l.try_acquire(k.as_str(), 1);
            }
            let mut i = 0usize;
            hot(n, || {
                i = i.wrapping_add(1);
                l.try_acquire(keys[i & 1023].as_str(), 1)
            });
        }
        "governor_keyed" => {
            // governor's `check_key` on its default DashMap store over the same 1024
            // keys, the peer of `keyed_manual` (on governor's fake clock: no clock read).
            let quota = governor::Quota::per_second(std::num::NonZeroU32::MAX).allow_burst(
                std::num::NonZeroU32::new(1_000_000).unwrap_or(std::num::NonZeroU32::MIN),
            );
            let g = governor::RateLimiter::dashmap_with_clock(
                quota,
                governor::clock::FakeRelativeClock::default(),
            );
            let keys: Vec<String> = (0..1024).map(|i| format!("shop-{i}.example.com")).collect();
            for k in &keys {
                let _ = g.check_key(k);
            }
            let mut i = 0usize;
            hot(n, || {
                i = i.wrapping_add(1);
                g.check_key(&keys[i & 1023])
            });
        }
        "governor" => {
            // The peer on its default clock (also `quanta`), for the same comparison.
            let quota = governor::Quota::per_second(std::num::NonZeroU32::MAX).allow_burst(
                std::num::NonZeroU32::new(1_000_000).unwrap_or(std::num::NonZeroU32::MIN),
            );
            let g = governor::RateLimiter::direct(quota);
            hot(n, || g.check());
        }
        "retry" => {
            let policy = RetryPolicy::builder().max_attempts(3).build().unwrap_or_default();
            hot(n, || policy.call(|| Ok::<u64, Error>(black_box(1))));
        }
        "retry_async" => {
            let policy = RetryPolicy::builder().max_attempts(3).build().unwrap_or_default();
            let op = || async { Ok::<u64, Error>(black_box(1)) };
            hot(n, || resilience_benches::poll_once(policy.call_async(op)));
        }
        "resilient" => {
            let _ = resilient_stack(); // resolves the call site's layers
            hot(n, resilient_stack);
        }
        "macro_breaker" => {
            let _ = macro_breaker();
            hot(n, macro_breaker);
        }
        "hand_breaker" => {
            let _ = hand_breaker();
            hot(n, hand_breaker);
        }
        "clock" => {
            let clock = resilience::clock::default_clock();
            hot(n, || clock.now());
        }
        "tower" => {
            use tower::Layer;
            let limit = RateLimitConfig::builder()
                .per_second(1_000_000_000)
                .burst(1_000_000_000)
                .build()
                .unwrap_or_else(|e| unreachable!("valid config: {e}"));
            let config = resilience::ResilienceConfig::default()
                .with_circuit_breaker(CircuitBreakerConfig::default())
                .with_rate_limit(limit);
            let layer = resilience::tower::ResilienceLayer::from_config("probe-tower", &config)
                .unwrap_or_else(|e| unreachable!("valid config: {e}"));
            tower_probe(n, layer.layer(ready_service()));
        }
        "tower_limit" => {
            use tower::Layer;
            // `RateLimit` arms its (unused) sleep on a tokio timer when it is built.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap_or_else(|e| unreachable!("a tokio runtime: {e}"));
            let _entered = rt.enter();
            let layer =
                tower::limit::RateLimitLayer::new(1_000_000_000, std::time::Duration::from_secs(1));
            tower_probe(n, layer.layer(ready_service()));
        }
        "tower_limiter_only" => {
            use tower::Layer;
            let limit = RateLimitConfig::builder()
                .per_second(1_000_000_000)
                .burst(1_000_000_000)
                .build()
                .unwrap_or_else(|e| unreachable!("valid config: {e}"));
            let limiter = std::sync::Arc::new(RateLimiter::new("probe-limiter", limit));
            tower_probe(n, resilience::tower::RateLimitLayer::new(limiter).layer(ready_service()));
        }
        "tower_breaker_only" => {
            use tower::Layer;
            let breaker = std::sync::Arc::new(CircuitBreaker::new(
                "probe-breaker",
                CircuitBreakerConfig::default(),
            ));
            let layer = resilience::tower::CircuitBreakerLayer::new(breaker);
            tower_probe(n, layer.layer(ready_service()));
        }
        "tower_bare" => tower_probe(n, ready_service()),
        "bare" => hot(n, || Ok::<u64, Error>(black_box(1))),
        _ => eprintln!(
            "usage: callgrind breaker|limiter|limiter_manual|keyed_manual|governor|governor_keyed|retry|resilient|macro_breaker|hand_breaker|clock|tower|tower_limit|tower_limiter_only|tower_breaker_only|tower_bare|bare [n]"
        ),
    }
}
