//! The demo's workload with its metrics on `http://127.0.0.1:<port>/metrics`, through
//! `metrics-exporter-prometheus` (feature `metrics` of `resilience`).
//!
//! `cargo run -p resilience-examples --bin prometheus -- --port 9000 --calls 300`
//!
//! The workload runs on tokio's paused clock (simulated time, as in `demo`), then the
//! exporter keeps serving and the gauges are refreshed every second until the process is
//! stopped. `--print true` prints the scraped text and exits instead.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use resilience::{bulkhead, circuit_breaker, rate_limit, registry, retry, timeout};
use resilience_examples::{Args, FlakyService, ServiceError};
use tokio::sync::Mutex;

/// One stock check through every layer: a retry around a breaker around a rate limiter
/// around a bulkhead around a 2 s timeout per attempt.
#[retry(max_attempts = 4, backoff = exponential, initial_delay = 200ms, max_delay = 2s)]
#[circuit_breaker(name = "inventory", failure_threshold = 5, recovery_timeout = 5s)]
#[rate_limit(name = "inventory", per_second = 20, burst = 10)]
#[bulkhead(name = "inventory", max_concurrent = 4)]
#[timeout(2s)]
async fn check_stock(service: &Mutex<FlakyService>) -> Result<u64, ServiceError> {
    service.lock().await.request().await
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prometheus: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::from_env();
    let port: u16 = args.get("port", 9000)?;
    let calls: u64 = args.get("calls", 300)?;
    let seed: u64 = args.get("seed", 42)?;
    let print: bool = args.get("print", false)?;

    // The exporter first (on its own thread), then the subscription that feeds it.
    PrometheusBuilder::new()
        .with_http_listener(([127, 0, 0, 1], port))
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            resilience::metrics::DURATION_BUCKETS,
        )?
        .install()?;
    resilience::metrics::install().forever();

    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
    runtime.block_on(async {
        let outage = Duration::from_secs(10)..Duration::from_secs(15);
        let service = Mutex::new(FlakyService::new(seed, 0.2, outage));
        for _ in 0..calls {
            let _ = check_stock(&service).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    resilience::metrics::record_gauges(&registry().snapshot());

    if print {
        print!("{}", scrape(port)?);
        return Ok(());
    }
    println!("{calls} calls made; metrics on http://127.0.0.1:{port}/metrics (Ctrl-C to stop)");
    loop {
        std::thread::sleep(Duration::from_secs(1));
        resilience::metrics::record_gauges(&registry().snapshot());
    }
}

/// The exposition text, fetched over HTTP like a Prometheus server would.
fn scrape(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or(response))
}
