//! Permit leases (`RedisConfigBuilder::lease`): limiters sharing one Redis limit lease a
//! share of its rate and spend it with their in-process bucket. Each test runs a
//! `redis-server` of its own (to count its commands, flush it, or kill it). The
//! instances ("processes") share one `ManualClock`, the fleet's time: it drives their
//! buckets, renewals and lease ends, so the tests step time instead of sleeping. Redis
//! times the shares' expiry on its own clock, which barely moves during a test: a
//! crashed holder's expiry is moved to the past by hand, as time would.

use std::sync::Arc;
use std::time::Duration;

use resilience::clock::ManualClock;
use resilience::rate_limit::{OnLimit, RateLimitConfig, RateLimiter};
use resilience::redis::{RedisBackend, RedisConfig};
use resilience::{Backend, Error, FailMode};
use resilience_tests::redis_server::{RedisServer, unique_prefix};

/// The lease period: renewals every 10 s of fleet time, an eighth of it (2.5 s) while a
/// holder is short of its fair share.
const PERIOD: Duration = Duration::from_secs(20);
/// One step of fleet time.
const STEP: Duration = Duration::from_millis(10);
/// The shared limit: R = 100/s (one permit per step), B = 10.
const RATE: u32 = 100;
const BURST: u32 = 10;
/// Steps per second.
const PER_SECOND: usize = 100;

fn backend(url: &str, prefix: &str, lease: Duration, clock: &ManualClock) -> Arc<RedisBackend> {
    let config = RedisConfig::builder(url)
        .key_prefix(prefix)
        .timeout(Duration::from_secs(2))
        .lease(lease)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    Arc::new(RedisBackend::with_clock(config, clock.shared()).unwrap_or_else(|e| panic!("{e}")))
}

fn limiter_with(name: &str, per_second: u32, burst: u32, b: &Arc<RedisBackend>) -> RateLimiter {
    let config = RateLimitConfig::builder()
        .per_second(per_second)
        .burst(burst)
        .on_limit(OnLimit::Reject)
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    RateLimiter::with_redis(name, config, Arc::clone(b)).unwrap_or_else(|e| panic!("{e}"))
}

/// A process of the fleet: its own backend (connections, lease) on the fleet's clock.
fn process(server: &RedisServer, prefix: &str, clock: &ManualClock) -> RateLimiter {
    limiter_with("fleet", RATE, BURST, &backend(server.url(), prefix, PERIOD, clock))
}

fn own_server() -> RedisServer {
    RedisServer::own().unwrap_or_else(|| panic!("no redis-server started: see above"))
}

fn admin(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Scripts Redis has run (`EVALSHA` calls), from `INFO commandstats`.
fn script_calls(server: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut admin(server))
        .unwrap_or_else(|e| panic!("{e}"));
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

fn shares_key(prefix: &str) -> String {
    format!("{{{prefix}:rl:fleet}}:shares")
}

/// The shares Redis holds: `(holder, rate, burst, want, expiry)`.
fn shares(server: &RedisServer, prefix: &str) -> Vec<(String, f64, f64, f64, f64)> {
    let all: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(shares_key(prefix))
        .query(&mut admin(server))
        .unwrap_or_else(|e| panic!("{e}"));
    all.into_iter()
        .map(|(holder, v)| {
            let n: Vec<f64> = v.split(' ').map(|x| x.parse().unwrap_or(f64::NAN)).collect();
            (holder, n[0], n[1], n[2], n[3])
        })
        .collect()
}

/// Runs the fleet for `steps` steps of fleet time: each step, every active process tries
/// `tries` permits. Returns the permits each process was granted at each step.
fn run(fleet: &[&RateLimiter], clock: &ManualClock, steps: usize, tries: u32) -> Vec<Vec<u32>> {
    run_with(fleet, clock, steps, |_, _| tries)
}

/// [`run`], process `i` trying `tries(i, step)` permits at each step.
fn run_with(
    fleet: &[&RateLimiter],
    clock: &ManualClock,
    steps: usize,
    tries: impl Fn(usize, usize) -> u32,
) -> Vec<Vec<u32>> {
    let mut series = vec![Vec::with_capacity(steps); fleet.len()];
    for step in 0..steps {
        for (i, (l, s)) in fleet.iter().zip(series.iter_mut()).enumerate() {
            let mut granted = 0;
            for _ in 0..tries(i, step) {
                match l.try_acquire(1) {
                    Ok(()) => granted += 1,
                    Err(Error::RateLimited { .. }) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            s.push(granted);
        }
        clock.advance(STEP);
    }
    series
}

/// The fleet's grants at each step.
fn total(series: &[Vec<u32>]) -> Vec<u32> {
    let steps = series.iter().map(Vec::len).max().unwrap_or(0);
    (0..steps).map(|i| series.iter().filter_map(|s| s.get(i)).sum()).collect()
}

/// The most the fleet was granted in any window of `w` steps.
fn worst(fleet: &[u32], w: usize) -> u32 {
    fleet.windows(w).map(|x| x.iter().sum()).max().unwrap_or(0)
}

/// `B + R·t` for a window of `w` steps, plus one permit per share taken from nothing
/// (`joins`): the documented bound with a common clock (no reply latency, no skew).
fn bound(w: usize, joins: u32) -> u32 {
    BURST + u32::try_from(w).unwrap_or(u32::MAX) * RATE / 100 + joins
}

fn assert_bounded(fleet: &[u32], joins: u32) {
    for w in [1, 10, PER_SECOND, 5 * PER_SECOND, 20 * PER_SECOND] {
        let most = worst(fleet, w);
        assert!(
            most <= bound(w, joins),
            "{most} permits in a window of {w} steps: more than B + R·t + {joins} = {}",
            bound(w, joins)
        );
    }
}

#[cfg_attr(resilience_no_redis_server, ignore = "needs redis-server on PATH")]
#[test]
fn a_leased_fleet_admits_at_most_burst_plus_rate_times_t_for_a_fraction_of_a_round_trip() {
    let server = own_server();
    let prefix = unique_prefix("leases");
    let clock = ManualClock::new();
    let fleet: Vec<RateLimiter> = (0..4).map(|_| process(&server, &prefix, &clock)).collect();
    let refs: Vec<&RateLimiter> = fleet.iter().collect();
    let before = script_calls(&server);
    // 100 s of fleet time, each process asking for twice the whole rate.
    let series = run(&refs, &clock, 100 * PER_SECOND, 2);
    let scripts = script_calls(&server) - before;
    let fleet_total = total(&series);
    // Each process took a share from nothing once.
    assert_bounded(&fleet_total, 4);
    let admitted: u32 = fleet_total.iter().sum();
    // Converged (within about 5P/8), the fleet uses its whole rate.
    let late: u32 = fleet_total[30 * PER_SECOND..].iter().sum();
    assert!(late >= 70 * RATE * 95 / 100, "{late} permits in the last 70 s of R = {RATE}/s");
    // Renewals every P/2 (P/8 while short): a few dozen scripts for thousands of permits.
    assert!(
        scripts * 50 <= u64::from(admitted),
        "{scripts} scripts for {admitted} permits: a lease should cost a small fraction of a round trip per permit"
    );
    // Fair: each process holds its max-min share, R/4, at the end.
    for (i, s) in series.iter().enumerate() {
        let last: u32 = s[80 * PER_SECOND..].iter().sum();
        assert!(
            last >= 20 * RATE / 4 * 80 / 100,
            "process {i} got {last} permits in 20 s, under 80 % of its fair share"
        );
    }
    let held = shares(&server, &prefix);
    assert_eq!(held.len(), 4, "{held:?}");
    let (rates, bursts): (f64, f64) = held.iter().fold((0.0, 0.0), |a, h| (a.0 + h.1, a.1 + h.2));
    assert!(rates <= f64::from(RATE) + 1e-9 && bursts <= f64::from(BURST) + 1e-9, "{held:?}");
}

#[cfg_attr(resilience_no_redis_server, ignore = "needs redis-server on PATH")]
#[test]
fn a_newcomer_reaches_80_percent_of_its_fair_share_within_five_eighths_of_a_period() {
    let server = own_server();
    let prefix = unique_prefix("newcomer");
    let clock = ManualClock::new();
    let old: Vec<RateLimiter> = (0..3).map(|_| process(&server, &prefix, &clock)).collect();
    let refs: Vec<&RateLimiter> = old.iter().collect();
    let before = run(&refs, &clock, 40 * PER_SECOND, 2);
    let newcomer = process(&server, &prefix, &clock);
    let all: Vec<&RateLimiter> = old.iter().chain([&newcomer]).collect();
    let after = run(&all, &clock, 30 * PER_SECOND, 2);
    // The bound holds across the join (three first shares, then the newcomer's).
    let mut fleet = total(&before);
    fleet.extend(total(&after));
    assert_bounded(&fleet, 4);
    // From 5P/8 = 12.5 s after joining (plus half a second of rounding to steps) on,
    // its rate over every 1 s window is at least 80 % of the fair share R/4.
    let fair = f64::from(RATE) / 4.0;
    let joined = &after[3];
    let settled = 13 * PER_SECOND;
    for (i, w) in joined.windows(PER_SECOND).enumerate().skip(settled) {
        let got = f64::from(w.iter().sum::<u32>());
        assert!(
            got >= 0.8 * fair,
            "{got} permits in the 1 s window {:.2} s after joining: under 80 % of {fair}",
            i as f64 / PER_SECOND as f64
        );
    }
}

#[cfg_attr(resilience_no_redis_server, ignore = "needs redis-server on PATH")]
#[test]
fn an_idle_instance_gives_its_share_up_at_its_next_renewals() {
    let server = own_server();
    let prefix = unique_prefix("idle");
    let clock = ManualClock::new();
    let (busy, idle) = (process(&server, &prefix, &clock), process(&server, &prefix, &clock));
    run(&[&busy, &idle], &clock, 30 * PER_SECOND, 2);
    let held = shares(&server, &prefix);
    assert!(held.iter().all(|h| h.1 >= 0.4 * f64::from(RATE)), "two even shares: {held:?}");
    // Nearly idle (one call every 2 s) for 30 s: at least two renewals, the last one
    // reporting only that demand, and it keeps almost nothing (half again as much).
    let every = 2 * PER_SECOND;
    let tries =
        |i: usize, step: usize| if i == 0 { 2 } else { u32::from(step.is_multiple_of(every)) };
    run_with(&[&busy, &idle], &clock, 30 * PER_SECOND, tries);
    let held = shares(&server, &prefix);
    let smallest = held.iter().map(|h| h.1).fold(f64::INFINITY, f64::min);
    assert!(smallest < 1.0, "the idle instance still holds {smallest}/s: {held:?}");
    // The busy one takes the rest at its next renewal.
    let series = run(&[&busy], &clock, 20 * PER_SECOND, 2);
    let last: u32 = series[0][10 * PER_SECOND..].iter().sum();
    assert!(last >= 10 * RATE * 95 / 100, "the busy instance got {last} of {} in 10 s", 10 * RATE);
}

#[cfg_attr(resilience_no_redis_server, ignore = "needs redis-server on PATH")]
#[test]
fn a_crashed_holders_share_is_reused_once_its_lease_ends() {
    let server = own_server();
    let prefix = unique_prefix("crash");
    let clock = ManualClock::new();
    let survivor = process(&server, &prefix, &clock);
    let crashed = process(&server, &prefix, &clock);
    run(&[&survivor, &crashed], &clock, 30 * PER_SECOND, 2);
    // Dropped without giving anything back: its share stands until its expiry.
    drop(crashed);
    let series = run(&[&survivor], &clock, 10 * PER_SECOND, 2);
    let alone: u32 = series[0].iter().sum();
    assert!(
        alone <= 10 * RATE * 60 / 100,
        "{alone}: the crashed holder's share was given away early"
    );
    // Its expiry passes (moved to the past, as Redis's clock would after P).
    let mut con = admin(&server);
    for (holder, rate, burst, want, _) in shares(&server, &prefix) {
        let value = format!("{rate} {burst} {want} 1");
        let () = redis::cmd("HSET")
            .arg(shares_key(&prefix))
            .arg(holder)
            .arg(value)
            .query(&mut con)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let series = run(&[&survivor], &clock, 20 * PER_SECOND, 2);
    let last: u32 = series[0][10 * PER_SECOND..].iter().sum();
    assert!(last >= 10 * RATE * 95 / 100, "the survivor got {last} of {} in 10 s", 10 * RATE);
    assert_eq!(shares(&server, &prefix).len(), 1, "the crashed holder's share is gone");
}

#[cfg_attr(resilience_no_redis_server, ignore = "needs redis-server on PATH")]
#[test]
fn a_flushed_redis_is_rebuilt_by_the_renewals_and_the_fleet_converges() {
    let server = own_server();
    let prefix = unique_prefix("flush");
    let clock = ManualClock::new();
    let fleet: Vec<RateLimiter> = (0..3).map(|_| process(&server, &prefix, &clock)).collect();
    let refs: Vec<&RateLimiter> = fleet.iter().collect();
    let mut series = run(&refs, &clock, 40 * PER_SECOND, 2);
    let () = redis::cmd("FLUSHALL").query(&mut admin(&server)).unwrap_or_else(|e| panic!("{e}"));
    let after = run(&refs, &clock, 40 * PER_SECOND, 2);
    for (s, a) in series.iter_mut().zip(after) {
        s.extend(a);
    }
    // Re-admitted at most at the shares they held: the bound holds through the flush.
    assert_bounded(&total(&series), 3);
    let held = shares(&server, &prefix);
    assert_eq!(held.len(), 3, "every holder is back: {held:?}");
    let sum: f64 = held.iter().map(|h| h.1).sum();
    assert!(sum <= f64::from(RATE) + 1e-9, "{held:?}");
    for (i, s) in series.iter().enumerate() {
        let last: u32 = s[70 * PER_SECOND..].iter().sum();
        assert!(last >= 10 * RATE / 3 * 80 / 100, "process {i} got {last} in the last 10 s");
    }
}

#[cfg_attr(resilience_no_redis_server, ignore = "needs redis-server on PATH")]
#[test]
fn lease_off_is_one_exact_round_trip_per_acquire() {
    let server = own_server();
    let prefix = unique_prefix("exact");
    let clock = ManualClock::new();
    let exact = |name: &str, burst| {
        let b = backend(server.url(), &prefix, Duration::ZERO, &clock);
        let config = RateLimitConfig::builder()
            .per_minute(1)
            .burst(burst)
            .on_limit(OnLimit::Reject)
            .backend(Backend::Redis(FailMode::Closed))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        RateLimiter::with_redis(name, config, b).unwrap_or_else(|e| panic!("{e}"))
    };
    let (a, b) = (exact("exact", 30), exact("exact", 30));
    // The server learns the script first (a first `EVALSHA` answered `NOSCRIPT` counts as
    // a call too).
    let warm = exact("warm", 1);
    assert_eq!(warm.try_acquire(1), Ok(()));
    let before = script_calls(&server);
    let (mut granted_a, mut granted_b) = (0, 0);
    for _ in 0..20 {
        granted_a += u32::from(a.try_acquire(1).is_ok());
        granted_b += u32::from(b.try_acquire(1).is_ok());
    }
    assert_eq!((granted_a, granted_b), (15, 15), "the burst of 30 exactly, taken in turn");
    assert_eq!(script_calls(&server) - before, 40, "one script per acquire");
}

#[cfg_attr(resilience_no_redis_server, ignore = "needs redis-server on PATH (kills its own)")]
#[test]
fn a_lease_serves_while_redis_is_down_until_it_ends_then_the_fail_mode() {
    let mut server = own_server();
    let prefix = unique_prefix("lease-outage");
    let clock = ManualClock::new();
    let l = process(&server, &prefix, &clock);
    run(&[&l], &clock, 2 * PER_SECOND, 2);
    server.kill();
    // The renewal due at P/2 fails; the share is spent until the lease ends at P.
    let series = run(&[&l], &clock, 17 * PER_SECOND, 2);
    let served: u32 = series[0].iter().sum();
    assert!(served >= 17 * RATE * 95 / 100, "only {served} permits served from the lease");
    clock.advance(PERIOD);
    assert!(
        matches!(l.try_acquire(1), Err(Error::BackendUnavailable { .. })),
        "after its lease, a fail-closed limiter rejects"
    );
}

#[cfg_attr(resilience_no_redis_server, ignore = "needs redis-server on PATH")]
#[test]
fn a_leased_share_serves_rates_beyond_the_exact_modes_microsecond_cap() {
    let server = own_server();
    let prefix = unique_prefix("fast");
    let clock = ManualClock::new();
    // 1 000 000/s: a permit every microsecond, beyond what exact mode keeps in Redis.
    let l =
        limiter_with("fleet", 1_000_000, 1_000, &backend(server.url(), &prefix, PERIOD, &clock));
    let _ = l.try_acquire(1);
    let mut granted = 0u32;
    for _ in 0..1_000 {
        clock.advance(Duration::from_micros(10));
        for _ in 0..20 {
            granted += u32::from(l.try_acquire(1).is_ok());
        }
    }
    // 10 ms at 1 000 000/s: 10 000 permits, at most the burst more.
    assert!((9_900..=11_001).contains(&granted), "{granted} permits in 10 ms at 1 000 000/s");
}
