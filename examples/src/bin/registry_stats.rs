//! Dump the registry: every named circuit, limiter, bulkhead and retry budget, as the
//! stats table operators read and as JSON for a metrics endpoint.
//!
//! `cargo run -p resilience-examples --bin registry_stats`

use std::time::Duration;

use resilience::{Error, bulkhead, circuit_breaker, rate_limit, registry, retry};

#[derive(Debug)]
enum AppError {
    Unavailable,
    Resilience(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Resilience(e)
    }
}

#[circuit_breaker(name = "payments", failure_threshold = 3, recovery_timeout = 30s)]
async fn charge(fail: bool) -> Result<(), AppError> {
    if fail { Err(AppError::Unavailable) } else { Ok(()) }
}

#[rate_limit(name = "search", per_second = 5, burst = 5, on_limit = reject)]
async fn search(_q: &str) -> Result<u32, AppError> {
    Ok(3)
}

#[retry(max_attempts = 3, initial_delay = 100ms, budget = "inventory")]
#[bulkhead(name = "inventory", max_concurrent = 4)]
async fn stock(n: u32) -> Result<u32, AppError> {
    if n.is_multiple_of(4) { Err(AppError::Unavailable) } else { Ok(n) }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    for i in 0..10 {
        if let Err(AppError::Resilience(e)) = charge(i >= 6).await {
            println!("charge #{i}: {e}");
        }
    }
    for _ in 0..8 {
        let _ = search("boots").await;
    }
    for n in 0..20 {
        let _ = stock(n).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let snapshot = registry().snapshot();
    println!("\n{snapshot}");
    println!("as JSON:\n{}", serde_json::to_string_pretty(&snapshot)?);
    Ok(())
}
