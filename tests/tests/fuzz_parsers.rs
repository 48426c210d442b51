//! Adversarial input: every parser of server data and the TOML loader, fed arbitrary
//! strings and structured near-misses (huge numbers, signs, whitespace, unicode,
//! truncated dates). None may panic or overflow; garbage gets an error that names the
//! header (or field); valid input gets exactly the value a reference reading gives.
//! Builders fed extreme values return errors; extreme-but-valid backoffs run 10 000
//! steps without overflow.
//!
//! CI runs 2 000 inputs per parser; the full run 1 000 000 per parser:
//! `RESILIENCE_FULL=1 cargo test --release -p resilience-tests --test fuzz_parsers -- --nocapture`
//! (`PROPTEST_CASES=n` overrides, `RESILIENCE_SEED=n` replays a seed).

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use resilience::backoff::{Backoff, Jitter};
use resilience::circuit::CircuitBreakerConfig;
use resilience::clock::ManualClock;
use resilience::rate_limit::headers::{self, CallLimit, HeaderError, Quota};
use resilience::rate_limit::{Rate, RateLimitConfig, RateLimiter};
use resilience::registry::Registry;
use resilience::retry::RetryPolicy;
use resilience::{BulkheadConfig, ConfigError};

fn cases() -> u32 {
    let full = std::env::var("RESILIENCE_FULL").is_ok_and(|v| !v.is_empty() && v != "0");
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(if full {
        1_000_000
    } else {
        3_000
    })
}

fn seed() -> u64 {
    std::env::var("RESILIENCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xf022_5eed)
}

fn fuzz<S: Strategy>(what: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases: cases(),
        rng_seed: RngSeed::Fixed(seed()),
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    };
    let r = TestRunner::new(config).run(&strategy, test);
    println!(
        "fuzz {what}: {} inputs, seed {}: {}",
        cases(),
        seed(),
        if r.is_ok() { "no panic, no overflow, every error clear" } else { "FAILED" }
    );
    if let Err(e) = r {
        panic!("fuzz {what}, seed {}: {e}", seed());
    }
}

/// Near-miss numbers: digits with signs, whitespace, huge values, unicode digits.
fn numberish() -> impl Strategy<Value = String> {
    let core = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_string()),
        Just("99999999999999999999999999999999".to_string()),
        "[0-9]{1,30}",
        Just("4294967296".to_string()),
    ];
    let pre = prop_oneof![
        Just(""),
        Just(" "),
        Just("\t"),
        Just("-"),
        Just("+"),
        Just("0x"),
        Just("\u{a0}"),
        Just("\u{200b}"),
        Just("０")
    ];
    let post = prop_oneof![
        Just(""),
        Just(" "),
        Just("\r\n"),
        Just(".5"),
        Just("e3"),
        Just("s"),
        Just(";w=60"),
        Just("\u{0}"),
        Just("😀")
    ];
    (pre, core, post).prop_map(|(a, b, c)| format!("{a}{b}{c}"))
}

/// Valid HTTP dates (three formats), then mangled: truncated, case-changed, junk added.
fn dateish() -> impl Strategy<Value = String> {
    let date = (0u64..=253_402_300_799)
        .prop_map(|s| httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(s)));
    (date, 0u8..6, any::<usize>(), "[ -~]{0,3}").prop_map(|(d, how, at, junk)| {
        let cut = at % (d.len() + 1);
        match how {
            0 => d,
            1 => d[..cut].to_string(),
            2 => d.to_lowercase(),
            3 => format!("{}{junk}{}", &d[..cut], &d[cut..]),
            4 => d.replace("GMT", "UTC"),
            _ => d.replace(' ', "  "),
        }
    })
}

fn anything() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "[0-9 /;+\\-.,:a-zA-Z]{0,40}",
        numberish(),
        (numberish(), numberish()).prop_map(|(a, b)| format!("{a}/{b}")),
        dateish(),
        Just(String::new()),
        Just("x".repeat(10_000)),
    ]
}

/// Reference reading of a non-negative decimal: trimmed, ASCII digits only.
fn reference_uint(s: &str) -> Option<u64> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Reference reading of non-negative decimal seconds: trimmed, `digits` or
/// `digits.digits`, the fraction cut at the nanosecond.
fn reference_seconds(s: &str) -> Option<Duration> {
    let t = s.trim();
    let (int, frac) = t.split_once('.').map_or((t, None), |(i, f)| (i, Some(f)));
    let secs = reference_uint(int)?;
    let nanos = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{:0<9}", &f[..f.len().min(9)]).parse().ok()?
        }
        Some(_) => return None,
    };
    Some(Duration::new(secs, nanos))
}

/// Reference reading of a reset: seconds from now below ten years of seconds, an epoch
/// time within a day of `now()` from there on (a past one meaning now).
fn reference_reset(s: &str) -> Option<Duration> {
    let secs = reference_seconds(s.split(';').next().unwrap_or(""))?;
    if secs < Duration::from_secs(315_360_000) {
        return Some(secs);
    }
    let at = SystemTime::UNIX_EPOCH.checked_add(secs)?;
    let day = Duration::from_secs(86_400);
    match at.duration_since(now()) {
        Ok(d) => (d <= day).then_some(d),
        Err(e) => (e.duration() <= day).then_some(Duration::ZERO),
    }
}

/// Reset values near `now()`: epochs a few days either side, with fractions and junk.
fn resetish() -> impl Strategy<Value = String> {
    let base = 1_445_412_480i64;
    prop_oneof![
        (-300_000i64..300_000).prop_map(move |d| (base + d).to_string()),
        (-300_000i64..300_000, 0u32..1000).prop_map(move |(d, f)| format!("{}.{f}", base + d)),
        (0u64..400_000_000).prop_map(|n| n.to_string()),
        numberish(),
        anything(),
    ]
}

fn clear(e: &HeaderError, header: &str, value: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.header(), header);
    prop_assert!(!e.reason().is_empty());
    prop_assert!(e.value().chars().count() <= 65, "shown value truncated");
    prop_assert!(value.starts_with(e.value().trim_end_matches('…')));
    let text = e.to_string();
    prop_assert!(text.starts_with(&format!("invalid `{header}` header")), "{}", text);
    Ok(())
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480)
}

#[test]
fn fuzz_retry_after() {
    fuzz("Retry-After (seconds and HTTP dates)", anything(), |s| {
        let r = headers::parse_retry_after(&s, now());
        let t = s.trim();
        if t.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'+') {
            prop_assert_eq!(r.clone().ok(), reference_seconds(&s), "{:?}", s);
        } else if let Ok(at) = httpdate::parse_http_date(t) {
            prop_assert_eq!(
                r.clone().ok(),
                Some(at.duration_since(now()).unwrap_or(Duration::ZERO))
            );
        } else {
            prop_assert!(r.is_err(), "{:?} accepted", s);
        }
        if let Err(e) = &r {
            clear(e, headers::RETRY_AFTER, &s)?;
        }
        Ok(())
    });
}

#[test]
fn fuzz_shopify_call_limit() {
    fuzz("X-Shopify-Shop-Api-Call-Limit", anything(), |s| {
        let r = headers::parse_shopify_call_limit(&s);
        let want = s.split_once('/').and_then(|(u, c)| {
            let u = u32::try_from(reference_uint(u)?).ok()?;
            let c = u32::try_from(reference_uint(c)?).ok()?;
            (c >= 1).then_some(CallLimit { used: u, capacity: c })
        });
        prop_assert_eq!(r.clone().ok(), want, "{:?}", s);
        if let Err(e) = &r {
            clear(e, headers::SHOPIFY_CALL_LIMIT, &s)?;
        }
        Ok(())
    });
}

#[test]
fn fuzz_ratelimit_remaining() {
    fuzz("RateLimit-Remaining", anything(), |s| {
        let r = headers::parse_ratelimit_remaining(&s);
        let want = reference_uint(s.split(';').next().unwrap_or(""));
        prop_assert_eq!(r.clone().ok(), want, "{:?}", s);
        if let Err(e) = &r {
            clear(e, headers::RATELIMIT_REMAINING, &s)?;
        }
        Ok(())
    });
}

#[test]
fn fuzz_ratelimit_reset() {
    fuzz("RateLimit-Reset (seconds and epochs)", resetish(), |s| {
        let r = headers::parse_ratelimit_reset(&s, now());
        prop_assert_eq!(r.clone().ok(), reference_reset(&s), "{:?}", s);
        if let Err(e) = &r {
            clear(e, headers::RATELIMIT_RESET, &s)?;
        }
        Ok(())
    });
}

#[test]
fn fuzz_x_ratelimit_headers() {
    fuzz("X-RateLimit-Remaining / X-RateLimit-Reset", resetish(), |s| {
        let r = headers::parse_x_ratelimit_reset(&s, now());
        prop_assert_eq!(r.clone().ok(), reference_reset(&s), "{:?}", s);
        if let Err(e) = &r {
            clear(e, headers::X_RATELIMIT_RESET, &s)?;
        }
        let r = headers::parse_x_ratelimit_remaining(&s);
        prop_assert_eq!(r.clone().ok(), reference_uint(&s), "{:?}", s);
        if let Err(e) = &r {
            clear(e, headers::X_RATELIMIT_REMAINING, &s)?;
        }
        Ok(())
    });
}

/// IETF `RateLimit` / `RateLimit-Policy` lists: well-formed policies (with the expected
/// most restrictive `(r, t)`), mangled ones, and anything.
fn policy_list() -> impl Strategy<Value = (String, Option<(u64, Option<u64>)>)> {
    let policy = ("[a-z]{1,6}", any::<bool>(), 0u64..1000, prop::option::of(0u64..100_000));
    let well_formed = prop::collection::vec(policy, 1..4).prop_map(|ps| {
        let text: Vec<String> = ps
            .iter()
            .map(|(name, quoted, r, t)| {
                let name = if *quoted { format!("\"{name}\"") } else { name.clone() };
                let t = t.map(|t| format!(";t={t}")).unwrap_or_default();
                format!("{name};r={r}{t};pk=:YWJj:")
            })
            .collect();
        let best = ps
            .iter()
            .map(|(_, _, r, t)| (*r, *t))
            .min_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
        (text.join(", "), best)
    });
    let mangled =
        (well_formed.clone(), any::<usize>(), "[ -~]{0,3}").prop_map(|((t, _), at, junk)| {
            let cut = at % (t.len() + 1);
            (format!("{}{junk}{}", &t[..cut], &t[cut..]), None)
        });
    prop_oneof![well_formed, mangled, anything().prop_map(|s| (s, None))]
}

#[test]
fn fuzz_ietf_ratelimit_fields() {
    fuzz("RateLimit / RateLimit-Policy", policy_list(), |(s, want)| {
        let r = headers::parse_ratelimit(&s, now());
        if let Some((remaining, t)) = want {
            let want = Quota { remaining, reset: t.map(Duration::from_secs) };
            prop_assert_eq!(r.clone().ok(), Some(want), "{:?}", s);
        }
        if let Err(e) = &r {
            clear(e, headers::RATELIMIT, &s)?;
        }
        let policy = s.replace("r=", "q=").replace("t=", "w=");
        if let Err(e) = headers::parse_ratelimit_policy(&policy) {
            clear(&e, headers::RATELIMIT_POLICY, &policy)?;
        }
        Ok(())
    });
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(headers::RETRY_AFTER.to_string()),
        Just(headers::SHOPIFY_CALL_LIMIT.to_ascii_lowercase()),
        Just(headers::RATELIMIT_REMAINING.to_ascii_uppercase()),
        Just(headers::RATELIMIT_RESET.to_string()),
        Just(format!(" {} ", headers::RATELIMIT_RESET)),
        Just(headers::RATELIMIT_LIMIT.to_string()),
        Just(headers::RATELIMIT.to_string()),
        Just(headers::RATELIMIT_POLICY.to_string()),
        Just(headers::X_RATELIMIT_REMAINING.to_string()),
        Just(headers::X_RATELIMIT_RESET.to_ascii_lowercase()),
        Just(headers::X_RATELIMIT_LIMIT.to_string()),
        any::<String>(),
    ]
}

#[test]
fn fuzz_sync_from_headers() {
    let strategy = (
        1u32..=1_000,
        1u32..=100,
        prop::collection::vec((header_name(), anything()), 0..6),
        0u64..=10_000_000,
    );
    fuzz("RateLimiter::sync_from_headers", strategy, |(rate, burst, hs, advance)| {
        let clock = ManualClock::new();
        let config = RateLimitConfig::builder().rate(Rate::per_second(rate)).burst(burst).build();
        let config = config.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let limiter = RateLimiter::with_clock("fuzz-sync", config, clock.shared());
        let report = limiter.sync_from_headers(hs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        prop_assert!(report.errors.len() <= hs.len());
        for e in &report.errors {
            prop_assert!(e.to_string().starts_with("invalid `"), "{}", e);
        }
        prop_assert!(report.paused_for.is_none_or(|d| d <= limiter.config().max_pause()));
        // The limiter stays usable and within its (possibly adopted) burst.
        clock.advance(Duration::from_micros(advance));
        let _ = limiter.try_acquire(1);
        prop_assert!(limiter.available() <= limiter.config().burst());
        let _ = limiter.stats();
        Ok(())
    });
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        numberish().prop_map(|n| n.trim().to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("1e309".to_string()),
        "\"[0-9]{0,25}(\\.[0-9]{0,5})?(ns|us|ms|s|m|h|d|x|)\"",
        "\"-?[0-9]{1,3}(ms|s)\"",
        Just("\"18446744073709551615s\"".to_string()),
        "\"(none|full|equal|proportional|ratio)(\\(-?[0-9.e]{0,6}\\))?\"",
        "\"(wait|reject|queue|shopify|api|postgres|nope)\"",
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        "\"[^\"\\\\]{0,8}\"",
    ]
}

fn toml_doc() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("max_attempts"),
        Just("backoff"),
        Just("initial_delay"),
        Just("max_delay"),
        Just("multiplier"),
        Just("jitter"),
        Just("max_elapsed"),
        Just("honor_retry_after"),
        Just("budget"),
        Just("failure_threshold"),
        Just("failure_rate"),
        Just("window"),
        Just("window_calls"),
        Just("window_duration"),
        Just("min_calls"),
        Just("recovery_timeout"),
        Just("recovery_jitter"),
        Just("half_open_max_calls"),
        Just("success_threshold"),
        Just("slow_call"),
        Just("per_second"),
        Just("per_minute"),
        Just("burst"),
        Just("on_limit"),
        Just("max_wait"),
        Just("max_queue"),
        Just("idle_timeout"),
        Just("max_pause"),
        Just("max_concurrent"),
        Just("base"),
        Just("timeout"),
        Just("duration"),
        Just("bogus"),
    ];
    let table = prop_oneof![
        Just(""),
        Just(".retry"),
        Just(".circuit_breaker"),
        Just(".rate_limit"),
        Just(".bulkhead"),
        Just(".timeout"),
        Just(".nope"),
    ];
    let section = ("[a-z\\-]{1,8}", table, prop::collection::vec((key, toml_value()), 0..5))
        .prop_map(|(name, table, kvs)| {
            let body: String = kvs.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
            format!("[{name}{table}]\n{body}")
        });
    prop::collection::vec(section, 0..4).prop_map(|s| s.concat())
}

#[test]
fn fuzz_toml_loader() {
    let strategy = prop_oneof![3 => toml_doc(), 1 => anything()];
    fuzz("Registry::load_toml", strategy, |text| {
        let registry = Registry::new();
        if let Err(e) = registry.load_toml(&text) {
            prop_assert!(!e.field().is_empty(), "error names a field: {}", e);
            prop_assert!(e.to_string().starts_with("invalid `"), "{}", e);
        }
        Ok(())
    });
}

fn refused<T: std::fmt::Debug>(r: Result<T, ConfigError>, field: &str) {
    match r {
        Err(e) => assert!(e.field().contains(field), "expected an error on `{field}`, got {e}"),
        Ok(v) => panic!("accepted an extreme `{field}`: {v:?}"),
    }
}

#[test]
fn builders_refuse_extreme_values() {
    let s = Duration::from_secs;
    refused(RetryPolicy::builder().max_attempts(u32::MAX).build(), "max_attempts");
    refused(RetryPolicy::builder().max_attempts(0).build(), "max_attempts");
    refused(RetryPolicy::builder().deadline(Duration::MAX).build(), "deadline");
    refused(RetryPolicy::builder().deadline(Duration::ZERO).build(), "deadline");
    for m in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -1.0, 0.999] {
        let b = Backoff::exponential(s(1)).with_multiplier(m);
        refused(b.validate().map(|_| b), "multiplier");
        refused(RetryPolicy::builder().backoff(b).build(), "multiplier");
    }
    for j in [Jitter::Proportional(f64::NAN), Jitter::Ratio(f64::INFINITY), Jitter::Ratio(-0.1)] {
        let b = Backoff::default().with_jitter(j);
        refused(b.validate().map(|_| b), "jitter");
    }
    refused(Backoff::exponential(s(1)).with_max_delay(Duration::MAX).validate(), "max_delay");
    refused(Backoff::exponential(Duration::ZERO).validate(), "initial");
    refused(Backoff::linear(Duration::MAX).validate(), "max_delay");

    let cb = CircuitBreakerConfig::builder;
    refused(cb().failure_threshold(0).build(), "failure_threshold");
    refused(cb().failure_threshold(u32::MAX).build(), "failure_threshold");
    refused(cb().recovery_timeout(Duration::MAX).build(), "recovery_timeout");
    refused(cb().recovery_timeout(Duration::ZERO).build(), "recovery_timeout");
    refused(cb().recovery_jitter(f64::NAN).build(), "recovery_jitter");
    refused(cb().failure_rate(f64::NAN).build(), "failure_rate");
    refused(cb().failure_rate(f64::INFINITY).build(), "failure_rate");
    refused(cb().half_open_max_calls(u32::MAX).build(), "half_open_max_calls");
    refused(cb().success_threshold(0).build(), "success_threshold");
    refused(cb().slow_call(Duration::MAX).build(), "slow_call");

    let rl = || RateLimitConfig::builder().per_second(10);
    refused(RateLimitConfig::builder().per_second(0).build(), "rate");
    refused(RateLimitConfig::builder().rate(Rate::new(1, Duration::MAX)).build(), "rate");
    refused(
        RateLimitConfig::builder().rate(Rate::new(u32::MAX, Duration::from_nanos(1))).build(),
        "rate",
    );
    refused(RateLimitConfig::builder().per_second(1).burst(u32::MAX).build(), "burst");
    refused(rl().burst(0).build(), "burst");
    refused(rl().max_wait(Duration::MAX).build(), "max_wait");
    refused(rl().idle_timeout(Duration::ZERO).build(), "idle_timeout");

    refused(BulkheadConfig::builder().max_concurrent(0).build(), "max_concurrent");
    refused(BulkheadConfig::builder().max_wait(Duration::MAX).build(), "max_wait");
    println!(
        "builders: every extreme value (u32::MAX, Duration::MAX, NaN/inf, zero) refused with its field named"
    );
}

#[test]
fn extreme_but_valid_backoffs_run_10000_steps_within_the_cap() {
    let limit = Duration::from_nanos(u64::MAX);
    let jitters =
        [Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Proportional(1.0), Jitter::Ratio(0.0)];
    let mut checked = 0;
    for j in jitters {
        for b in [
            Backoff::exponential(Duration::from_nanos(1))
                .with_multiplier(1e300)
                .with_max_delay(limit),
            Backoff::exponential(limit).with_max_delay(limit),
            Backoff::exponential(Duration::from_nanos(1))
                .with_multiplier(1.000_000_1)
                .with_max_delay(limit),
            Backoff::linear(limit / 2).with_step(limit).with_max_delay(limit),
            Backoff::fibonacci(limit / 3).with_max_delay(limit),
            Backoff::decorrelated(limit / 2).with_max_delay(limit),
            Backoff::decorrelated(Duration::from_nanos(1)).with_max_delay(limit),
            Backoff::constant(Duration::ZERO),
            Backoff::constant(limit),
        ] {
            let b = b.with_jitter(j);
            assert!(b.validate().is_ok(), "{b:?}");
            for d in b.iter_seeded(seed()).take(10_000) {
                assert!(d <= b.max_delay(), "{b:?}: {d:?}");
                checked += 1;
            }
        }
    }
    // A retry policy at the extremes computes its delays without overflow too.
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .max_attempts(10_000)
        .backoff(
            Backoff::exponential(Duration::from_nanos(1))
                .with_multiplier(1e300)
                .with_max_delay(limit),
        )
        .clock(clock.shared())
        .seed(seed())
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let mut calls = 0u32;
    let r: Result<(), ()> = policy.call(|| {
        calls += 1;
        Err(())
    });
    assert_eq!((r, calls), (Err(()), 10_000));
    println!(
        "backoff: {checked} delays of extreme-but-valid configs, all within the cap; 10 000 attempts at multiplier 1e300 without overflow"
    );
}
