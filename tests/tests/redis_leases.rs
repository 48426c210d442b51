//! Permit leases (`RedisConfigBuilder::lease`): limiters sharing one Redis bucket take
//! batches of its credit and spend them without a round trip. Each test runs a
//! `redis-server` of its own (to count its commands, or kill it); the backends time their
//! leases on a `ManualClock`, so the tests decide when a lease ends instead of sleeping.
//! Redis's own clock runs in real time: the limits refill one permit a minute, so what
//! Redis grants during a test is the burst.

use std::sync::Arc;
use std::time::Duration;

use resilience::clock::ManualClock;
use resilience::rate_limit::{OnLimit, RateLimitConfig, RateLimiter};
use resilience::redis::{RedisBackend, RedisConfig};
use resilience::{Backend, Error, FailMode};
use resilience_tests::redis_server::{RedisServer, unique_prefix};

const PERIOD: Duration = Duration::from_secs(10);

fn backend(url: &str, prefix: &str, lease: Duration, clock: &ManualClock) -> Arc<RedisBackend> {
    let config = RedisConfig::builder(url)
        .key_prefix(prefix)
        .timeout(Duration::from_secs(2))
        .lease(lease)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    Arc::new(RedisBackend::with_clock(config, clock.shared()).unwrap_or_else(|e| panic!("{e}")))
}

fn limiter(name: &str, burst: u32, backend: &Arc<RedisBackend>) -> RateLimiter {
    let config = RateLimitConfig::builder()
        .per_minute(1)
        .burst(burst)
        .on_limit(OnLimit::Reject)
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    RateLimiter::with_redis(name, config, Arc::clone(backend)).unwrap_or_else(|e| panic!("{e}"))
}

/// Scripts Redis has run (`EVALSHA` calls), from `INFO commandstats`.
fn script_calls(server: &RedisServer) -> u64 {
    let mut con = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("{e}"));
    let info: String =
        redis::cmd("INFO").arg("commandstats").query(&mut con).unwrap_or_else(|e| panic!("{e}"));
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Takes permits one at a time until the limiter refuses; how many it granted.
fn until_refused(l: &RateLimiter) -> u32 {
    let mut granted = 0;
    loop {
        match l.try_acquire(1) {
            Ok(()) => granted += 1,
            Err(Error::RateLimited { .. }) => return granted,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

fn own_server() -> RedisServer {
    RedisServer::own().unwrap_or_else(|| panic!("no redis-server started: see above"))
}

#[cfg_attr(resilience_no_redis_server, ignore = "needs redis-server on PATH")]
#[test]
fn leased_permits_never_exceed_the_shared_bucket_and_cost_few_round_trips() {
    let server = own_server();
    let prefix = unique_prefix("leases");
    let clocks: Vec<ManualClock> = (0..4).map(|_| ManualClock::new()).collect();
    let limiters: Vec<RateLimiter> = clocks
        .iter()
        .map(|c| limiter("fleet", 200, &backend(server.url(), &prefix, PERIOD, c)))
        .collect();
    let before = script_calls(&server);
    // Round robin over four "processes", each spending a little time between permits so
    // its demand (and its next lease) grows, until every one is refused.
    let mut admitted = 0u32;
    let mut open = [true; 4];
    while open.iter().any(|o| *o) {
        for (i, l) in limiters.iter().enumerate() {
            if !open[i] {
                continue;
            }
            clocks[i].advance(Duration::from_millis(1));
            match l.try_acquire(1) {
                Ok(()) => admitted += 1,
                Err(Error::RateLimited { .. }) => open[i] = false,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    }
    let scripts = script_calls(&server) - before;
    // R·t + burst, with R = 1/min and t well under a minute: the burst, plus at most the
    // one permit refilled meanwhile. The leases hold credit Redis already debited, so they
    // add nothing; the only shortfall is what an instance was refused while another held
    // an unspent remainder.
    assert!(admitted <= 201, "admitted {admitted} of a burst of 200");
    assert!(admitted >= 190, "admitted only {admitted}: leases stranded too much");
    assert!(
        u64::from(admitted) >= 5 * scripts,
        "{scripts} scripts for {admitted} permits: leases should cost a fraction of a round trip each"
    );
}

#[cfg_attr(resilience_no_redis_server, ignore = "needs redis-server on PATH")]
#[test]
fn lease_off_is_one_exact_round_trip_per_acquire() {
    let server = own_server();
    let prefix = unique_prefix("exact");
    let clock = ManualClock::new();
    let (a, b) = (
        limiter("exact", 30, &backend(server.url(), &prefix, Duration::ZERO, &clock)),
        limiter("exact", 30, &backend(server.url(), &prefix, Duration::ZERO, &clock)),
    );
    // The server learns the script first (a first `EVALSHA` answered `NOSCRIPT` counts as
    // a call too).
    let warm = limiter("warm", 1, &backend(server.url(), &prefix, Duration::ZERO, &clock));
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
fn a_lease_serves_while_redis_is_down_and_an_idle_instance_holds_nothing_after_its_period() {
    let mut server = own_server();
    let prefix = unique_prefix("lease-outage");
    let clock = ManualClock::new();
    let l = limiter("outage", 100, &backend(server.url(), &prefix, PERIOD, &clock));
    // A demand of a permit every 10 ms grows the lease past the first few permits.
    for _ in 0..4 {
        assert_eq!(l.try_acquire(1), Ok(()));
        clock.advance(Duration::from_millis(10));
    }
    assert_eq!(l.try_acquire(1), Ok(()), "a renewal sized to the demand");
    server.kill();
    // Fail closed, but the lease it holds is spent without Redis.
    let mut from_lease = 0;
    let refusal = loop {
        match l.try_acquire(1) {
            Ok(()) => from_lease += 1,
            other => break other,
        }
    };
    assert!(from_lease >= 10, "only {from_lease} permits served from the lease");
    assert!(matches!(refusal, Err(Error::BackendUnavailable { .. })), "{refusal:?}");

    // A second limiter with a fresh lease, then idle past the period: nothing is left to
    // spend, so with Redis down it fails closed at once.
    server.start().unwrap_or_else(|e| panic!("{e}"));
    let idle_clock = ManualClock::new();
    let idle = limiter("idle", 100, &backend(server.url(), &prefix, PERIOD, &idle_clock));
    assert_eq!(idle.try_acquire(1), Ok(()));
    server.kill();
    assert_eq!(idle.try_acquire(1), Ok(()), "within its period the lease serves");
    idle_clock.advance(PERIOD);
    assert!(
        matches!(idle.try_acquire(1), Err(Error::BackendUnavailable { .. })),
        "after its period an idle instance holds nothing"
    );
}

#[cfg_attr(resilience_no_redis_server, ignore = "needs redis-server on PATH")]
#[test]
fn a_busy_instance_leases_at_most_its_share_and_a_crashed_holders_share_returns() {
    let server = own_server();
    let prefix = unique_prefix("share");
    let mut admin = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("{e}"));
    let (busy_clock, small_clock) = (ManualClock::new(), ManualClock::new());
    let busy = limiter("share", 100, &backend(server.url(), &prefix, PERIOD, &busy_clock));
    let small = limiter("share", 100, &backend(server.url(), &prefix, PERIOD, &small_clock));
    let before = script_calls(&server);
    assert_eq!(small.try_acquire(1), Ok(()), "the small instance holds a lease: two holders");
    // The busy one asks for far more than its share (a high demand on its clock); each
    // of its leases is at most half the burst, so after its first renewals it has taken
    // at most a share per renewal, and the small one still finds permits in Redis.
    for _ in 0..8 {
        assert_eq!(busy.try_acquire(1), Ok(()));
        busy_clock.advance(Duration::from_micros(10));
    }
    let scripts = script_calls(&server) - before;
    assert!(scripts >= 2, "the busy instance renewed");
    let busy_total = 8 + until_refused(&busy);
    assert!(busy_total <= 100 - 4, "the busy instance took {busy_total} of 100");
    let small_total = 1 + until_refused(&small);
    assert!(small_total >= 4, "the small instance got {small_total}: starved");
    assert!(busy_total + small_total <= 101);

    // A holder that stops renewing (a crash) drops out of the holders once its lease
    // ends on Redis's clock; here its lease end is moved to the past, as time would.
    let holders = format!("{{{prefix}:rl:share}}:holders");
    let members: Vec<String> =
        redis::cmd("ZRANGE").arg(&holders).arg(0).arg(-1).query(&mut admin).unwrap_or_default();
    assert_eq!(members.len(), 2, "two holders: {members:?}");
    for m in &members {
        let () = redis::cmd("ZADD").arg(&holders).arg(1).arg(m).query(&mut admin).unwrap_or(());
    }
    let next = limiter("share", 100, &backend(server.url(), &prefix, PERIOD, &ManualClock::new()));
    let _ = next.try_acquire(1);
    let members: Vec<String> =
        redis::cmd("ZRANGE").arg(&holders).arg(0).arg(-1).query(&mut admin).unwrap_or_default();
    assert_eq!(members.len(), 1, "the lapsed holders are gone, the new one is alone: {members:?}");
}
