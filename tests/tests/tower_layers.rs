//! The tower layers around in-process services, on tokio's paused clock: responses
//! classified through `Classify`, retries honouring `Retry-After`, the breaker counting
//! 5xx and not 404, keyed instances kept apart, `poll_ready` reserving nothing.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use parking_lot::Mutex;
use resilience::backoff::Backoff;
use resilience::circuit::CircuitState;
use resilience::tower::{
    BoxError, BulkheadLayer, CircuitBreakerLayer, RateLimitLayer, ResilienceLayer, RetryLayer,
    TimeoutLayer,
};
use resilience::{
    Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, Error, KeyedCircuitBreaker,
    OnLimit, RateLimitConfig, RateLimiter, ResilienceConfig, RetryPolicy, registry,
};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

type Req = Request<String>;
type Res = Response<String>;

fn response(status: u16, headers: &[(&str, &str)]) -> Res {
    let mut b = Response::builder().status(status);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(String::new()).unwrap()
}

fn get(path: &str) -> Req {
    Request::builder().uri(path).body(String::new()).unwrap()
}

/// Statuses with their headers.
type Script = Vec<(u16, Vec<(&'static str, &'static str)>)>;

/// An upstream answering with the scripted responses in turn (the last one for ever),
/// counting its calls.
#[derive(Clone)]
struct Scripted {
    script: Arc<Script>,
    calls: Arc<AtomicU32>,
}

impl Scripted {
    fn new(script: &[(u16, &[(&'static str, &'static str)])]) -> Self {
        Scripted {
            script: Arc::new(script.iter().map(|(s, h)| (*s, h.to_vec())).collect()),
            calls: Arc::new(AtomicU32::new(0)),
        }
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn service(
        &self,
    ) -> impl Service<Req, Response = Res, Error = Infallible, Future: Send> + Clone + Send + 'static
    {
        let this = self.clone();
        service_fn(move |_req: Req| {
            let n = this.calls.fetch_add(1, Ordering::SeqCst) as usize;
            let (status, headers) = &this.script[n.min(this.script.len() - 1)];
            let r = response(*status, headers);
            async move { Ok::<_, Infallible>(r) }
        })
    }
}

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .build()
        .unwrap()
}

fn threshold_breaker(name: &str, n: u32) -> Arc<CircuitBreaker> {
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(n)
        .recovery_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    Arc::new(CircuitBreaker::new(name, config))
}

async fn send<S>(svc: &mut S, req: Req) -> Result<Res, BoxError>
where
    S: Service<Req, Response = Res, Error = BoxError>,
{
    svc.ready().await?.call(req).await
}

fn rejection(e: &BoxError) -> Option<&Error> {
    e.downcast_ref::<Error>()
}

#[tokio::test(start_paused = true)]
async fn a_503_response_is_retried_and_the_last_one_returned_as_ok() {
    let upstream = Scripted::new(&[(503, &[])]);
    let mut svc = RetryLayer::new(quick_retry(3)).layer(upstream.service());
    let r = send(&mut svc, get("/")).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(upstream.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_404_is_returned_at_once() {
    let upstream = Scripted::new(&[(404, &[])]);
    let mut svc = RetryLayer::new(quick_retry(3)).layer(upstream.service());
    assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(upstream.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn retries_wait_for_retry_after_of_429_and_503() {
    let upstream = Scripted::new(&[
        (429, &[("retry-after", "2")]),
        (503, &[("Retry-After", "3")]),
        (200, &[]),
    ]);
    let mut svc = RetryLayer::new(quick_retry(5)).layer(upstream.service());
    let start = Instant::now();
    assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), StatusCode::OK);
    assert_eq!(upstream.calls(), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(5), "2 s, then 3 s: the servers' hints");
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_on_5xx_and_not_on_404() {
    let breaker = threshold_breaker("tower-breaker-5xx", 3);
    let not_found = Scripted::new(&[(404, &[])]);
    let mut svc = CircuitBreakerLayer::new(breaker.clone()).layer(not_found.service());
    for _ in 0..10 {
        assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), 404);
    }
    assert_eq!(breaker.state(), CircuitState::Closed, "a 404 is the service answering");

    let failing = Scripted::new(&[(500, &[])]);
    let mut svc = CircuitBreakerLayer::new(breaker.clone()).layer(failing.service());
    for _ in 0..3 {
        assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), 500, "returned, not an Err");
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    let e = send(&mut svc, get("/")).await.unwrap_err();
    assert!(matches!(rejection(&e), Some(Error::CircuitOpen { .. })), "{e}");
    assert_eq!(failing.calls(), 3, "an open circuit does not call the upstream");
}

#[tokio::test(start_paused = true)]
async fn a_429_neither_opens_nor_closes_the_breaker() {
    let breaker = threshold_breaker("tower-breaker-429", 2);
    let limited = Scripted::new(&[(429, &[])]);
    let mut svc = CircuitBreakerLayer::new(breaker.clone()).layer(limited.service());
    for _ in 0..5 {
        assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), 429);
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn keyed_circuits_per_host_stay_apart() {
    let config = CircuitBreakerConfig::builder().failure_threshold(2).build().unwrap();
    let per_host = Arc::new(KeyedCircuitBreaker::new("tower-per-host", config));
    let bad_calls = Arc::new(AtomicU32::new(0));
    let counted = bad_calls.clone();
    let upstream = service_fn(move |req: Req| {
        let bad = req.uri().host() == Some("bad.example");
        if bad {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        async move { Ok::<_, Infallible>(response(if bad { 502 } else { 200 }, &[])) }
    });
    let host = |r: &Req| r.uri().host().unwrap_or_default().to_owned();
    let mut svc = CircuitBreakerLayer::keyed(per_host.clone(), host).layer(upstream);
    for _ in 0..5 {
        let _ = send(&mut svc, get("http://bad.example/")).await;
        assert_eq!(send(&mut svc, get("http://good.example/")).await.unwrap().status(), 200);
    }
    assert_eq!(bad_calls.load(Ordering::SeqCst), 2, "bad.example's circuit opened after 2");
    assert_eq!(per_host.state("bad.example"), CircuitState::Open);
    assert_eq!(per_host.state("good.example"), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_upstream_never_sees_more_than_the_limit() {
    let config = RateLimitConfig::builder()
        .per_second(5)
        .burst(5)
        .on_limit(OnLimit::Reject)
        .build()
        .unwrap();
    let limiter = Arc::new(RateLimiter::new("tower-limit-reject", config));
    let upstream = Scripted::new(&[(200, &[])]);
    let mut svc = RateLimitLayer::new(limiter).layer(upstream.service());
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..50 {
        match send(&mut svc, get("/")).await {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(matches!(rejection(&e), Some(Error::RateLimited { .. })), "{e}");
                limited += 1;
            }
        }
    }
    assert_eq!((ok, limited), (5, 45));
    assert_eq!(upstream.calls(), 5);
    // Waiting limiter: 20 calls over the paused clock, at most burst + rate·t.
    let config = RateLimitConfig::builder().per_second(5).burst(5).build().unwrap();
    let limiter = Arc::new(RateLimiter::new("tower-limit-wait", config));
    let upstream = Scripted::new(&[(200, &[])]);
    let mut svc = RateLimitLayer::new(limiter).layer(upstream.service());
    let start = Instant::now();
    for _ in 0..20 {
        send(&mut svc, get("/")).await.unwrap();
    }
    assert_eq!(upstream.calls(), 20);
    assert_eq!(start.elapsed(), Duration::from_secs(3), "5 at once, then 15 at 5 per second");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_upstream_times_out() {
    let hanging = service_fn(|_req: Req| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, Infallible>(response(200, &[]))
    });
    let mut svc = TimeoutLayer::new(Duration::from_secs(2)).layer(hanging);
    let start = Instant::now();
    let e = send(&mut svc, get("/")).await.unwrap_err();
    assert!(matches!(rejection(&e), Some(Error::Timeout { .. })), "{e}");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn poll_ready_reserves_nothing_and_a_dropped_call_frees_its_slot() {
    let bulkhead = Arc::new(Bulkhead::new(
        "tower-bulkhead-ready",
        BulkheadConfig::builder().max_concurrent(1).build().unwrap(),
    ));
    let hanging = service_fn(|_req: Req| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, Infallible>(response(200, &[]))
    });
    let svc = BulkheadLayer::new(bulkhead.clone()).layer(hanging);
    // Services made ready and dropped without a call hold nothing.
    for _ in 0..10 {
        let mut s = svc.clone();
        s.ready().await.unwrap();
        drop(s);
    }
    assert_eq!(bulkhead.in_flight(), 0);
    // A call in flight holds the slot; dropping its future gives it back.
    let mut s = svc.clone();
    let call = tokio::spawn(s.ready().await.unwrap().call(get("/")));
    tokio::task::yield_now().await;
    assert_eq!(bulkhead.in_flight(), 1);
    let mut other = svc.clone();
    let e = send(&mut other, get("/")).await.unwrap_err();
    assert!(matches!(rejection(&e), Some(Error::BulkheadFull { .. })), "{e}");
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_eq!(bulkhead.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_whole_stack_retries_counts_and_stops_at_the_open_circuit() {
    let breaker_config = CircuitBreakerConfig::builder()
        .failure_threshold(4)
        .recovery_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let config = ResilienceConfig::default()
        .with_retry(quick_retry(3))
        .with_circuit_breaker(breaker_config)
        .with_rate_limit(RateLimitConfig::builder().per_second(100).build().unwrap());
    let layer = ResilienceLayer::from_config("tower-stack", &config).unwrap();
    let upstream = Scripted::new(&[(503, &[])]);
    let mut svc = ServiceBuilder::new().layer(layer).service(upstream.service());
    // Three attempts, each counted by the breaker: the second call opens it after one
    // more failure, and its remaining attempts are refused without calling the upstream.
    assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), 503);
    let e = send(&mut svc, get("/")).await.unwrap_err();
    assert!(matches!(rejection(&e), Some(Error::CircuitOpen { .. })), "{e}");
    assert_eq!(upstream.calls(), 4);
    let breaker = registry().circuit_breakers().get("tower-stack").unwrap();
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_named_layer_shares_the_registrys_instances() {
    let config = ResilienceConfig::default().with_circuit_breaker(
        CircuitBreakerConfig::builder().failure_threshold(1).build().unwrap(),
    );
    registry().configure("tower-named", config);
    let layer = ResilienceLayer::named("tower-named").unwrap();
    let pipeline = resilience::Pipeline::from_config(
        "tower-named",
        &registry().preset("tower-named").unwrap(),
    )
    .unwrap();
    let mut svc = layer.layer(Scripted::new(&[(500, &[])]).service());
    let _ = send(&mut svc, get("/")).await;
    let shared = pipeline.circuit_breaker().unwrap();
    assert_eq!(shared.state(), CircuitState::Open, "the same circuit as the pipeline's");
    assert!(ResilienceLayer::named("tower-no-such-config").is_err());
}

#[tokio::test(start_paused = true)]
async fn a_per_tenant_preset_needs_a_key() {
    let e = ResilienceLayer::from_preset("tower-shopify", resilience::Preset::Shopify).unwrap_err();
    assert!(e.to_string().contains("from_config_keyed"), "{e}");
    let e = ResilienceLayer::named("shopify").unwrap_err();
    assert!(e.to_string().contains("per shop"), "{e}");
    let per_shop = ResilienceLayer::from_config_keyed(
        "tower-shopify",
        &resilience::Preset::Shopify.config(),
        |r: &Req| r.uri().host().unwrap_or_default().to_owned(),
    )
    .unwrap();
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counted = seen.clone();
    let upstream = service_fn(move |req: Req| {
        *counted.lock().entry(req.uri().host().unwrap_or_default().to_owned()).or_default() += 1;
        async { Ok::<_, Infallible>(response(200, &[])) }
    });
    let mut svc = per_shop.layer(upstream);
    for shop in ["a.myshopify.com", "b.myshopify.com"] {
        send(&mut svc, get(&format!("https://{shop}/admin"))).await.unwrap();
    }
    assert_eq!(seen.lock().len(), 2);
    let limiters = registry().keyed_rate_limiters().get("tower-shopify").unwrap();
    assert_eq!(limiters.len(), 2, "one bucket per shop");
}

#[tokio::test(start_paused = true)]
async fn a_transport_error_is_retried_and_a_rejection_of_an_inner_layer_is_not() {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let refused = service_fn(move |_req: Req| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Err::<Res, _>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)) }
    });
    let mut svc = RetryLayer::new(quick_retry(3)).layer(refused);
    let e = send(&mut svc, get("/")).await.unwrap_err();
    assert!(e.downcast_ref::<std::io::Error>().is_some());
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // Retry outside a breaker: the open circuit is not retried.
    let breaker = threshold_breaker("tower-retry-outside-breaker", 1);
    breaker.force_open();
    let upstream = Scripted::new(&[(200, &[])]);
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(quick_retry(3)))
        .layer(CircuitBreakerLayer::new(breaker))
        .service(upstream.service());
    let start = Instant::now();
    let e = send(&mut svc, get("/")).await.unwrap_err();
    assert!(matches!(rejection(&e), Some(Error::CircuitOpen { .. })), "{e}");
    assert_eq!(start.elapsed(), Duration::ZERO, "not retried");
    assert_eq!(upstream.calls(), 0);
}

/// A breaker on a manual clock that opens at the first failure, half-opens one second
/// later, and then lets one probe through at a time.
fn one_probe_breaker(name: &str) -> (Arc<CircuitBreaker>, resilience::clock::ManualClock) {
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(1))
        .half_open_max_calls(1)
        .build()
        .unwrap();
    let clock = resilience::clock::ManualClock::new();
    (Arc::new(CircuitBreaker::with_clock(name, config, clock.shared())), clock)
}

/// One 500 through `layer` opens its [`one_probe_breaker`]; then its recovery timeout
/// passes on `clock`, so the next call is the probe.
async fn open_then_wait_out(
    layer: &CircuitBreakerLayer,
    breaker: &CircuitBreaker,
    clock: &resilience::clock::ManualClock,
) {
    let mut failing = layer.layer(Scripted::new(&[(500, &[])]).service());
    assert_eq!(send(&mut failing, get("/")).await.unwrap().status(), 500);
    assert_eq!(breaker.state(), CircuitState::Open);
    clock.advance(Duration::from_secs(2));
}

fn hanging() -> impl Service<Req, Response = Res, Error = Infallible, Future: Send> + Clone + Send {
    service_fn(|_req: Req| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, Infallible>(response(200, &[]))
    })
}

#[tokio::test(start_paused = true)]
async fn a_dropped_call_through_the_breaker_counts_as_ignored_and_frees_its_probe() {
    let (breaker, clock) = one_probe_breaker("tower-dropped-probe");
    let layer = CircuitBreakerLayer::new(breaker.clone());

    // Closed: a call dropped in flight is neither a success nor a failure.
    let call = tokio::spawn(layer.layer(hanging()).oneshot(get("/")));
    tokio::task::yield_now().await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    let stats = breaker.stats();
    assert_eq!((stats.successes, stats.failures, stats.ignored), (0, 0, 1));

    // Half-open with one probe slot: the probe in flight holds it, its drop frees it.
    open_then_wait_out(&layer, &breaker, &clock).await;
    let probe = tokio::spawn(layer.layer(hanging()).oneshot(get("/")));
    tokio::task::yield_now().await;
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    let ok = Scripted::new(&[(200, &[])]);
    let e = send(&mut layer.layer(ok.service()), get("/")).await.unwrap_err();
    assert!(matches!(rejection(&e), Some(Error::CircuitOpen { .. })), "the one slot is taken: {e}");
    probe.abort();
    assert!(probe.await.unwrap_err().is_cancelled());
    assert_eq!(send(&mut layer.layer(ok.service()), get("/")).await.unwrap().status(), 200);
    assert_eq!(ok.calls(), 1, "the freed slot admitted the next probe");
}

#[tokio::test(start_paused = true)]
async fn a_call_waiting_for_permits_is_counted_by_the_breaker_that_admitted_it() {
    let limit = RateLimitConfig::builder().per_second(1).burst(1).build().unwrap();
    let config = ResilienceConfig::default()
        .with_circuit_breaker(CircuitBreakerConfig::builder().failure_threshold(2).build().unwrap())
        .with_rate_limit(limit);
    let layer = ResilienceLayer::from_config("tower-wait-stack", &config).unwrap();
    let upstream = Scripted::new(&[(500, &[])]);
    let mut svc = layer.layer(upstream.service());
    let start = Instant::now();
    // The first call takes the one permit at once, the second waits a second for the
    // next: both failures are the breaker's, and it opens.
    assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), 500);
    assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), 500);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    let breaker = registry().circuit_breakers().get("tower-wait-stack").unwrap();
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!(breaker.stats().failures, 2);
    let e = send(&mut svc, get("/")).await.unwrap_err();
    assert!(matches!(rejection(&e), Some(Error::CircuitOpen { .. })), "{e}");
    assert_eq!(upstream.calls(), 2);
    let limiter = registry().rate_limiters().get("tower-wait-stack").unwrap();
    let stats = limiter.stats();
    assert_eq!((stats.granted, stats.waited), (2, 1), "the open circuit took no permit");
}

#[tokio::test(start_paused = true)]
async fn a_limiter_rejection_is_ignored_by_the_breaker() {
    let limit = RateLimitConfig::builder()
        .per_second(1)
        .burst(1)
        .on_limit(OnLimit::Reject)
        .build()
        .unwrap();
    let config = ResilienceConfig::default()
        .with_circuit_breaker(CircuitBreakerConfig::default())
        .with_rate_limit(limit);
    let layer = ResilienceLayer::from_config("tower-reject-stack", &config).unwrap();
    let upstream = Scripted::new(&[(200, &[])]);
    let mut svc = layer.layer(upstream.service());
    assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), 200);
    let e = send(&mut svc, get("/")).await.unwrap_err();
    assert!(matches!(rejection(&e), Some(Error::RateLimited { .. })), "{e}");
    assert_eq!(upstream.calls(), 1);
    let breaker = registry().circuit_breakers().get("tower-reject-stack").unwrap();
    let stats = breaker.stats();
    assert_eq!((stats.successes, stats.failures, stats.ignored), (1, 0, 1));
}

/// An upstream that must be driven to readiness before each call, like a connection
/// pool handing out one slot per `poll_ready`: ready only while its gate is open, a
/// clone is not ready until polled itself, and a call made without readiness answers
/// `Err` (so a layer that calls it out of turn fails the test).
struct Strict {
    gate: Arc<std::sync::atomic::AtomicBool>,
    calls: Arc<AtomicU32>,
    ready: bool,
}

impl Strict {
    fn new(open: bool) -> Self {
        Strict {
            gate: Arc::new(std::sync::atomic::AtomicBool::new(open)),
            calls: Arc::new(AtomicU32::new(0)),
            ready: false,
        }
    }
}

impl Clone for Strict {
    fn clone(&self) -> Self {
        Strict { gate: self.gate.clone(), calls: self.calls.clone(), ready: false }
    }
}

impl Service<Req> for Strict {
    type Response = Res;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Res, BoxError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        if !self.gate.load(Ordering::SeqCst) {
            return std::task::Poll::Pending;
        }
        self.ready = true;
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Req) -> Self::Future {
        if !std::mem::take(&mut self.ready) {
            return std::future::ready(Err("called without poll_ready".into()));
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(response(200, &[])))
    }
}

fn breaker_and_limiter(limit: RateLimitConfig) -> ResilienceConfig {
    ResilienceConfig::default()
        .with_circuit_breaker(CircuitBreakerConfig::default())
        .with_rate_limit(limit)
}

#[tokio::test(start_paused = true)]
async fn a_breaker_and_limiter_layer_passes_the_upstream_readiness_on_and_takes_nothing_for_it() {
    let limit = RateLimitConfig::builder().per_second(100).build().unwrap();
    let layer =
        ResilienceLayer::from_config("tower-readiness", &breaker_and_limiter(limit)).unwrap();
    let upstream = Strict::new(false);
    let mut svc = layer.layer(upstream.clone());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..3 {
        assert!(svc.poll_ready(&mut cx).is_pending(), "not ready while the upstream is not");
    }
    let breaker = registry().circuit_breakers().get("tower-readiness").unwrap();
    let limiter = registry().rate_limiters().get("tower-readiness").unwrap();
    assert_eq!(breaker.stats().calls, 0, "waiting for readiness admits nothing");
    assert_eq!(limiter.stats().granted, 0, "waiting for readiness takes no permit");
    upstream.gate.store(true, Ordering::SeqCst);
    assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), 200);
    assert_eq!(send(&mut svc.clone(), get("/")).await.unwrap().status(), 200);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 2, "each call on a ready upstream");
    assert_eq!((breaker.stats().successes, limiter.stats().granted), (2, 2));

    // With a retry, each attempt waits for its own clone: ready at once.
    let config = ResilienceConfig::default().with_retry(quick_retry(2));
    let mut retried = ResilienceLayer::from_config("tower-readiness-retry", &config)
        .unwrap()
        .layer(Strict::new(false));
    assert!(retried.poll_ready(&mut cx).is_ready());
}

#[tokio::test(start_paused = true)]
async fn a_call_refused_by_the_open_circuit_never_reaches_the_upstream_and_takes_no_permit() {
    let limit = RateLimitConfig::builder().per_second(100).build().unwrap();
    let layer = ResilienceLayer::from_config("tower-refused", &breaker_and_limiter(limit)).unwrap();
    let breaker = registry().circuit_breakers().get("tower-refused").unwrap();
    let limiter = registry().rate_limiters().get("tower-refused").unwrap();
    let upstream = Strict::new(true);
    let mut svc = layer.layer(upstream.clone());
    breaker.force_open();
    let e = send(&mut svc, get("/")).await.unwrap_err();
    assert!(matches!(rejection(&e), Some(Error::CircuitOpen { .. })), "{e}");
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 0);
    assert_eq!(limiter.stats().granted, 0, "an open circuit takes no permit");
    // The readiness the refused call did not use serves the next call.
    breaker.reset();
    assert_eq!(svc.call(get("/")).await.unwrap().status(), 200);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_before_its_first_poll_counts_as_ignored_and_frees_its_probe() {
    let (breaker, clock) = one_probe_breaker("tower-unpolled");
    let layer = CircuitBreakerLayer::new(breaker.clone());
    let mut svc = layer.layer(Strict::new(true));
    drop(svc.ready().await.unwrap().call(get("/")));
    let stats = breaker.stats();
    assert_eq!((stats.successes, stats.failures, stats.ignored), (0, 0, 1));

    open_then_wait_out(&layer, &breaker, &clock).await;
    // The one probe slot, taken by a call whose future is dropped unpolled, is free again.
    drop(svc.ready().await.unwrap().call(get("/")));
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), 200, "the probe slot is free");
    assert_eq!(breaker.stats().ignored, 2);
}

#[tokio::test(start_paused = true)]
async fn a_call_waiting_for_permits_takes_the_ready_upstream_and_the_next_call_readies_another() {
    let limit = RateLimitConfig::builder().per_second(1).burst(1).build().unwrap();
    let layer =
        ResilienceLayer::from_config("tower-wait-ready", &breaker_and_limiter(limit)).unwrap();
    let upstream = Strict::new(true);
    let mut svc = layer.layer(upstream.clone());
    let start = Instant::now();
    for _ in 0..3 {
        assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), 200);
    }
    assert_eq!(start.elapsed(), Duration::from_secs(2), "the second and third calls waited");
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 3);
    let breaker = registry().circuit_breakers().get("tower-wait-ready").unwrap();
    assert_eq!(breaker.stats().successes, 3);
}

#[tokio::test(start_paused = true)]
async fn a_single_rate_limit_layer_counts_nothing_it_has_no_breaker_for_and_passes_errors_on() {
    let limiter = Arc::new(RateLimiter::new(
        "tower-limit-only",
        RateLimitConfig::builder().per_second(100).build().unwrap(),
    ));
    let mut svc = RateLimitLayer::new(limiter.clone()).layer(Strict::new(true));
    assert_eq!(send(&mut svc, get("/")).await.unwrap().status(), 200);
    // Called out of turn, the strict upstream answers an error, passed on as it was.
    let e = svc.call(get("/")).await.unwrap_err();
    assert_eq!(e.to_string(), "called without poll_ready");
    assert_eq!(limiter.stats().granted, 2);
}
