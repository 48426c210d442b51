//! Two worker processes share one Shopify-style rate limit through Redis; the parent prints
//! their combined rate.
//!
//! `cargo run -p resilience-examples --bin redis_workers`
//!
//! The parent finds a Redis — the one `RESILIENCE_REDIS_URL` names, else a `redis-server`
//! it starts on a free loopback port (no persistence) and stops at the end — and runs this
//! same binary twice as workers (`--worker`). Each worker calls a simulated Shopify API
//! through `#[rate_limit(name = "shopify", ..., backend = "redis")]`; both use the same
//! name and key prefix, so one bucket in Redis serves both processes. Shopify's own bucket
//! is 40 calls leaking 2 per second; here it is 20 calls refilled at 20 per second, so the
//! run takes seconds, not minutes.
//!
//! With neither `RESILIENCE_REDIS_URL` nor a `redis-server` binary, it says so and exits
//! successfully without running the workers.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use resilience::rate_limit;
use resilience::redis::{self, RedisConfig, URL_ENV};

type Failure = Box<dyn Error>;

/// The shared limit, as written in the attribute below.
const PER_SECOND: f64 = 20.0;
const BURST: f64 = 20.0;
const WORKERS: u32 = 2;
const CALLS_PER_WORKER: u32 = 60;

/// What a call to the simulated shop can fail with.
#[derive(Debug)]
enum ShopError {
    /// The limiter refused the call (here: only if Redis cannot be reached, since the
    /// limit fails closed and otherwise waits for its slot).
    Resilience(resilience::Error),
}

impl std::fmt::Display for ShopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShopError::Resilience(e) => write!(f, "{e}"),
        }
    }
}

impl Error for ShopError {}

impl From<resilience::Error> for ShopError {
    fn from(e: resilience::Error) -> Self {
        ShopError::Resilience(e)
    }
}

/// One page of orders from the shop, paced by the limit that every worker shares: the
/// bucket lives in Redis under `{prefix}:rl:shopify`. Waits for its slot when the bucket
/// is empty; fails closed (no call) if Redis cannot be reached. Returns when the request
/// left (µs since the Unix epoch, comparable across the processes).
#[rate_limit(
    name = "shopify",
    per_second = 20,
    burst = 20,
    backend = "redis",
    fail_mode = "closed"
)]
async fn orders_page(page: u32) -> Result<u64, ShopError> {
    let sent_at = unix_micros();
    // The network round trip to the shop.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let _ = page;
    Ok(sent_at)
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, id, prefix] if flag == "--worker" => worker(id, prefix),
        [] => parent(),
        _ => Err("usage: redis_workers (the workers are started by the parent)".into()),
    }
}

// ---------------------------------------------------------------------------------------
// Worker

/// Makes `CALLS_PER_WORKER` calls through the shared limit and prints its share: one line
/// for people, one `result ...` line for the parent.
fn worker(id: &str, prefix: &str) -> Result<(), Failure> {
    let url = std::env::var(URL_ENV).map_err(|_| format!("worker {id}: {URL_ENV} is not set"))?;
    // The process-wide backend, which `backend = "redis"` attributes use: the prefix
    // keeps this run's keys apart from anything else on that Redis.
    redis::configure(RedisConfig::builder(url).key_prefix(prefix).build()?)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let started = Instant::now();
    let (granted, failed, first, last) = runtime.block_on(async {
        let (mut granted, mut failed) = (0u32, 0u32);
        let (mut first, mut last) = (u64::MAX, 0u64);
        for page in 0..CALLS_PER_WORKER {
            match orders_page(page).await {
                Ok(sent_at) => {
                    granted += 1;
                    first = first.min(sent_at);
                    last = last.max(sent_at);
                }
                Err(e) => {
                    failed += 1;
                    // The first failure says why; the count says how often.
                    if failed == 1 {
                        eprintln!("worker {id}: page {page}: {e}");
                    }
                }
            }
        }
        (granted, failed, first, last)
    });
    let took = started.elapsed().as_secs_f64();
    println!(
        "worker {id} (pid {}): {granted} of {CALLS_PER_WORKER} calls granted in {took:.2} s = {:.1} calls/s",
        std::process::id(),
        f64::from(granted) / took
    );
    println!("result granted={granted} failed={failed} first_us={first} last_us={last}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Parent

/// A `redis-server` this example started; stopped when dropped.
struct OwnRedis(Child);

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where the workers find Redis: the configured one, or a server of our own.
enum Redis {
    Configured(String),
    Own { url: String, _server: OwnRedis },
}

impl Redis {
    fn url(&self) -> &str {
        match self {
            Redis::Configured(url) | Redis::Own { url, .. } => url,
        }
    }
}

/// `RESILIENCE_REDIS_URL`, else a `redis-server` on a free loopback port; `None` (after
/// saying why) when there is neither.
fn find_redis() -> Result<Option<Redis>, Failure> {
    if let Ok(url) = std::env::var(URL_ENV) {
        println!("Redis: {URL_ENV} ({})", redact(&url));
        return Ok(Some(Redis::Configured(url)));
    }
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let server = match spawned {
        Ok(child) => OwnRedis(child),
        Err(e) => {
            println!(
                "No Redis to share the limit through: {URL_ENV} is unset and `redis-server` \
                 cannot be started ({e}).\nInstall Redis (e.g. `apt-get install redis-server`) \
                 or set {URL_ENV}=redis://host:port, then run this example again."
            );
            return Ok(None);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pong(port) {
        if Instant::now() > deadline {
            println!("redis-server started on port {port} but did not answer PING within 5 s.");
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("Redis: redis-server started on 127.0.0.1:{port} (stopped at the end)");
    Ok(Some(Redis::Own { url: format!("redis://127.0.0.1:{port}"), _server: server }))
}

/// One raw `PING` to a local server.
fn pong(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// The URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// What a worker reported.
struct Report {
    line: String,
    granted: u32,
    failed: u32,
    first_us: u64,
    last_us: u64,
}

fn parse_report(stdout: &str) -> Result<Report, Failure> {
    let line = stdout.lines().find(|l| !l.starts_with("result ")).unwrap_or_default().to_owned();
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("result "))
        .ok_or("a worker printed no result")?;
    let field = |name: &str| -> Result<u64, Failure> {
        let value = result
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .ok_or_else(|| format!("no `{name}` in a worker's result: {result}"))?;
        Ok(value.parse()?)
    };
    Ok(Report {
        line,
        granted: u32::try_from(field("granted")?)?,
        failed: u32::try_from(field("failed")?)?,
        first_us: field("first_us")?,
        last_us: field("last_us")?,
    })
}

fn parent() -> Result<(), Failure> {
    let Some(redis) = find_redis()? else {
        return Ok(());
    };
    // A prefix of this run's own: repeated runs (or other users of that Redis) never
    // share its bucket.
    let prefix = format!("redis-workers:{}:{}", std::process::id(), unix_micros());
    println!(
        "{WORKERS} worker processes, {CALLS_PER_WORKER} calls each, through one limit: \
         #[rate_limit(name = \"shopify\", per_second = {PER_SECOND}, burst = {BURST}, backend = \"redis\", fail_mode = \"closed\")], \
         key prefix {prefix}\n"
    );

    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for id in 1..=WORKERS {
        let child = Command::new(&exe)
            .args(["--worker", &id.to_string(), &prefix])
            .env(URL_ENV, redis.url())
            .stdout(Stdio::piped())
            .spawn()?;
        children.push(child);
    }
    let mut reports = Vec::new();
    for child in children {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!("a worker failed ({})", out.status).into());
        }
        reports.push(parse_report(&String::from_utf8_lossy(&out.stdout))?);
    }
    for r in &reports {
        println!("  {}", r.line);
    }

    let granted: u32 = reports.iter().map(|r| r.granted).sum();
    let failed: u32 = reports.iter().map(|r| r.failed).sum();
    let first = reports.iter().map(|r| r.first_us).min().unwrap_or(0);
    let last = reports.iter().map(|r| r.last_us).max().unwrap_or(0);
    if granted == 0 || last < first {
        return Err(format!("no call was granted ({failed} failed)").into());
    }
    let span = Duration::from_micros(last - first).as_secs_f64();
    let combined = f64::from(granted);
    let after_burst = (combined - BURST).max(0.0);
    let rate = if span > 0.0 { after_burst / span } else { 0.0 };
    println!(
        "\ncombined: {granted} calls granted ({failed} failed) in {span:.2} s from the first \
         grant to the last = {:.1} calls/s:\n  the burst of {BURST} at once, then {after_burst} \
         calls at {rate:.1}/s (the limit: {PER_SECOND}/s)",
        if span > 0.0 { combined / span } else { combined }
    );
    // GCRA's bound: in any span, at most the burst plus what the rate refills in it. The
    // grant times are when each worker saw its grant, so allow one call for that slack.
    let allowed = BURST + PER_SECOND * span;
    let within = combined <= allowed + 1.0;
    println!(
        "the shared limit allows at most {BURST} + {PER_SECOND}/s × {span:.2} s = {allowed:.0} \
         calls in that span: {}",
        if within { "within it" } else { "EXCEEDED" }
    );
    let unshared = f64::from(WORKERS) * allowed;
    let unshared_time = (f64::from(CALLS_PER_WORKER) - BURST).max(0.0) / PER_SECOND;
    println!(
        "{WORKERS} unshared limiters (one per process) would have allowed {WORKERS} × {allowed:.0} \
         = {unshared:.0} calls in the same span, and finished these {granted} in {unshared_time:.2} s"
    );
    if !within {
        return Err("the workers together exceeded the shared limit".into());
    }
    Ok(())
}
