//! Guarantee: a rate limiter of rate `r` and burst `b` never lets the server see more
//! than `b + r·t` calls in any window of length `t`, however many threads or tasks
//! hammer it, and grants throughput within 1 % of `r` when demand exceeds it.
//!
//! Time is simulated: the threads' tests run in phases: a driver advances a
//! `ManualClock` by a random step, then every worker thread hammers the limiter
//! concurrently at that instant until it is refused, so each grant has an exact time.
//! The tasks' test runs many tasks on tokio's paused clock. A strict server-side check
//! (an independent leaky bucket, equivalent to "every window", plus literal sliding
//! windows) counts every violation.
//!
//! Scaled for CI; the full figures (≥ 1 000 000 permits each):
//! `RESILIENCE_FULL=1 cargo test --release -p resilience-tests --test guarantee_rate_limit -- --nocapture`
//! (`RESILIENCE_SEED=n` replays a seed).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use resilience::clock::{Clock, ManualClock};
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, Rate, RateLimitConfig, RateLimiter};

fn full() -> bool {
    std::env::var("RESILIENCE_FULL").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Permits to grant in a run: 1 000 000 in the full run, 20 000 in CI.
fn target_permits() -> u64 {
    if full() { 1_000_000 } else { 20_000 }
}

fn seed() -> u64 {
    std::env::var("RESILIENCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_4a7e)
}

fn config(rate: Rate, burst: u32, on: OnLimit) -> RateLimitConfig {
    RateLimitConfig::builder()
        .rate(rate)
        .burst(burst)
        .on_limit(on)
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"))
}

/// The server's view of a limit: `burst` calls at once, one more per `interval`.
#[derive(Debug, Clone, Copy)]
struct ServerLimit {
    interval: u64,
    burst: u64,
}

/// What the strict server-side counter found.
#[derive(Debug, Default)]
struct Verdict {
    /// Arrivals that broke the limit (leaky bucket, i.e. some window held too many).
    violations: u64,
    /// Largest count seen in a literal sliding window, over its allowance, per length.
    worst_window: Vec<(u64, u64, u64)>,
    granted: u64,
    span: u64,
}

impl ServerLimit {
    /// Checks arrivals `(time ns, count)` sorted by time.
    ///
    /// The leaky bucket (level in ns, drains 1 ns per ns, each call adds `interval`,
    /// overflow above `burst·interval`) accepts a sequence iff every window `[s, s+t]`
    /// holds at most `burst + t/interval` calls. The literal sliding windows check the
    /// same bound for a few lengths directly, as a second, independent witness.
    fn check(self, arrivals: &[(u64, u64)]) -> Verdict {
        let tau = self.burst * self.interval;
        let mut v = Verdict::default();
        let (mut level, mut last) = (0u64, arrivals.first().map_or(0, |a| a.0));
        for &(t, n) in arrivals {
            level = level.saturating_sub(t - last);
            last = t;
            for _ in 0..n {
                level += self.interval;
                if level > tau {
                    v.violations += 1;
                    level -= self.interval; // the server refuses it
                }
            }
            v.granted += n;
        }
        v.span = match (arrivals.first(), arrivals.last()) {
            (Some(a), Some(b)) => b.0 - a.0,
            _ => 0,
        };
        for len in [0, self.interval, 10 * self.interval, tau, 10 * tau] {
            let allowed = self.burst + len / self.interval;
            let (mut lo, mut sum, mut worst) = (0usize, 0u64, 0u64);
            for hi in 0..arrivals.len() {
                sum += arrivals[hi].1;
                while arrivals[hi].0 - arrivals[lo].0 > len {
                    sum -= arrivals[lo].1;
                    lo += 1;
                }
                worst = worst.max(sum);
            }
            if worst > allowed {
                v.violations += worst - allowed;
            }
            v.worst_window.push((len, worst, allowed));
        }
        v
    }
}

/// Throughput over the run relative to the rate: `granted / (b + span/interval)`.
fn throughput_ratio(v: &Verdict, limit: ServerLimit) -> f64 {
    v.granted as f64 / (limit.burst as f64 + v.span as f64 / limit.interval as f64)
}

/// `workers` threads hammer the limiter in phases; returns `(time, permits)` per phase
/// per key, and the number of granted calls.
fn hammer_in_phases(
    workers: usize,
    keys: usize,
    limit: ServerLimit,
    target: u64,
    seed: u64,
    take: Arc<dyn Fn(usize, u32) -> bool + Send + Sync>,
    clock: &ManualClock,
) -> (Vec<Vec<(u64, u64)>>, u64) {
    let calls = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(workers + 1));
    let end = Arc::new(Barrier::new(workers + 1));
    let stop = Arc::new(AtomicBool::new(false));
    // The server's counters: grants this phase, per key.
    let server: Arc<Vec<AtomicU64>> = Arc::new((0..keys).map(|_| AtomicU64::new(0)).collect());
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let (start, end, stop, server, take, calls) = (
                start.clone(),
                end.clone(),
                stop.clone(),
                server.clone(),
                take.clone(),
                calls.clone(),
            );
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(seed ^ (w as u64 + 1));
                loop {
                    start.wait();
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let first = rng.usize(0..keys);
                    for k in (0..keys).map(|i| (first + i) % keys) {
                        // Drain this key: mixed costs, then single permits until refused.
                        loop {
                            let cost = rng.u32(1..=3);
                            if take(k, cost) {
                                server[k].fetch_add(u64::from(cost), Ordering::Relaxed);
                                calls.fetch_add(1, Ordering::Relaxed);
                            } else if take(k, 1) {
                                server[k].fetch_add(1, Ordering::Relaxed);
                                calls.fetch_add(1, Ordering::Relaxed);
                            } else {
                                break;
                            }
                        }
                    }
                    end.wait();
                }
            })
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut arrivals: Vec<Vec<(u64, u64)>> = vec![Vec::new(); keys];
    let mut granted = 0u64;
    let tau = limit.burst * limit.interval;
    while granted < target {
        // Steps of at most one burst's refill, so demand always exceeds supply and no
        // refill is lost to the cap; a tenth are zero (hammering the same instant).
        let step = if rng.u8(0..10) == 0 { 0 } else { rng.u64(1..=tau) };
        clock.advance(Duration::from_nanos(step));
        start.wait();
        end.wait();
        let now = u64::try_from(clock.now().as_nanos()).unwrap_or(u64::MAX);
        for (k, counter) in server.iter().enumerate() {
            let n = counter.swap(0, Ordering::Relaxed);
            granted += n;
            if n > 0 {
                arrivals[k].push((now, n));
            }
        }
    }
    stop.store(true, Ordering::Release);
    start.wait();
    for h in handles {
        h.join().unwrap_or_else(|_| unreachable!("a worker panicked"));
    }
    (arrivals, calls.load(Ordering::Relaxed))
}

#[test]
fn threads_hammering_one_limiter_never_exceed_the_limit() {
    let seed = seed();
    let (workers, burst, rate) = (4, 50, Rate::per_second(10_000));
    let limit = ServerLimit { interval: 100_000, burst: u64::from(burst) };
    let clock = ManualClock::new();
    let limiter = Arc::new(RateLimiter::with_clock(
        "guarantee-threads",
        config(rate, burst, OnLimit::Reject),
        clock.shared(),
    ));
    let l = limiter.clone();
    let take = Arc::new(move |_: usize, cost: u32| l.try_acquire(cost).is_ok());
    let (arrivals, calls) =
        hammer_in_phases(workers, 1, limit, target_permits(), seed, take, &clock);
    let v = limit.check(&arrivals[0]);
    let ratio = throughput_ratio(&v, limit);
    println!(
        "rate limit, {workers} threads, rate 10000/s burst {burst}, seed {seed}: {} permits \
         over {:.3} s simulated, {} violations, throughput {:.4} of the rate, worst windows \
         (len ns, seen, allowed) {:?}",
        v.granted,
        v.span as f64 / 1e9,
        v.violations,
        ratio,
        v.worst_window
    );
    assert_eq!(v.violations, 0, "seed {seed}");
    assert!(v.granted >= target_permits(), "seed {seed}");
    assert_eq!(limiter.stats().granted, calls, "the limiter counted the calls the server saw");
    assert!((ratio - 1.0).abs() <= 0.01, "throughput {ratio} of the rate, seed {seed}");
}

#[test]
fn threads_hammering_a_keyed_limiter_never_exceed_any_keys_limit() {
    let seed = seed().wrapping_add(1);
    let (workers, keys, burst, rate) = (4, 8, 20, Rate::per_second(1_000));
    let limit = ServerLimit { interval: 1_000_000, burst: u64::from(burst) };
    let clock = ManualClock::new();
    let limiter = Arc::new(KeyedRateLimiter::<String>::with_clock(
        "guarantee-keyed",
        config(rate, burst, OnLimit::Reject),
        clock.shared(),
    ));
    let names: Arc<Vec<String>> = Arc::new((0..keys).map(|k| format!("tenant-{k}")).collect());
    let l = limiter.clone();
    let take = Arc::new(move |k: usize, cost: u32| l.try_acquire(names[k].as_str(), cost).is_ok());
    let (arrivals, calls) =
        hammer_in_phases(workers, keys, limit, target_permits(), seed, take, &clock);
    let mut total = 0;
    let mut violations = 0;
    let mut worst_ratio: f64 = 1.0;
    for (k, per_key) in arrivals.iter().enumerate() {
        let v = limit.check(per_key);
        let ratio = throughput_ratio(&v, limit);
        assert_eq!(v.violations, 0, "key {k}, seed {seed}: {v:?}");
        assert!((ratio - 1.0).abs() <= 0.01, "key {k}: throughput {ratio}, seed {seed}");
        if (ratio - 1.0).abs() > (worst_ratio - 1.0).abs() {
            worst_ratio = ratio;
        }
        total += v.granted;
        violations += v.violations;
    }
    println!(
        "keyed rate limit, {workers} threads, {keys} keys, rate 1000/s burst {burst} each, \
         seed {seed}: {total} permits, {violations} violations, worst key throughput \
         {worst_ratio:.4} of its rate"
    );
    assert!(total >= target_permits());
    assert_eq!(limiter.stats().granted, calls);
}

#[test]
fn tasks_waiting_on_one_limiter_never_exceed_the_limit() {
    let tasks = 16;
    let (burst, rate) = (20, Rate::per_second(1_000));
    let limit = ServerLimit { interval: 1_000_000, burst: u64::from(burst) };
    let target = target_permits();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let (arrivals, stats_granted) = rt.block_on(async move {
        let limiter =
            Arc::new(RateLimiter::new("guarantee-tasks", config(rate, burst, OnLimit::Wait)));
        let origin = tokio::time::Instant::now();
        let issued = Arc::new(AtomicU64::new(0));
        let server = Arc::new(parking_lot::Mutex::new(Vec::<(u64, u64)>::new()));
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let (limiter, issued, server) = (limiter.clone(), issued.clone(), server.clone());
                tokio::spawn(async move {
                    while issued.fetch_add(1, Ordering::Relaxed) < target {
                        // Half the tasks wait their turn, half poll and back off.
                        if i % 2 == 0 {
                            limiter.acquire_async(1).await.unwrap_or_else(|e| unreachable!("{e}"));
                        } else {
                            while let Err(e) = limiter.try_acquire(1) {
                                let wait = e.retry_after().unwrap_or(Duration::from_millis(1));
                                tokio::time::sleep(wait).await;
                            }
                        }
                        // The call reaches the server now.
                        let at = origin.elapsed().as_nanos() as u64;
                        server.lock().push((at, 1));
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap_or_else(|_| unreachable!("a task panicked"));
        }
        let arrivals = std::mem::take(&mut *server.lock());
        (arrivals, limiter.stats().granted)
    });
    let v = limit.check(&arrivals);
    let ratio = throughput_ratio(&v, limit);
    println!(
        "rate limit, {tasks} tasks (paused clock), rate 1000/s burst {burst}: {} permits over \
         {:.1} s simulated, {} violations, throughput {ratio:.4} of the rate",
        v.granted,
        v.span as f64 / 1e9,
        v.violations
    );
    assert_eq!(v.violations, 0, "{:?}", v.worst_window);
    assert_eq!(v.granted, target);
    assert_eq!(stats_granted, target);
    assert!((ratio - 1.0).abs() <= 0.01, "throughput {ratio} of the rate");
}
