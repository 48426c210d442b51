//! The reqwest middleware against real axum servers on 127.0.0.1 free ports: retries
//! honour the server's headers, only idempotent requests are retried by default, the
//! breaker opens on 5xx and not on 404, per-host instances stay apart, the limiter
//! re-syncs from response headers and the upstream never sees more than the limit.
//!
//! No wall-clock waits: upstream hints are `Retry-After: 0`, and refills are a minute
//! apart, longer than any test runs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{any, get};
use parking_lot::Mutex;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use resilience::backoff::Backoff;
use resilience::circuit::CircuitState;
use resilience::reqwest::{ResilienceMiddleware, Retryable};
use resilience::{
    CircuitBreakerConfig, Error, OnLimit, RateLimitConfig, ResilienceConfig, RetryPolicy, registry,
};

#[derive(Clone, Default)]
struct Counts(Arc<Mutex<HashMap<String, u32>>>);

impl Counts {
    fn hit(&self, what: String) -> u32 {
        let mut m = self.0.lock();
        let n = m.entry(what).or_default();
        *n += 1;
        *n
    }

    fn get(&self, what: &str) -> u32 {
        self.0.lock().get(what).copied().unwrap_or(0)
    }
}

async fn upstream() -> (SocketAddr, Counts) {
    let counts = Counts::default();
    let app = Router::new()
        // 503 with Retry-After twice per method, then 200.
        .route(
            "/flaky",
            any(|State(c): State<Counts>, method: axum::http::Method| async move {
                if c.hit(format!("{method} /flaky")) <= 2 {
                    (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")], "busy")
                } else {
                    (StatusCode::OK, [("x-ok", "1")], "ok")
                }
            }),
        )
        .route(
            "/missing",
            get(|State(c): State<Counts>| async move {
                c.hit("/missing".into());
                StatusCode::NOT_FOUND
            }),
        )
        .route(
            "/broken",
            get(|State(c): State<Counts>| async move {
                c.hit("/broken".into());
                StatusCode::BAD_GATEWAY
            }),
        )
        .route(
            "/ok",
            get(|State(c): State<Counts>| async move {
                c.hit("/ok".into());
                "ok"
            }),
        )
        // Reports an exhausted quota that resets in an hour.
        .route(
            "/exhausted",
            get(|State(c): State<Counts>| async move {
                c.hit("/exhausted".into());
                let headers = [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "3600")];
                (StatusCode::OK, headers, "last one")
            }),
        )
        .with_state(counts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, counts)
}

fn retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::constant(Duration::ZERO))
        .build()
        .unwrap()
}

fn client(middleware: ResilienceMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new()).with(middleware).build()
}

fn rejection(e: &reqwest_middleware::Error) -> Option<&Error> {
    match e {
        reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<Error>(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_is_retried_on_503_until_the_success() {
    let (addr, counts) = upstream().await;
    let config = ResilienceConfig::default().with_retry(retry(4));
    let c = client(ResilienceMiddleware::from_config("reqwest-get-retry", &config).unwrap());
    let r = c.get(format!("http://{addr}/flaky")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ok"], "1");
    assert_eq!(counts.get("GET /flaky"), 3);
    let r = c.get(format!("http://{addr}/missing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(counts.get("/missing"), 1, "a 404 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_retried_only_with_an_idempotency_key_or_when_opted_in() {
    let (addr, counts) = upstream().await;
    let config = ResilienceConfig::default().with_retry(retry(4));
    let c = client(ResilienceMiddleware::from_config("reqwest-post", &config).unwrap());
    let url = format!("http://{addr}/flaky");
    let r = c.post(&url).body("order").send().await.unwrap();
    assert_eq!(r.status(), 503, "the 503 is returned as it is");
    assert_eq!(counts.get("POST /flaky"), 1, "a POST without an idempotency key is not retried");
    let r = c.post(&url).header("Idempotency-Key", "k-1").body("order").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(counts.get("POST /flaky"), 3, "with the key: retried after the second 503");
    let r = c.patch(&url).with_extension(Retryable).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(counts.get("PATCH /flaky"), 3, "opted in: retried");
    let r = c.put(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(counts.get("PUT /flaky"), 3, "PUT is idempotent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_5xx_not_on_404_and_per_host_circuits_stay_apart() {
    let (bad, bad_counts) = upstream().await;
    let (good, good_counts) = upstream().await;
    let breaker = CircuitBreakerConfig::builder()
        .failure_threshold(3)
        .recovery_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let config = ResilienceConfig::default().with_circuit_breaker(breaker);
    let c = client(ResilienceMiddleware::from_config("reqwest-breaker", &config).unwrap());
    for _ in 0..10 {
        let r = c.get(format!("http://{bad}/missing")).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    let circuits = registry().keyed_circuit_breakers().get("reqwest-breaker").unwrap();
    assert_eq!(circuits.state(bad.to_string().as_str()), CircuitState::Closed);
    for _ in 0..5 {
        let _ = c.get(format!("http://{bad}/broken")).send().await;
        let r = c.get(format!("http://{good}/ok")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(bad_counts.get("/broken"), 3, "the circuit of the bad host opened after 3");
    assert_eq!(good_counts.get("/ok"), 5);
    assert_eq!(circuits.state(bad.to_string().as_str()), CircuitState::Open);
    assert_eq!(circuits.state(good.to_string().as_str()), CircuitState::Closed);
    let e = c.get(format!("http://{bad}/ok")).send().await.unwrap_err();
    assert!(matches!(rejection(&e), Some(Error::CircuitOpen { .. })), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_resyncs_from_response_headers_and_the_upstream_never_sees_more() {
    let (addr, counts) = upstream().await;
    let limit = RateLimitConfig::builder()
        .per_minute(1)
        .burst(10)
        .on_limit(OnLimit::Reject)
        .build()
        .unwrap();
    let config = ResilienceConfig::default().with_rate_limit(limit);
    let c = client(ResilienceMiddleware::from_config("reqwest-limit", &config).unwrap());
    // The server says its quota is spent: the next call is refused locally.
    let r = c.get(format!("http://{addr}/exhausted")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let e = c.get(format!("http://{addr}/ok")).send().await.unwrap_err();
    assert!(matches!(rejection(&e), Some(Error::RateLimited { .. })), "{e}");
    assert_eq!(counts.get("/ok"), 0);
    // A one-bucket middleware: never more than the burst reaches the upstream.
    let (addr, counts) = upstream().await;
    let limit = RateLimitConfig::builder()
        .per_minute(1)
        .burst(4)
        .on_limit(OnLimit::Reject)
        .build()
        .unwrap();
    let config = ResilienceConfig::default().with_rate_limit(limit);
    let one = ResilienceMiddleware::from_config("reqwest-limit-one", &config)
        .unwrap()
        .one_instance()
        .unwrap();
    let c = client(one);
    let mut refused = 0;
    for _ in 0..12 {
        if c.get(format!("http://{addr}/ok")).send().await.is_err() {
            refused += 1;
        }
    }
    assert!(counts.get("/ok") <= 4 + 1, "burst, plus at most one refill in the test's time");
    assert_eq!(counts.get("/ok") + refused, 12);
    assert!(registry().rate_limiters().get("reqwest-limit-one").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_transport_error_not_a_rejection() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = ResilienceConfig::default().with_retry(retry(3));
    let c = client(ResilienceMiddleware::from_config("reqwest-refused", &config).unwrap());
    let e = c.post(format!("http://{addr}/")).send().await.unwrap_err();
    assert!(matches!(&e, reqwest_middleware::Error::Reqwest(r) if r.is_connect()), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuits_keyed_by_a_closure_of_the_request_stay_apart() {
    let (addr, counts) = upstream().await;
    let breaker = CircuitBreakerConfig::builder()
        .failure_threshold(2)
        .recovery_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let config = ResilienceConfig::default().with_circuit_breaker(breaker);
    let per_tenant = ResilienceMiddleware::from_config("reqwest-tenants", &config)
        .unwrap()
        .key_by(|r: &reqwest::Request| {
            r.headers().get("x-tenant").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
        })
        .unwrap();
    let c = client(per_tenant);
    for _ in 0..4 {
        let _ = c.get(format!("http://{addr}/broken")).header("x-tenant", "a").send().await;
    }
    assert_eq!(counts.get("/broken"), 2, "tenant a's circuit opened after 2");
    let r = c.get(format!("http://{addr}/broken")).header("x-tenant", "b").send().await.unwrap();
    assert_eq!(r.status(), 502, "tenant b's circuit is its own");
    let circuits = registry().keyed_circuit_breakers().get("reqwest-tenants").unwrap();
    assert_eq!(circuits.state("a"), CircuitState::Open);
    assert_eq!(circuits.state("b"), CircuitState::Closed);
}
