//! The tower layers against real HTTP servers on 127.0.0.1 free ports (axum in the test
//! process): a hyper client through `ResilienceLayer`, and an axum app behind the
//! server side of `RateLimitLayer`.
//!
//! Nothing here waits on the wall clock: upstream hints are `Retry-After: 0`, limiters
//! run on a `ManualClock` (frozen unless advanced), and the waits the hints ask for are
//! tested on tokio's paused clock in `tower_layers.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use resilience::backoff::Backoff;
use resilience::circuit::CircuitState;
use resilience::clock::ManualClock;
use resilience::tower::{BoxError, RateLimitLayer, ResilienceLayer};
use resilience::{
    CircuitBreakerConfig, Error, KeyedRateLimiter, OnLimit, RateLimitConfig, ResilienceConfig,
    RetryPolicy, registry,
};
use tower::{Layer, Service, ServiceExt};

type Req = http::Request<Full<Bytes>>;
type Res = http::Response<Incoming>;

/// What the upstream received, per path.
#[derive(Clone, Default)]
struct Counts(Arc<Mutex<HashMap<&'static str, u32>>>);

impl Counts {
    fn hit(&self, path: &'static str) -> u32 {
        let mut m = self.0.lock();
        let n = m.entry(path).or_default();
        *n += 1;
        *n
    }

    fn get(&self, path: &'static str) -> u32 {
        self.0.lock().get(path).copied().unwrap_or(0)
    }
}

/// An upstream that fails with 503 + `Retry-After`, throttles with 429 and rate-limit
/// headers, answers 404 and 500, and counts what it received.
async fn upstream() -> (SocketAddr, Counts) {
    let counts = Counts::default();
    let app = Router::new()
        .route(
            "/flaky",
            get(|State(c): State<Counts>| async move {
                match c.hit("/flaky") {
                    1 | 2 => (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")], "busy"),
                    _ => (StatusCode::OK, [("x-ok", "1")], "ok"),
                }
            }),
        )
        .route(
            "/throttled",
            get(|State(c): State<Counts>| async move {
                if c.hit("/throttled") == 1 {
                    let headers = [
                        ("retry-after", "0"),
                        ("x-ratelimit-remaining", "0"),
                        ("x-ratelimit-reset", "0"),
                    ];
                    (StatusCode::TOO_MANY_REQUESTS, headers, "slow down")
                } else {
                    let headers = [
                        ("retry-after", "0"),
                        ("x-ratelimit-remaining", "4"),
                        ("x-ratelimit-reset", "0"),
                    ];
                    (StatusCode::OK, headers, "ok")
                }
            }),
        )
        .route(
            "/missing",
            get(|State(c): State<Counts>| async move {
                c.hit("/missing");
                StatusCode::NOT_FOUND
            }),
        )
        .route(
            "/broken",
            get(|State(c): State<Counts>| async move {
                c.hit("/broken");
                StatusCode::INTERNAL_SERVER_ERROR
            }),
        )
        .route(
            "/ok",
            get(|State(c): State<Counts>| async move {
                c.hit("/ok");
                "ok"
            }),
        )
        .with_state(counts.clone());
    (serve(app).await, counts)
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn request(addr: SocketAddr, path: &str) -> Req {
    http::Request::get(format!("http://{addr}{path}")).body(Full::default()).unwrap()
}

async fn send<S>(svc: &mut S, req: Req) -> Result<Res, BoxError>
where
    S: Service<Req, Response = Res, Error = BoxError>,
{
    svc.ready().await?.call(req).await
}

fn retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::constant(Duration::ZERO))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hyper_client_retries_503_and_429_and_returns_the_success() {
    let (addr, counts) = upstream().await;
    let config = ResilienceConfig::default().with_retry(retry(4));
    let layer = ResilienceLayer::from_config("http-client-retry", &config).unwrap();
    let mut svc = layer.layer(client());
    let r = send(&mut svc, request(addr, "/flaky")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ok"], "1");
    assert_eq!(counts.get("/flaky"), 3, "two 503s, then the 200");
    let r = send(&mut svc, request(addr, "/throttled")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(counts.get("/throttled"), 2);
    let r = send(&mut svc, request(addr, "/missing")).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(counts.get("/missing"), 1, "a 404 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_5xx_and_not_on_404() {
    let (addr, counts) = upstream().await;
    let breaker = CircuitBreakerConfig::builder()
        .failure_threshold(3)
        .recovery_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let config = ResilienceConfig::default().with_circuit_breaker(breaker);
    let layer = ResilienceLayer::from_config("http-client-breaker", &config).unwrap();
    let mut svc = layer.layer(client());
    for _ in 0..10 {
        assert_eq!(send(&mut svc, request(addr, "/missing")).await.unwrap().status(), 404);
    }
    let circuit = registry().circuit_breakers().get("http-client-breaker").unwrap();
    assert_eq!(circuit.state(), CircuitState::Closed);
    for _ in 0..3 {
        assert_eq!(send(&mut svc, request(addr, "/broken")).await.unwrap().status(), 500);
    }
    assert_eq!(circuit.state(), CircuitState::Open);
    let e = send(&mut svc, request(addr, "/broken")).await.unwrap_err();
    assert!(matches!(e.downcast_ref::<Error>(), Some(Error::CircuitOpen { .. })), "{e}");
    assert_eq!(counts.get("/broken"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_circuits_stay_apart() {
    let (bad, bad_counts) = upstream().await;
    let (good, good_counts) = upstream().await;
    let breaker = CircuitBreakerConfig::builder()
        .failure_threshold(2)
        .recovery_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let config = ResilienceConfig::default().with_circuit_breaker(breaker);
    let host = |r: &Req| r.uri().authority().map(|a| a.to_string()).unwrap_or_default();
    let layer = ResilienceLayer::from_config_keyed("http-per-host", &config, host).unwrap();
    let mut svc = layer.layer(client());
    for _ in 0..5 {
        let _ = send(&mut svc, request(bad, "/broken")).await;
        assert_eq!(send(&mut svc, request(good, "/ok")).await.unwrap().status(), 200);
    }
    assert_eq!(bad_counts.get("/broken"), 2);
    assert_eq!(good_counts.get("/ok"), 5);
    let circuits = registry().keyed_circuit_breakers().get("http-per-host").unwrap();
    assert_eq!(circuits.state(bad.to_string().as_str()), CircuitState::Open);
    assert_eq!(circuits.state(good.to_string().as_str()), CircuitState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_never_sees_more_than_the_client_limit() {
    let (addr, counts) = upstream().await;
    let limit = RateLimitConfig::builder()
        .per_minute(1)
        .burst(5)
        .on_limit(OnLimit::Reject)
        .build()
        .unwrap();
    let config = ResilienceConfig::default().with_rate_limit(limit);
    let layer = ResilienceLayer::from_config("http-client-limit", &config).unwrap();
    let mut svc = layer.layer(client());
    let mut refused = 0;
    for _ in 0..20 {
        match send(&mut svc, request(addr, "/ok")).await {
            Ok(r) => assert_eq!(r.status(), 200),
            Err(e) => {
                assert!(matches!(e.downcast_ref::<Error>(), Some(Error::RateLimited { .. })));
                refused += 1;
            }
        }
    }
    assert!(counts.get("/ok") <= 5 + 1, "burst + at most one refill in the test's time");
    assert_eq!(counts.get("/ok") + refused, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_returned_as_the_clients_transient_error() {
    // A port that was free a moment ago: nobody listens.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = ResilienceConfig::default().with_retry(retry(3));
    let mut svc = ResilienceLayer::from_config("http-refused", &config).unwrap().layer(client());
    let e = send(&mut svc, request(addr, "/")).await.unwrap_err();
    assert!(e.downcast_ref::<hyper_util::client::legacy::Error>().is_some(), "{e}");
    assert_eq!(resilience::tower::error_class(&*e), resilience::ErrorClass::Transient);
}

/// An axum app behind the server side of a keyed `RateLimitLayer` on a manual clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_server_answers_429_with_headers_and_never_admits_more_than_burst_plus_rate_t() {
    let clock = ManualClock::new();
    let config = RateLimitConfig::builder().per_second(2).burst(4).build().unwrap();
    let per_key =
        Arc::new(KeyedRateLimiter::with_clock("http-server-limit", config, clock.shared()));
    let admitted = Arc::new(AtomicU32::new(0));
    let counted = admitted.clone();
    let api_key = |r: &axum::extract::Request| {
        r.headers().get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
    };
    let app = Router::new()
        .route(
            "/",
            post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { "admitted" }
            }),
        )
        .layer(RateLimitLayer::keyed(per_key, api_key).answer_too_many_requests());
    let addr = serve(app).await;
    let plain = client();
    let call = |key: &'static str| {
        let plain = plain.clone();
        async move {
            let req = http::Request::post(format!("http://{addr}/"))
                .header("x-api-key", key)
                .body(Full::default())
                .unwrap();
            let r = plain.request(req).await.unwrap();
            let (parts, body) = r.into_parts();
            let _ = body.collect().await.unwrap();
            (parts.status, parts.headers)
        }
    };
    let mut statuses = Vec::new();
    let mut refused: Option<HeaderMap> = None;
    for _ in 0..10 {
        let (status, headers) = call("alice").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(headers);
        } else {
            assert_eq!(headers["ratelimit-policy"], "\"default\";q=4;w=2");
        }
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429, 429, 429]);
    let refused = refused.unwrap();
    assert_eq!(refused["retry-after"], "1");
    assert_eq!(refused["ratelimit"], "\"default\";r=0;t=1");
    assert_eq!(refused["ratelimit-policy"], "\"default\";q=4;w=2");
    // Another key has its own bucket.
    assert_eq!(call("bob").await.0, 200);
    assert_eq!(admitted.load(Ordering::SeqCst), 5);
    // After t = 1.5 s, alice has burst + rate·t = 4 + 3 in all.
    clock.advance(Duration::from_millis(1500));
    let mut more = 0;
    for _ in 0..10 {
        if call("alice").await.0 == StatusCode::OK {
            more += 1;
        }
    }
    assert_eq!(more, 3);
    assert_eq!(admitted.load(Ordering::SeqCst), 5 + 3);
}
