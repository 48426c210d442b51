//! A database connector with the `postgres` preset: retries with a budget, a circuit
//! breaker, a rate limit and a 30 s timeout per attempt, plus a bulkhead of 4 connections.
//!
//! `cargo run -p resilience-examples --bin postgres_connector -- --failure-rate 0.2`
//!
//! Runs on tokio's paused clock against a simulated database.

use std::process::ExitCode;
use std::time::Duration;

use resilience::{Error, registry, resilient};
use resilience_examples::Args;
use tokio::sync::Mutex;

#[derive(Debug)]
enum DbError {
    /// The connection dropped (transient).
    ConnectionReset,
    /// A resilience layer refused or cut short the call.
    Resilience(Error),
}

impl From<Error> for DbError {
    fn from(e: Error) -> Self {
        DbError::Resilience(e)
    }
}

/// A simulated database whose connections drop at `failure_rate`.
struct FakePostgres {
    rng: Mutex<fastrand::Rng>,
    failure_rate: f64,
}

impl FakePostgres {
    async fn execute(&self, sql: &str) -> Result<u64, DbError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if self.rng.lock().await.f64() < self.failure_rate {
            return Err(DbError::ConnectionReset);
        }
        Ok(sql.len() as u64)
    }
}

struct Repository {
    db: FakePostgres,
}

impl Repository {
    /// The `postgres` preset's layers, with a bulkhead added (the preset has none).
    #[resilient(
        preset = "postgres",
        circuit_breaker(name = "postgres"),
        rate_limit(name = "postgres"),
        bulkhead(name = "postgres", max_concurrent = 4, max_wait = 1s)
    )]
    async fn count_orders(&self, customer: u64) -> Result<u64, DbError> {
        self.db.execute(&format!("select count(*) from orders where customer = {customer}")).await
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    let args = Args::from_env();
    let failure_rate = match args.get("failure-rate", 0.2) {
        Ok(rate) if (0.0..=1.0).contains(&rate) => rate,
        _ => {
            eprintln!("postgres_connector: --failure-rate must be a number between 0 and 1");
            return ExitCode::FAILURE;
        }
    };
    let repo = Repository {
        db: FakePostgres { rng: Mutex::new(fastrand::Rng::with_seed(3)), failure_rate },
    };
    let (mut ok, mut failed, mut rejected) = (0, 0, 0);
    for customer in 0..200 {
        match repo.count_orders(customer).await {
            Ok(_) => ok += 1,
            Err(DbError::Resilience(e)) if e.is_rejection() => rejected += 1,
            Err(_) => failed += 1,
        }
    }
    println!(
        "200 queries: {ok} succeeded, {failed} failed, {rejected} rejected (connections drop {:.0} % of the time)\n",
        failure_rate * 100.0
    );
    println!("{}", registry().snapshot());
    ExitCode::SUCCESS
}
