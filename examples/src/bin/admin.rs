//! A small service under a simulated flaky load, with the admin surface mounted at
//! `/resilience`: open the printed URL to watch its circuits, limiters and bulkheads live,
//! and force a circuit open, close or disable it with the token.
//!
//! `cargo run -p resilience-examples --bin admin` serves on `127.0.0.1:9090` until Ctrl-C.
//!
//! Options: `--port N` (0 picks a free port), `--duration SECS` (serve that long, then
//! exit), `--instances N` (N more named circuits, limiters and bulkheads, to see the
//! dashboard crowded), `--token T` (the operator token, `demo-token` by default).
//!
//! The service's own routes: `GET /api/payments/ok` and `GET /api/payments/fail` call the
//! payment provider through the `payments` circuit (the second one fails), so a client
//! can drive failures until the circuit opens.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use resilience::admin::{self, AdminConfig};
use resilience::circuit::CircuitBreakerConfig;
use resilience::rate_limit::{OnLimit, RateLimitConfig};
use resilience::{BulkheadConfig, Error, bulkhead, circuit_breaker, rate_limit, registry};

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

#[circuit_breaker(name = "payments", failure_threshold = 5, recovery_timeout = 60s)]
async fn charge(fail: bool) -> Result<(), AppError> {
    if fail { Err(AppError::Unavailable) } else { Ok(()) }
}

#[circuit_breaker(name = "inventory", failure_rate = 0.5, window = 100, min_calls = 20, recovery_timeout = 5s)]
async fn stock(fail: bool) -> Result<u32, AppError> {
    if fail { Err(AppError::Unavailable) } else { Ok(12) }
}

#[rate_limit(name = "search", per_second = 20, burst = 40, on_limit = reject)]
async fn search() -> Result<u32, AppError> {
    Ok(3)
}

#[bulkhead(name = "database", max_concurrent = 8, max_wait = 50ms)]
async fn query(work: Duration) -> Result<(), AppError> {
    tokio::time::sleep(work).await;
    Ok(())
}

struct Args {
    port: u16,
    duration: Option<Duration>,
    instances: usize,
    token: String,
}

fn args() -> Result<Args, String> {
    let mut args = Args { port: 9090, duration: None, instances: 0, token: "demo-token".into() };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--duration" => {
                let secs: f64 = value()?.parse().map_err(|e| format!("--duration: {e}"))?;
                args.duration = Some(Duration::from_secs_f64(secs.max(0.0)));
            }
            "--instances" => {
                args.instances = value()?.parse().map_err(|e| format!("--instances: {e}"))?;
            }
            "--token" => args.token = value()?,
            other => {
                return Err(format!(
                    "unknown option {other} (use --port N, --duration SECS, --instances N, --token T)"
                ));
            }
        }
    }
    Ok(args)
}

/// `GET /api/payments/{ok|fail}`: one call through the `payments` circuit.
async fn payments(fail: bool) -> (StatusCode, String) {
    match charge(fail).await {
        Ok(()) => (StatusCode::OK, "charged\n".into()),
        Err(AppError::Unavailable) => (StatusCode::BAD_GATEWAY, "payment provider failed\n".into()),
        Err(AppError::Resilience(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}

/// Many named instances in several states, as a large service has.
fn crowd(n: usize) -> Result<(), resilience::ConfigError> {
    let breaker = CircuitBreakerConfig::builder()
        .failure_threshold(3)
        .recovery_timeout(Duration::from_secs(600))
        .build()?;
    let limit =
        RateLimitConfig::builder().per_second(50).burst(100).on_limit(OnLimit::Reject).build()?;
    let bulkhead = BulkheadConfig::builder().max_concurrent(16).build()?;
    if n > 0 {
        // One circuit per shop: a few shops failing, one of them open.
        let shops = registry().keyed_circuit_breakers().get_or_create("shops", breaker.clone())?;
        for (shop, failures) in [("frozen", 3), ("flaky", 1), ("fine", 0), ("busy", 0)] {
            let key = format!("{shop}.myshopify.com");
            for _ in 0..failures {
                let _ =
                    shops.call(&key, || Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
            }
            let _ = shops.call(&key, || Ok::<(), Error>(()));
        }
    }
    for i in 0..n {
        let b = registry()
            .circuit_breakers()
            .get_or_create(&format!("tenant-{i:03}.api"), breaker.clone())?;
        let failures = if i % 23 == 5 { 3 } else { i % 3 };
        for _ in 0..failures {
            let _ = b.call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
        }
        for _ in 0..(i % 7) {
            let _ = b.call(|| Ok::<(), Error>(()));
        }
        if i % 41 == 7 {
            b.force_open();
        }
        if i % 3 == 0 {
            let l = registry()
                .rate_limiters()
                .get_or_create(&format!("tenant-{i:03}.quota"), limit.clone())?;
            let _ = l.try_acquire((i % 101) as u32);
        }
        if i % 5 == 0 {
            registry()
                .bulkheads()
                .get_or_create(&format!("tenant-{i:03}.pool"), bulkhead.clone())?;
        }
    }
    Ok(())
}

/// The simulated flaky load: inventory fails often, payments rarely, search bursts past
/// its limit, database queries hold the bulkhead for a while.
async fn load() {
    let mut rng = fastrand::Rng::with_seed(7);
    loop {
        let _ = charge(rng.f64() < 0.05).await;
        let _ = stock(rng.f64() < 0.3).await;
        for _ in 0..rng.usize(0..4) {
            let _ = search().await;
        }
        let work = Duration::from_millis(rng.u64(20..400));
        tokio::spawn(async move { query(work).await });
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    crowd(args.instances)?;
    // Resolve the call sites once so every instance shows up at once.
    let _ = charge(false).await;
    let _ = stock(false).await;
    let _ = search().await;
    let _ = query(Duration::ZERO).await;

    let config = AdminConfig::new().with_token(&args.token);
    let app = Router::new()
        .route("/api/payments/ok", get(|| payments(false)))
        .route("/api/payments/fail", get(|| payments(true)))
        .nest("/resilience", admin::router(registry(), config));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let addr = listener.local_addr()?;
    println!("dashboard: http://{addr}/resilience");
    println!("operator token: {}", args.token);

    tokio::spawn(load());
    let serve = axum::serve(listener, app);
    match args.duration {
        Some(d) => {
            serve.with_graceful_shutdown(tokio::time::sleep(d)).await?;
        }
        None => serve.await?,
    }
    Ok(())
}
