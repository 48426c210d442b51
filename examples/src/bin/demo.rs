//! A flaky inventory service behind retry + circuit breaker + rate limiter.
//!
//! `cargo run -p resilience-examples --bin demo -- --calls 500 --failure-rate 0.2 --seed 42`
//!
//! The program runs on tokio's paused clock: backoff sleeps, the limiter's waits and the
//! breaker's recovery take simulated time only, so minutes pass in milliseconds and the
//! run is reproducible for a given seed.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use resilience::backoff::Backoff;
use resilience::circuit::CircuitBreakerConfig;
use resilience::rate_limit::RateLimitConfig;
use resilience::retry::RetryPolicy;
use resilience::{Error, Pipeline, registry};
use resilience_examples::{Args, FlakyService, ServiceError};
use tokio::sync::Mutex;

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::from_env();
    let calls: u64 = args.get("calls", 500)?;
    let failure_rate: f64 = args.get("failure-rate", 0.2)?;
    let seed: u64 = args.get("seed", 42)?;
    if !(0.0..=1.0).contains(&failure_rate) {
        return Err(format!("--failure-rate must be between 0 and 1 (got {failure_rate})").into());
    }

    let outage = Duration::from_secs(20)..Duration::from_secs(35);
    println!(
        "resilience demo: {calls} calls to a flaky inventory service (fails {:.0} % of calls, down from {:?} to {:?}), seed {seed}",
        failure_rate * 100.0,
        outage.start,
        outage.end
    );
    println!("simulated time: backoffs, waits and recovery cost no real time\n");

    let retry = RetryPolicy::builder()
        .name("inventory")
        .max_attempts(4)
        .backoff(
            Backoff::exponential(Duration::from_millis(200)).with_max_delay(Duration::from_secs(2)),
        )
        .budget(registry().retry_budget("inventory"))
        .seed(seed)
        .build()?;
    let breaker = registry().circuit_breaker(
        "inventory",
        CircuitBreakerConfig::builder()
            .failure_threshold(5)
            .recovery_timeout(Duration::from_secs(5))
            .success_threshold(2)
            .build()?,
    )?;
    let limiter = registry()
        .rate_limiter("inventory", RateLimitConfig::builder().per_second(20).burst(10).build()?)?;
    let pipeline = Pipeline::new()
        .with_retry(retry)
        .with_circuit_breaker(breaker)
        .with_rate_limiter(limiter)
        .with_timeout(Duration::from_secs(2));

    let service = Arc::new(Mutex::new(FlakyService::new(seed, failure_rate, outage)));
    let started = tokio::time::Instant::now();
    let (mut ok, mut failed, mut rejected) = (0u64, 0u64, 0u64);
    for _ in 0..calls {
        let result = pipeline
            .call_async(|| {
                let service = service.clone();
                async move { service.lock().await.request().await }
            })
            .await;
        match result {
            Ok(_) => ok += 1,
            Err(ServiceError::Resilience(
                Error::CircuitOpen { .. } | Error::RateLimited { .. },
            )) => rejected += 1,
            Err(_) => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let service = service.lock().await;
    println!("caller:  {calls} calls, {ok} succeeded, {failed} failed, {rejected} rejected fast");
    println!(
        "service: {} calls reached it ({:.2}x the caller's), {} failed",
        service.calls,
        service.calls as f64 / calls.max(1) as f64,
        service.failures
    );
    println!(
        "success rate {:.1} %, simulated time {:?}\n",
        ok as f64 * 100.0 / calls.max(1) as f64,
        started.elapsed()
    );
    println!("{}", registry().snapshot());
    Ok(())
}
