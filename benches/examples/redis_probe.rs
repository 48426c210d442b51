//! The Redis-backed limiter against a bare `PING`, two ways that hold up on a busy machine
//! better than criterion's one-function-after-another timing:
//!
//! ```sh
//! cargo build -p resilience-benches --release --example redis_probe
//! # interleaved: rounds of 500-call batches of each call in turn; medians and ratios
//! target/release/examples/redis_probe
//! # instruction counts of this process (the client side) for one path
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
//!     --toggle-collect='redis_probe::hot*' target/release/examples/redis_probe count acquire 2000
//! ```
//!
//! Divide the count by the `n` given. Paths for `count`: `ping`, `acquire`, `keyed`,
//! `ping_async`, `acquire_async`, `keyed_async`. Uses
//! `RESILIENCE_REDIS_URL`, else starts a `redis-server` on a free loopback port.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use resilience::rate_limit::{KeyedRateLimiter, RateLimitConfig, RateLimiter};
use resilience::redis::{RedisBackend, RedisConfig};
use resilience::{Backend, Error, FailMode};
use resilience_tests::redis_server::{RedisServer, unique_prefix};
use tokio::runtime::Runtime;

type Failure = Box<dyn std::error::Error>;

const KEYS: usize = 1024;
const BATCH: u32 = 500;
const ROUNDS: usize = 15;

struct Subjects {
    backend: Arc<RedisBackend>,
    limiter: RateLimiter,
    keyed: KeyedRateLimiter<String>,
    keys: Vec<String>,
    rt: Runtime,
}

#[inline(never)]
fn hot_ping(s: &Subjects, n: u32) -> Result<(), Error> {
    (0..n).try_for_each(|_| s.backend.ping_blocking())
}

#[inline(never)]
fn hot_acquire(s: &Subjects, n: u32) -> Result<(), Error> {
    (0..n).try_for_each(|_| s.limiter.acquire(1))
}

#[inline(never)]
fn hot_keyed(s: &Subjects, n: u32) -> Result<(), Error> {
    (0..n).try_for_each(|i| s.keyed.acquire(s.keys[i as usize % KEYS].as_str(), 1))
}

#[inline(never)]
fn hot_ping_async(s: &Subjects, n: u32) -> Result<(), Error> {
    s.rt.block_on(async {
        for _ in 0..n {
            s.backend.ping_async().await?;
        }
        Ok(())
    })
}

#[inline(never)]
fn hot_acquire_async(s: &Subjects, n: u32) -> Result<(), Error> {
    s.rt.block_on(async {
        for _ in 0..n {
            s.limiter.acquire_async(1).await?;
        }
        Ok(())
    })
}

#[inline(never)]
fn hot_keyed_async(s: &Subjects, n: u32) -> Result<(), Error> {
    s.rt.block_on(async {
        for i in 0..n {
            s.keyed.acquire_async(s.keys[i as usize % KEYS].as_str(), 1).await?;
        }
        Ok(())
    })
}

type Path = fn(&Subjects, u32) -> Result<(), Error>;

/// The paths in the order they are interleaved; each acquire is compared with the `PING`
/// of its kind (blocking or async).
const PATHS: [(&str, Path, usize); 6] = [
    ("ping (blocking)", hot_ping, 0),
    ("acquire", hot_acquire, 0),
    ("keyed acquire, 1024 keys", hot_keyed, 0),
    ("ping (async)", hot_ping_async, 3),
    ("acquire_async", hot_acquire_async, 3),
    ("keyed acquire_async, 1024 keys", hot_keyed_async, 3),
];

fn subjects(server: &RedisServer) -> Result<Subjects, Failure> {
    let config = RedisConfig::builder(server.url())
        .key_prefix(unique_prefix("probe"))
        .timeout(Duration::from_secs(1))
        .build()?;
    let backend = Arc::new(RedisBackend::new(config)?);
    let limit = RateLimitConfig::builder()
        .per_second(10_000)
        .burst(10_000_000)
        .backend(Backend::Redis(FailMode::Closed))
        .build()?;
    Ok(Subjects {
        limiter: RateLimiter::with_redis("probe-redis", limit.clone(), backend.clone())?,
        keyed: KeyedRateLimiter::with_redis("probe-redis-keyed", limit, backend.clone())?,
        keys: (0..KEYS).map(|i| format!("shop-{i}.example.com")).collect(),
        rt: tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        backend,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One of each call outside the counted functions: connections open, script loaded.
fn warm(s: &Subjects) -> Result<(), Error> {
    s.backend.ping_blocking()?;
    s.limiter.acquire(1)?;
    s.keyed.acquire("warm", 1)?;
    s.rt.block_on(async {
        s.backend.ping_async().await?;
        s.limiter.acquire_async(1).await?;
        s.keyed.acquire_async("warm", 1).await
    })
}

fn interleaved(s: &Subjects) -> Result<(), Failure> {
    let mut micros: Vec<Vec<f64>> = vec![Vec::new(); PATHS.len()];
    for _ in 0..ROUNDS {
        for (i, (_, path, _)) in PATHS.iter().enumerate() {
            let start = Instant::now();
            path(s, BATCH)?;
            micros[i].push(start.elapsed().as_secs_f64() * 1e6 / f64::from(BATCH));
        }
    }
    let medians: Vec<f64> = micros.into_iter().map(median).collect();
    println!("median of {ROUNDS} rounds of {BATCH}-call batches, interleaved:");
    for (i, (name, _, base)) in PATHS.iter().enumerate() {
        println!("{name:>32}: {:6.1} µs  {:.2}× ping", medians[i], medians[i] / medians[*base]);
    }
    Ok(())
}

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(server) = RedisServer::shared() else {
        return Ok(());
    };
    let s = subjects(&server)?;
    warm(&s)?;
    match args.as_slice() {
        [] => interleaved(&s),
        [count, path, n] if count == "count" => {
            let run: Path = match path.as_str() {
                "ping" => hot_ping,
                "acquire" => hot_acquire,
                "keyed" => hot_keyed,
                "ping_async" => hot_ping_async,
                "acquire_async" => hot_acquire_async,
                "keyed_async" => hot_keyed_async,
                other => return Err(format!("no path `{other}`").into()),
            };
            Ok(run(&s, n.parse()?)?)
        }
        _ => Err("usage: redis_probe [count <path> <n>]".into()),
    }
}
