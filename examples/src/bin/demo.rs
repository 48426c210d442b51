//! A flaky inventory service behind `#[retry]`, `#[circuit_breaker]`, `#[rate_limit]` and
//! `#[timeout]`.
//!
//! `cargo run -p resilience-examples --bin demo -- --calls 500 --failure-rate 0.2 --seed 42`
//!
//! The program runs on tokio's paused clock: backoff sleeps, the limiter's waits and the
//! breaker's recovery take simulated time only, so minutes pass in milliseconds. Every
//! random choice (the service's failures, the retry jitter) comes from `--seed`: one seed
//! prints one result.

use std::process::ExitCode;
use std::time::Duration;

use resilience::backoff::{Backoff, Jitter};
use resilience::retry::RetryPolicy;
use resilience::{Error, circuit_breaker, rate_limit, registry, retry, timeout};
use resilience_examples::{Args, FlakyService, ServiceError};
use tokio::sync::Mutex;

/// One stock check. The written order is the runtime order: a retry around a breaker
/// around a rate limiter around a 2 s timeout per attempt.
#[retry(max_attempts = 4, backoff = exponential, initial_delay = 200ms, max_delay = 2s, budget = "inventory")]
#[circuit_breaker(name = "inventory", failure_threshold = 5, recovery_timeout = 5s)]
#[rate_limit(name = "inventory", per_second = 20, burst = 10)]
#[timeout(2s)]
async fn check_stock(service: &Mutex<FlakyService>, sku: u64) -> Result<u64, ServiceError> {
    let _ = sku;
    service.lock().await.request().await
}

/// The name `#[retry]` gives `check_stock`'s policy (`module::fn`).
const CHECK_STOCK: &str = concat!(module_path!(), "::check_stock");

/// `check_stock`'s retry policy as its attribute writes it, with the backoff jitter drawn
/// from `seed`: every random choice of a seeded run comes from the seed, so one seed
/// prints one result. Set before the first call (a call site resolves its policy once).
fn seed_retry_jitter(seed: u64) -> Result<(), Box<dyn std::error::Error>> {
    let policy = RetryPolicy::builder()
        .name(CHECK_STOCK)
        .max_attempts(4)
        .backoff(
            Backoff::exponential(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(2))
                .with_jitter(Jitter::Full),
        )
        .budget(registry().retry_budget("inventory"))
        .seed(seed)
        .build()?;
    registry().configure_retry(CHECK_STOCK, policy);
    Ok(())
}

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
    let outage = Duration::from_secs(20)..Duration::from_secs(30);
    println!(
        "resilience demo: {calls} calls to an inventory service that fails {:.0} % of calls and is down from {:?} to {:?} (seed {seed})",
        failure_rate * 100.0,
        outage.start,
        outage.end
    );
    println!("simulated time: backoffs, waits and recovery cost no real time\n");

    seed_retry_jitter(seed)?;
    let service = Mutex::new(FlakyService::new(seed, failure_rate, outage.clone()));
    let started = tokio::time::Instant::now();
    let (mut ok, mut failed, mut rejected) = (0u64, 0u64, 0u64);
    let (mut outside, mut outside_ok) = (0u64, 0u64);
    for sku in 0..calls {
        let during_outage = outage.contains(&started.elapsed());
        let result = check_stock(&service, sku).await;
        if !during_outage {
            outside += 1;
            outside_ok += u64::from(result.is_ok());
        }
        match result {
            Ok(_) => ok += 1,
            Err(ServiceError::Resilience(
                Error::CircuitOpen { .. } | Error::RateLimited { .. },
            )) => rejected += 1,
            Err(_) => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let service = service.lock().await;
    let pct = |n: u64, of: u64| n as f64 * 100.0 / of.max(1) as f64;
    println!(
        "caller:  {calls} calls: {ok} succeeded, {failed} failed, {rejected} rejected fast (circuit open)"
    );
    println!(
        "         outside the outage {:.1} % succeeded ({outside_ok} of {outside})",
        pct(outside_ok, outside)
    );
    println!(
        "service: {} requests reached it ({:.2}x the calls), {} failed",
        service.calls,
        service.calls as f64 / calls.max(1) as f64,
        service.failures
    );
    println!("simulated time: {:.1} s\n", started.elapsed().as_secs_f64());
    println!("{}", registry().snapshot());
    Ok(())
}
