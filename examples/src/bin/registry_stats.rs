//! The attributes at work against a simulated flaky service, then the registry's stats
//! table: calls, successes, failures and rejections per circuit and limiter, and the
//! retries the budget allowed.
//!
//! `cargo run -p resilience-examples --bin registry_stats -- --calls 300 --failure-rate 0.2 --seed 7`
//!
//! Runs on tokio's paused clock: backoffs, limiter waits and breaker recovery take
//! simulated time only.

use std::process::ExitCode;
use std::time::Duration;

use resilience::{Error, circuit_breaker, rate_limit, registry, retry, timeout};
use resilience_examples::{Args, FlakyService, ServiceError};
use tokio::sync::Mutex;

/// Retry outside, then the breaker (it sees every attempt), the limiter and a timeout
/// per attempt: the written order is the runtime order.
#[retry(max_attempts = 4, initial_delay = 200ms, max_delay = 2s, budget = "inventory")]
#[circuit_breaker(name = "inventory", failure_threshold = 5, recovery_timeout = 5s)]
#[rate_limit(name = "inventory", per_second = 20, burst = 10)]
#[timeout(2s)]
async fn check_stock(service: &Mutex<FlakyService>) -> Result<u64, ServiceError> {
    service.lock().await.request().await
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registry_stats: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::from_env();
    let calls: u64 = args.get("calls", 300)?;
    let failure_rate: f64 = args.get("failure-rate", 0.2)?;
    let seed: u64 = args.get("seed", 7)?;
    if !(0.0..=1.0).contains(&failure_rate) {
        return Err(format!("--failure-rate must be between 0 and 1 (got {failure_rate})").into());
    }
    let outage = Duration::from_secs(4)..Duration::from_secs(8);
    println!(
        "{calls} calls through #[retry] #[circuit_breaker] #[rate_limit] #[timeout] to a service failing {:.0} % of calls (down from {:?} to {:?})\n",
        failure_rate * 100.0,
        outage.start,
        outage.end
    );

    let service = Mutex::new(FlakyService::new(seed, failure_rate, outage));
    let (mut ok, mut failed, mut rejected) = (0u64, 0u64, 0u64);
    for _ in 0..calls {
        match check_stock(&service).await {
            Ok(_) => ok += 1,
            Err(ServiceError::Resilience(
                Error::CircuitOpen { .. } | Error::RateLimited { .. },
            )) => rejected += 1,
            Err(_) => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reached = service.lock().await.calls;
    println!("caller:  {calls} calls, {ok} succeeded, {failed} failed, {rejected} rejected fast");
    println!("service: {reached} attempts reached it\n");
    println!("{}", registry().snapshot());
    Ok(())
}
