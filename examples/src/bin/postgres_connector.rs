//! A database connector on the `postgres` preset: methods of a connection pool wrapped
//! with `#[resilient]`, connection errors retried, SQL errors not.
//!
//! `cargo run -p resilience-examples --bin postgres_connector`
//!
//! The database is simulated: 15 % of queries hit a reset connection, and the server
//! goes away for 45 s in the middle of the run. Runs on tokio's paused clock.

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use resilience::classify::{self, Classify, ErrorClass};
use resilience::{CircuitState, Error, registry, resilient};
use tokio::time::Instant;

#[derive(Debug)]
enum DbError {
    /// The connection failed: worth retrying, depending on the kind.
    Io(io::ErrorKind),
    /// The statement is wrong: retrying cannot help.
    Sql(String),
    /// A resilience layer refused the call.
    Resilience(Error),
}

impl From<Error> for DbError {
    fn from(e: Error) -> Self {
        DbError::Resilience(e)
    }
}

impl Classify for DbError {
    fn class(&self) -> ErrorClass {
        match self {
            DbError::Io(kind) => classify::io_error_kind(*kind),
            DbError::Sql(_) => ErrorClass::Permanent,
            DbError::Resilience(e) => e.class(),
        }
    }
}

/// A pool of connections to a simulated PostgreSQL server.
struct Pool {
    rng: Mutex<fastrand::Rng>,
    started: Instant,
    queries: Mutex<u64>,
}

impl Pool {
    fn new(seed: u64) -> Self {
        Pool {
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            started: Instant::now(),
            queries: Mutex::new(0),
        }
    }

    /// Every layer of the `postgres` preset: 3 attempts from 1 s, a breaker that opens
    /// after 5 failures for 30 s, 300 queries a minute (burst 50), 30 s per attempt.
    #[resilient(
        preset = "postgres",
        circuit_breaker(name = "orders-db"),
        rate_limit(name = "orders-db")
    )]
    async fn query(&self, sql: &str) -> Result<u64, DbError> {
        if let Ok(mut q) = self.queries.lock() {
            *q += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        if !sql.to_ascii_lowercase().starts_with("select") {
            return Err(DbError::Sql(format!("syntax error at or near \"{sql}\"")));
        }
        let now = self.started.elapsed();
        if (Duration::from_secs(60)..Duration::from_secs(105)).contains(&now) {
            return Err(DbError::Io(io::ErrorKind::ConnectionRefused));
        }
        let reset = self.rng.lock().map(|mut r| r.f64() < 0.15).unwrap_or(false);
        if reset { Err(DbError::Io(io::ErrorKind::ConnectionReset)) } else { Ok(1) }
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let pool = Pool::new(7);
    let (mut ok, mut failed, mut rejected) = (0u32, 0u32, 0u32);
    let mut sql_error = None;
    for i in 0..600u32 {
        let sql =
            if i == 100 { "selct * from orders" } else { "select * from orders where id = $1" };
        match pool.query(sql).await {
            Ok(_) => ok += 1,
            Err(DbError::Resilience(Error::CircuitOpen { .. })) => rejected += 1,
            Err(DbError::Sql(e)) => {
                failed += 1;
                sql_error = Some(e);
            }
            Err(_) => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let queries = pool.queries.lock().map(|q| *q).unwrap_or(0);
    println!(
        "600 queries over {:?} of simulated time, the server down from 60 s to 105 s",
        pool.started.elapsed()
    );
    println!(
        "  {ok} succeeded, {failed} failed, {rejected} rejected fast while the circuit was open"
    );
    println!("  {queries} statements reached the server");
    if let Some(e) = sql_error {
        println!("  the bad statement failed once, not retried: {e}");
    }
    let state = registry().circuit_breakers().stats("orders-db").map(|s| s.state);
    println!("  circuit `orders-db` is {}", state.map_or("missing", CircuitState::as_str));
    println!("\n{}", registry().snapshot());
}
