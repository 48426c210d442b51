//! The header formats real APIs send, as `sync_from_headers` reads them: Shopify's
//! decimal `Retry-After`, GitHub's `X-RateLimit-*` with an epoch reset, the IETF
//! `RateLimit` fields, epochs told from deltas, nonsense refused, and every pause a
//! header can cause capped by `max_pause`. Time is a `ManualClock`'s.

use std::time::{Duration, SystemTime};

use resilience::clock::{Clock, ManualClock};
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, RateLimitConfig, RateLimiter};
use resilience::{ConfigError, Error};

/// Wed, 21 Oct 2015 07:28:00 GMT.
const WALL: u64 = 1_445_412_480;

fn limiter_with(max_pause: Option<Duration>) -> (RateLimiter, ManualClock) {
    let clock = ManualClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(WALL));
    let mut b = RateLimitConfig::builder().per_second(10).burst(10).on_limit(OnLimit::Reject);
    if let Some(m) = max_pause {
        b = b.max_pause(m);
    }
    let config = b.build().unwrap_or_else(|e| unreachable!("{e}"));
    (RateLimiter::with_clock("api", config, clock.shared()), clock)
}

fn limiter() -> (RateLimiter, ManualClock) {
    limiter_with(None)
}

/// The wait a refused `try_acquire` reports.
fn wait(l: &RateLimiter) -> Option<Duration> {
    match l.try_acquire(1) {
        Err(Error::RateLimited { retry_after, .. }) => Some(retry_after),
        _ => None,
    }
}

/// Paused exactly `d`: refused until then, granted right after.
fn assert_paused_for(l: &RateLimiter, clock: &ManualClock, d: Duration) {
    assert_eq!(wait(l), Some(d));
    clock.advance(d - Duration::from_millis(1));
    assert!(wait(l).is_some(), "granted before the pause of {d:?} ended");
    clock.advance(Duration::from_millis(1));
    assert_eq!(l.try_acquire(1), Ok(()));
}

fn epoch_in(secs: u64, clock: &ManualClock) -> String {
    let now = clock.wall_now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs());
    (now.unwrap_or(0) + secs).to_string()
}

#[test]
fn shopify_decimal_retry_after_pauses_two_seconds() {
    let (l, clock) = limiter();
    let r = l.sync_from_headers([("Retry-After", "2.0")]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.paused_for, Some(Duration::from_secs(2)));
    assert_paused_for(&l, &clock, Duration::from_secs(2));

    let r = l.sync_from_headers([("retry-after", "0.25")]);
    assert_eq!(r.paused_for, Some(Duration::from_millis(250)));
}

#[test]
fn github_x_ratelimit_with_an_epoch_reset_pauses_until_the_reset() {
    let (l, clock) = limiter();
    clock.advance(Duration::from_secs(7)); // the wall clock moves with the clock
    let reset = epoch_in(30, &clock);
    let r = l.sync_from_headers([
        ("x-ratelimit-limit", "5000"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", reset.as_str()),
        ("x-ratelimit-used", "5000"),
    ]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.remaining, r.limit), (Some(0), Some(5000)));
    assert_eq!(r.reset, Some(Duration::from_secs(30)));
    assert_eq!(r.paused_for, Some(Duration::from_secs(30)));
    assert_paused_for(&l, &clock, Duration::from_secs(30));
}

#[test]
fn github_remaining_lowers_the_bucket_without_pausing() {
    let (l, clock) = limiter();
    let reset = epoch_in(3600, &clock);
    let r = l
        .sync_from_headers([("X-RateLimit-Remaining", "4"), ("X-RateLimit-Reset", reset.as_str())]);
    assert_eq!((r.remaining, r.paused_for), (Some(4), None));
    assert_eq!(l.available(), 4);
}

#[test]
fn ietf_ratelimit_field_with_nothing_remaining_pauses_until_t() {
    let (l, clock) = limiter();
    let r = l.sync_from_headers([
        ("RateLimit-Policy", "\"default\";q=100;w=60"),
        ("RateLimit", "\"default\";r=0;t=10"),
    ]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.remaining, r.limit), (Some(0), Some(100)));
    assert_eq!(r.paused_for, Some(Duration::from_secs(10)));
    assert_paused_for(&l, &clock, Duration::from_secs(10));
}

#[test]
fn ietf_ratelimit_field_uses_the_most_restrictive_policy() {
    let (l, _clock) = limiter();
    let r = l.sync_from_headers([("RateLimit", "\"burst\";r=7;t=1, \"daily\";r=3;t=3600")]);
    assert_eq!((r.remaining, r.paused_for), (Some(3), None));
    assert_eq!(l.available(), 3);
}

#[test]
fn an_epoch_in_ratelimit_reset_is_read_as_an_epoch_not_56_years() {
    let (l, clock) = limiter();
    let reset = epoch_in(45, &clock);
    let r = l.sync_from_headers([("RateLimit-Remaining", "0"), ("RateLimit-Reset", &reset)]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.paused_for, Some(Duration::from_secs(45)));
    assert_paused_for(&l, &clock, Duration::from_secs(45));
}

#[test]
fn the_reported_56_year_value_is_refused_and_pauses_nothing() {
    // 1 795 954 842: an epoch years ahead of this clock's wall time.
    let (l, _clock) = limiter();
    let r = l.sync_from_headers([("RateLimit-Remaining", "0"), ("RateLimit-Reset", "1795954842")]);
    assert_eq!(r.paused_for, None);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].header(), "RateLimit-Reset");
    assert_eq!(r.errors[0].reason(), "epoch time more than a day ahead of the clock");
    assert_eq!(l.available(), 0, "the remaining count still applies");
}

#[test]
fn a_pause_longer_than_max_pause_is_cut_to_it_and_reported() {
    let (l, clock) = limiter_with(Some(Duration::from_secs(60)));
    let r = l.sync_from_headers([("Retry-After", "3600")]);
    assert_eq!(r.paused_for, Some(Duration::from_secs(60)));
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].header(), "Retry-After");
    assert_eq!(r.errors[0].value(), "3600s");
    assert!(r.errors[0].reason().contains("max_pause"), "{}", r.errors[0]);
    assert_paused_for(&l, &clock, Duration::from_secs(60));
}

#[test]
fn the_default_max_pause_is_fifteen_minutes() {
    let (l, clock) = limiter();
    assert_eq!(l.config().max_pause(), Duration::from_secs(15 * 60));
    let reset = epoch_in(20 * 3600, &clock);
    let r = l.sync_from_headers([("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", &reset)]);
    assert_eq!(r.paused_for, Some(Duration::from_secs(15 * 60)));
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].header(), "X-RateLimit-Reset");
    assert_paused_for(&l, &clock, Duration::from_secs(15 * 60));
}

#[test]
fn nonsense_values_are_refused_and_reported() {
    let (l, _clock) = limiter();
    let r = l.sync_from_headers([
        ("Retry-After", "2.0.0"),
        ("X-RateLimit-Remaining", "-1"),
        ("X-RateLimit-Reset", "yesterday"),
        ("RateLimit", "\"default\";t=10"),
        ("RateLimit-Policy", "\"default"),
        ("RateLimit-Reset", "315360000"), // an epoch in 1980: far in the past
        ("RateLimit-Limit", "lots"),
    ]);
    let mut got: Vec<(&str, &str)> = r.errors.iter().map(|e| (e.header(), e.reason())).collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("RateLimit", "policy without `r` (remaining)"),
            ("RateLimit-Limit", "expected a non-negative integer"),
            ("RateLimit-Policy", "unterminated string"),
            ("RateLimit-Reset", "epoch time more than a day in the past"),
            ("Retry-After", "expected non-negative seconds, e.g. `120` or `2.5`"),
            ("X-RateLimit-Remaining", "negative value"),
            ("X-RateLimit-Reset", "expected non-negative seconds, e.g. `120` or `2.5`"),
        ]
    );
    assert!(!r.applied_anything());
    assert_eq!(l.available(), 10);
}

#[test]
fn keyed_limiters_read_the_same_formats_and_cap() {
    let clock = ManualClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(WALL));
    let config = RateLimitConfig::builder()
        .per_second(10)
        .on_limit(OnLimit::Reject)
        .max_pause(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let l: KeyedRateLimiter<String> = KeyedRateLimiter::with_clock("keyed", config, clock.shared());
    let r = l.sync_from_headers("shop", [("RateLimit", "x;r=0;t=9")]);
    assert_eq!(r.paused_for, Some(Duration::from_secs(5)));
    assert_eq!(r.errors.len(), 1);
    assert!(l.try_acquire("shop", 1).is_err());
    assert_eq!(l.try_acquire("other", 1), Ok(()));
}

#[test]
fn max_pause_is_a_config_key_and_validated() {
    let c = RateLimitConfig::builder().per_second(1).max_pause(Duration::ZERO).build();
    assert_eq!(c.err().map(|e: ConfigError| e.field().to_string()), Some("max_pause".into()));
    let registry = resilience::registry::Registry::new();
    let loaded = registry.load_toml("[api.rate_limit]\nper_second = 2\nmax_pause = \"90s\"\n");
    assert_eq!(loaded.map_err(|e| e.to_string()), Ok(()));
    let fallback = RateLimitConfig::builder().per_second(1).build();
    let fallback = fallback.unwrap_or_else(|e| unreachable!("{e}"));
    let l = registry.rate_limiters().get_or_create("api", fallback);
    assert_eq!(l.map(|l| l.config().max_pause()).ok(), Some(Duration::from_secs(90)));
}
