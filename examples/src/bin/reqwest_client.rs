//! A reqwest client of a local flaky API through `ResilienceMiddleware`: GETs are retried
//! on 503 after the server's `Retry-After`, a POST is retried only with an
//! `Idempotency-Key`, one circuit per upstream host, and the limiter re-syncs from the
//! server's `X-RateLimit-*` headers.
//!
//! It starts the API on a free 127.0.0.1 port, makes its calls, prints what each got and
//! exits.
//!
//! `cargo run -p resilience-examples --bin reqwest_client`

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use reqwest_middleware::ClientBuilder;
use resilience::backoff::Backoff;
use resilience::reqwest::ResilienceMiddleware;
use resilience::{CircuitBreakerConfig, RateLimitConfig, ResilienceConfig, RetryPolicy};

/// Every other call fails with 503 and `Retry-After: 0`; every answer tells the quota.
async fn orders(
    State(calls): State<Arc<AtomicU32>>,
) -> (StatusCode, [(&'static str, String); 3], &'static str) {
    let n = calls.fetch_add(1, Ordering::SeqCst);
    let quota = [
        ("retry-after", "0".to_owned()),
        ("x-ratelimit-limit", "100".to_owned()),
        ("x-ratelimit-remaining", (100 - n.min(100)).to_string()),
    ];
    if n % 2 == 0 {
        (StatusCode::SERVICE_UNAVAILABLE, quota, "busy")
    } else {
        (StatusCode::OK, quota, "[{\"id\":1}]")
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let calls = Arc::new(AtomicU32::new(0));
    let app = Router::new().route("/orders", get(orders).post(orders)).with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = ResilienceConfig::default()
        .with_retry(
            RetryPolicy::builder()
                .max_attempts(3)
                .backoff(Backoff::exponential(Duration::from_millis(50)))
                .build()?,
        )
        .with_circuit_breaker(CircuitBreakerConfig::builder().failure_threshold(5).build()?)
        .with_rate_limit(RateLimitConfig::builder().per_second(20).burst(20).build()?);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(ResilienceMiddleware::from_config("orders-api", &config)?)
        .build();
    let url = format!("http://{addr}/orders");

    for i in 0..3 {
        let r = client.get(&url).send().await?;
        println!("GET  #{i}: {} {}", r.status(), r.text().await?);
    }
    let r = client.post(&url).body("{}").send().await?;
    println!("POST without a key: {} (sent once)", r.status());
    let r = client.post(&url).header("Idempotency-Key", "order-7").body("{}").send().await?;
    println!("POST with a key:    {}", r.status());
    println!("the API saw {} requests", calls.load(Ordering::SeqCst));
    Ok(())
}
