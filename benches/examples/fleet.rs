//! Fleet simulation: N OS processes (children of this one), each with many tokio tasks,
//! share one Redis-backed limiter of R permits/s through one `redis-server`, with leased
//! shares of the rate and then without (`lease = off`, at most 10 000/s). Prints Redis scripts per granted permit, the
//! fleet's admitted rate against R (the worst 1 s window), p50/p99 acquire latency, and how
//! fast a process started halfway through gets a fair share.
//!
//! ```text
//! cargo run --release -p resilience-benches --example fleet -- \
//!     [--processes 8] [--tasks 16] [--rate 50000] [--burst 500] [--lease-ms 1000] [--seconds 30]
//! ```
//!
//! Uses `RESILIENCE_REDIS_URL`, else starts `redis-server` on a free loopback port. The
//! figures are wall-clock measurements of this machine (a benchmark, not a test).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use resilience::rate_limit::{OnLimit, RateLimitConfig, RateLimiter};
use resilience::redis::{RedisBackend, RedisConfig};
use resilience::{Backend, Error, FailMode};
use resilience_tests::redis_server::{RedisServer, unique_prefix};

/// The fastest limiter exact mode (`lease = off`) keeps.
const EXACT_MAX: u32 = 10_000;

/// Width of one slot of the admitted-rate time series.
const SLOT: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
struct Opts {
    processes: usize,
    tasks: usize,
    rate: u32,
    burst: u32,
    lease_ms: u64,
    seconds: u64,
}

fn parse_opts(args: &[String]) -> Opts {
    let mut o =
        Opts { processes: 8, tasks: 16, rate: 50_000, burst: 500, lease_ms: 1000, seconds: 30 };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().map(String::as_str).unwrap_or("");
        let n: u64 = value.parse().unwrap_or_else(|_| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--processes" => o.processes = usize::try_from(n).unwrap(),
            "--tasks" => o.tasks = usize::try_from(n).unwrap(),
            "--rate" => o.rate = u32::try_from(n).unwrap(),
            "--burst" => o.burst = u32::try_from(n).unwrap(),
            "--lease-ms" => o.lease_ms = n,
            "--seconds" => o.seconds = n,
            other => panic!("unknown flag {other}"),
        }
    }
    o
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        child(&args[1..]);
        return;
    }
    let opts = parse_opts(&args);
    let server = RedisServer::shared().unwrap_or_else(|| panic!("no Redis: see above"));
    println!(
        "fleet: {} processes x {} tasks, R = {}/s, burst {}, {} s per run, Redis at {}",
        opts.processes,
        opts.tasks,
        opts.rate,
        opts.burst,
        opts.seconds,
        server.url()
    );
    println!(
        "| mode | R | scripts per granted permit | admitted / R (whole run) | worst 1 s window / R | p50 / p99 acquire | newcomer at 80 % of a fair share after |"
    );
    println!("|---|---|---|---|---|---|---|");
    // Exact mode keeps microseconds in Redis (at most 10 000/s): above that, leases are
    // also run at 10 000/s, and `lease = off` only there.
    let exact = opts.rate.min(EXACT_MAX);
    let mut runs = vec![(opts.lease_ms, opts.rate)];
    if opts.rate > EXACT_MAX && opts.lease_ms > 0 {
        runs.push((opts.lease_ms, exact));
    }
    runs.push((0, exact));
    for (lease_ms, rate) in runs {
        run(&server, &Opts { lease_ms, rate, ..opts.clone() });
    }
}

/// What one child reports.
struct Report {
    start_slot: usize,
    slots: Vec<u64>,
    p50_ns: u64,
    p99_ns: u64,
}

fn run(server: &RedisServer, opts: &Opts) {
    let prefix = unique_prefix("fleet");
    let before = script_calls(server.url());
    // A common epoch, a little ahead so every child is up before it.
    let epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(2);
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..opts.processes)
        .map(|i| {
            // The last process joins halfway through: how fast does it get its share?
            let delay_ms = if i + 1 == opts.processes { opts.seconds * 500 } else { 0 };
            let run_ms = opts.seconds * 1000 - delay_ms;
            Command::new(&exe)
                .arg("child")
                .args([server.url(), &prefix])
                .args(
                    [
                        opts.rate.into(),
                        opts.burst.into(),
                        opts.lease_ms,
                        u64::try_from(opts.tasks).unwrap(),
                        u64::try_from(epoch.as_millis()).unwrap(),
                        delay_ms,
                        run_ms,
                    ]
                    .map(|n| n.to_string()),
                )
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let reports: Vec<Report> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            parse_report(&text).unwrap_or_else(|| panic!("bad child report: {text}"))
        })
        .collect();
    let scripts = script_calls(server.url()) - before;

    let n_slots = usize::try_from(opts.seconds * 1000 / 100).unwrap();
    let mut fleet = vec![0u64; n_slots];
    for r in &reports {
        for (i, c) in r.slots.iter().enumerate() {
            if let Some(f) = fleet.get_mut(r.start_slot + i) {
                *f += c;
            }
        }
    }
    let granted: u64 = fleet.iter().sum();
    let per_window = 1000 / 100;
    // Windows after the first second (the burst and the start-up are not steady state).
    let worst = fleet
        .windows(per_window)
        .skip(per_window)
        .map(|w| w.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let r = f64::from(opts.rate);
    let seconds = opts.seconds as f64;
    let newcomer = reports.last().unwrap();
    let fair = r * SLOT.as_secs_f64() / opts.processes as f64;
    let reached = newcomer.slots.iter().position(|c| *c as f64 >= 0.8 * fair);
    let p50 = reports.iter().map(|r| r.p50_ns).max().unwrap_or(0);
    let p99 = reports.iter().map(|r| r.p99_ns).max().unwrap_or(0);
    let mode = if opts.lease_ms == 0 {
        "lease = off".to_owned()
    } else {
        format!("lease = {} ms", opts.lease_ms)
    };
    println!(
        "| {mode} | {} | {:.4} ({scripts} / {granted}) | {:.4} | {:.4} | {:.1} µs / {:.1} µs (worst process) | {} |",
        opts.rate,
        scripts as f64 / granted.max(1) as f64,
        granted as f64 / (r * seconds),
        worst as f64 / r,
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        reached.map_or("never".to_owned(), |s| format!("{} ms", (s + 1) * 100)),
    );
}

fn parse_report(text: &str) -> Option<Report> {
    let line = text.lines().find(|l| l.starts_with("report "))?;
    let mut r = Report { start_slot: 0, slots: Vec::new(), p50_ns: 0, p99_ns: 0 };
    for field in line.split_whitespace().skip(1) {
        let (k, v) = field.split_once('=')?;
        match k {
            "start_slot" => r.start_slot = v.parse().ok()?,
            "p50" => r.p50_ns = v.parse().ok()?,
            "p99" => r.p99_ns = v.parse().ok()?,
            "slots" => r.slots = v.split(',').filter_map(|c| c.parse().ok()).collect(),
            _ => {}
        }
    }
    Some(r)
}

/// `EVALSHA` calls Redis has served, from `INFO commandstats`.
fn script_calls(url: &str) -> u64 {
    let mut con = redis_connection(url);
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

fn redis_connection(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

/// One process of the fleet: `tasks` tasks acquiring from the shared limiter as fast as
/// it lets them (a refused task sleeps the refusal's `retry_after`), from `delay_ms`
/// after the epoch for `run_ms`.
fn child(args: &[String]) {
    let [url, prefix, rest @ ..] = args else { panic!("child args") };
    let n: Vec<u64> = rest.iter().map(|a| a.parse().unwrap()).collect();
    let &[rate, burst, lease_ms, tasks, epoch_ms, delay_ms, run_ms] = n.as_slice() else {
        panic!("child args")
    };
    let config = RedisConfig::builder(url.as_str())
        .key_prefix(prefix.as_str())
        .timeout(Duration::from_secs(1))
        .lease(Duration::from_millis(lease_ms))
        .build()
        .unwrap();
    let backend = Arc::new(RedisBackend::new(config).unwrap());
    let limit = RateLimitConfig::builder()
        .per_second(u32::try_from(rate).unwrap())
        .burst(u32::try_from(burst).unwrap())
        .on_limit(OnLimit::Reject)
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap();
    let limiter = Arc::new(RateLimiter::with_redis("fleet", limit, backend).unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let start = UNIX_EPOCH + Duration::from_millis(epoch_ms + delay_ms);
    let wait = start.duration_since(SystemTime::now()).unwrap_or_default();
    std::thread::sleep(wait);
    let begun = Instant::now();
    let run = Duration::from_millis(run_ms);
    let n_slots = usize::try_from(run_ms / 100).unwrap();
    let slots: Arc<Vec<AtomicU64>> = Arc::new((0..n_slots).map(|_| AtomicU64::new(0)).collect());
    let latencies = runtime.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                let slots = Arc::clone(&slots);
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(64 * 1024);
                    loop {
                        let t0 = Instant::now();
                        let since = t0.duration_since(begun);
                        if since >= run {
                            return lat;
                        }
                        let r = limiter.acquire_async(1).await;
                        lat.push(u32::try_from(t0.elapsed().as_nanos()).unwrap_or(u32::MAX));
                        match r {
                            Ok(()) => {
                                let i = usize::try_from(since.as_millis() / 100).unwrap();
                                if let Some(s) = slots.get(i) {
                                    s.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Err(Error::RateLimited { retry_after, .. }) => {
                                tokio::time::sleep(retry_after.max(Duration::from_micros(100)))
                                    .await;
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all
    });
    let mut lat = latencies;
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0);
    let slots: Vec<String> = slots.iter().map(|s| s.load(Ordering::Relaxed).to_string()).collect();
    println!(
        "report start_slot={} p50={} p99={} slots={}",
        delay_ms / 100,
        pct(0.50),
        pct(0.99),
        slots.join(",")
    );
}
