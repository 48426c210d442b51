//! One key set and one duration grammar for every front-end: the attributes, TOML files
//! and `Deserialize` accept the same keys per layer, spelled the same, with the same
//! durations.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use resilience::backoff::{Jitter, Strategy};
use resilience::circuit::Window;
use resilience::config::{self, LayerConfig, TIMEOUT_KEYS, Value};
use resilience::hedge::HedgeConfig;
use resilience::presets::ResilienceConfig;
use resilience::registry::Registry;
use resilience::retry::{RetryBudgetConfig, RetryEvent};
use resilience::{
    BulkheadConfig, CircuitBreakerConfig, Error, OnLimit, RateLimitConfig, RetryPolicy, registry,
};

/// The macro crate's own key tables, as its argument parser reads them.
#[allow(dead_code, unreachable_pub)]
#[path = "../../resilience-macros/src/args/keys.rs"]
mod attribute_keys;

/// One attribute's layer keys: `(key, kind, example)`.
type KeyTable = &'static [(&'static str, attribute_keys::Kind, &'static str)];

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

fn attribute(table: KeyTable) -> BTreeSet<String> {
    table.iter().map(|(k, _, _)| k.to_string()).collect()
}

#[test]
fn the_attributes_accept_exactly_the_keys_of_each_layer_config() {
    assert_eq!(attribute(attribute_keys::RETRY), set(RetryPolicy::KEYS), "retry");
    assert_eq!(
        attribute(attribute_keys::CIRCUIT_BREAKER),
        set(CircuitBreakerConfig::KEYS),
        "circuit_breaker"
    );
    assert_eq!(attribute(attribute_keys::RATE_LIMIT), set(RateLimitConfig::KEYS), "rate_limit");
    assert_eq!(attribute(attribute_keys::BULKHEAD), set(BulkheadConfig::KEYS), "bulkhead");
    assert_eq!(attribute(attribute_keys::TIMEOUT), set(TIMEOUT_KEYS), "timeout");
    assert_eq!(attribute(attribute_keys::HEDGE), set(HedgeConfig::KEYS), "hedge");
}

#[test]
fn only_shopify_sets_its_limits_per_tenant() {
    // The attributes read the same list (the runtime's `preset_names` file) to require a key.
    let per_tenant: Vec<(&str, &str)> = resilience::Preset::ALL
        .iter()
        .filter_map(|p| p.tenant().map(|tenant| (p.name(), tenant)))
        .collect();
    assert_eq!(per_tenant, [("shopify", "shop")], "Shopify limits per shop");
}

/// A value of the right kind for `key`, as a TOML file writes it.
fn toml_value(key: &str) -> &'static str {
    match key {
        "backoff" => "\"constant\"",
        "jitter" => "\"ratio(0.5)\"",
        "budget" => "\"keys-budget\"",
        "honor_retry_after" => "false",
        "multiplier" | "failure_rate" | "recovery_jitter" => "0.5",
        "on_limit" => "\"queue\"",
        "backend" => "\"local\"",
        "fail_mode" => "\"open\"",
        "window" => "\"10s\"",
        k if k.contains("delay")
            || k.contains("timeout")
            || k.contains("wait")
            || k == "max_elapsed"
            || k == "deadline"
            || k == "slow_call"
            || k == "duration"
            || k == "max_pause" =>
        {
            "\"2s\""
        }
        _ => "3",
    }
}

/// The keys a TOML layer table accepts: each candidate, alone in its table, is read
/// without an "unknown key" error (a value error, such as a cross-key rule, still counts
/// as accepted).
fn toml_keys(table: &str, candidates: &[&str]) -> BTreeSet<String> {
    let mut accepted = BTreeSet::new();
    for key in candidates {
        let text = format!("[t.{table}]\n{key} = {}\n", toml_value(key));
        match Registry::new().load_toml(&text) {
            Ok(()) => {
                accepted.insert(key.to_string());
            }
            Err(e) if !e.message().contains("is not a key of this layer") => {
                accepted.insert(key.to_string());
            }
            Err(_) => {}
        }
    }
    accepted
}

#[test]
fn toml_tables_accept_exactly_the_keys_of_the_attributes() {
    let layers: [(&str, KeyTable); 6] = [
        ("retry", attribute_keys::RETRY),
        ("circuit_breaker", attribute_keys::CIRCUIT_BREAKER),
        ("rate_limit", attribute_keys::RATE_LIMIT),
        ("bulkhead", attribute_keys::BULKHEAD),
        ("timeout", attribute_keys::TIMEOUT),
        ("hedge", attribute_keys::HEDGE),
    ];
    // Every key any layer knows, plus names only an attribute or nothing takes.
    let mut candidates: BTreeSet<&str> =
        layers.iter().flat_map(|(_, t)| t.iter().map(|(k, _, _)| *k)).collect();
    candidates.extend(["name", "preset", "crate", "retry_if", "fallback", "cost", "bogus"]);
    let candidates: Vec<&str> = candidates.into_iter().collect();
    for (table, keys) in layers {
        assert_eq!(toml_keys(table, &candidates), attribute(keys), "[name.{table}]");
    }
}

#[test]
fn an_unknown_toml_key_lists_the_layers_keys() {
    let err = Registry::new().load_toml("[t.circuit_breaker]\nwindw = 10").unwrap_err();
    assert_eq!(err.field(), "t.circuit_breaker.windw");
    assert!(err.message().contains("failure_threshold, failure_rate, window"), "{err}");
}

// ----- one duration grammar ------------------------------------------------------------

/// A circuit breaker named `$name` whose recovery timeout is the literal `$lit`.
macro_rules! recovery_after {
    ($($f:ident: $name:literal = $lit:tt;)*) => {$(
        #[resilience::circuit_breaker(name = $name, recovery_timeout = $lit)]
        fn $f() -> Result<(), Error> {
            Ok(())
        }
    )*};
}

recovery_after! {
    in_ns: "grammar-ns" = 7ns;
    in_us: "grammar-us" = 7us;
    in_ms: "grammar-ms" = 250ms;
    in_s: "grammar-s" = 2s;
    in_fraction: "grammar-fraction" = 1.5s;
    in_min: "grammar-min" = 2min;
    in_m: "grammar-m" = 2m;
    in_h: "grammar-h" = 1h;
}

/// A function guarded by a circuit breaker.
type Guarded = fn() -> Result<(), Error>;

fn attribute_recovery(f: Guarded, name: &str) -> Duration {
    f().expect("a closed circuit runs the body");
    registry().circuit_breakers().get(name).expect("resolved").config().recovery_timeout()
}

fn toml_recovery(text: &str) -> Duration {
    let registry = Registry::new();
    registry
        .load_toml(&format!("[g.circuit_breaker]\nrecovery_timeout = \"{text}\""))
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    registry.preset("g").and_then(|c| c.circuit_breaker).expect("loaded").recovery_timeout()
}

#[test]
fn attributes_and_files_read_every_unit_alike() {
    let cases: [(Guarded, &str, &str, Duration); 8] = [
        (in_ns, "grammar-ns", "7ns", Duration::from_nanos(7)),
        (in_us, "grammar-us", "7us", Duration::from_micros(7)),
        (in_ms, "grammar-ms", "250ms", Duration::from_millis(250)),
        (in_s, "grammar-s", "2s", Duration::from_secs(2)),
        (in_fraction, "grammar-fraction", "1.5s", Duration::from_millis(1_500)),
        (in_min, "grammar-min", "2min", Duration::from_secs(120)),
        (in_m, "grammar-m", "2m", Duration::from_secs(120)),
        (in_h, "grammar-h", "1h", Duration::from_secs(3_600)),
    ];
    for (f, name, text, expected) in cases {
        assert_eq!(attribute_recovery(f, name), expected, "attribute {text}");
        assert_eq!(toml_recovery(text), expected, "file {text}");
        assert_eq!(config::duration(text), Ok(expected), "config::duration({text})");
    }
}

#[test]
fn files_refuse_what_attributes_refuse_with_the_accepted_units() {
    for bad in ["5", "5sec", "1e3ms", "-1s", "five seconds"] {
        let err = Registry::new()
            .load_toml(&format!("[g.circuit_breaker]\nrecovery_timeout = \"{bad}\""))
            .expect_err(bad);
        assert_eq!(err.field(), "g.circuit_breaker.recovery_timeout", "{bad}");
    }
    let err = config::duration("5sec").unwrap_err();
    assert!(err.message().contains("`ns`, `us`, `ms`, `s`, `min` (or `m`) or `h`"), "{err}");
}

// ----- keys the attributes gained ------------------------------------------------------

#[resilience::circuit_breaker(name = "keys-jittered", recovery_jitter = 0.25)]
fn jittered() -> Result<(), Error> {
    Ok(())
}

#[resilience::rate_limit(name = "keys-idle", per_second = 5, idle_timeout = 10min, key = shop)]
fn idle(shop: &str) -> Result<(), Error> {
    let _ = shop;
    Ok(())
}

#[test]
fn recovery_jitter_and_idle_timeout_are_attribute_keys() {
    jittered().expect("closed");
    let breaker = registry().circuit_breakers().get("keys-jittered").expect("resolved");
    assert_eq!(breaker.config().recovery_jitter(), 0.25);
    idle("a").expect("a permit");
    let limiter = registry().keyed_rate_limiters().get("keys-idle").expect("resolved");
    assert_eq!(limiter.config().idle_timeout(), Duration::from_secs(600));
}

static DELAYS: Mutex<Vec<Duration>> = Mutex::new(Vec::new());

#[derive(Debug)]
#[allow(dead_code)] // the rejection is only carried, never inspected
enum Throttled {
    For(Duration),
    Resilience(Error),
}

impl From<Error> for Throttled {
    fn from(e: Error) -> Self {
        Throttled::Resilience(e)
    }
}

impl resilience::RetryAfter for Throttled {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Throttled::For(d) => Some(*d),
            Throttled::Resilience(_) => None,
        }
    }
}

#[resilience::retry(
    max_attempts = 3,
    backoff = constant,
    initial_delay = 100ms,
    jitter = ratio(0.5),
    honor_retry_after = false,
    on_retry = |e: &RetryEvent<'_, (), Throttled>| DELAYS.lock().unwrap().push(e.delay)
)]
async fn throttled() -> Result<(), Throttled> {
    Err(Throttled::For(Duration::from_secs(30)))
}

#[tokio::test(start_paused = true)]
async fn ratio_jitter_and_honor_retry_after_are_attribute_keys() {
    let _ = throttled().await;
    let delays = DELAYS.lock().unwrap().clone();
    assert_eq!(delays.len(), 2, "{delays:?}");
    for d in delays {
        // The server's 30 s hint is ignored; ratio(0.5) keeps each delay in [50, 100] ms.
        assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100), "{d:?}");
    }
}

// ----- `Deserialize` through the same keys ---------------------------------------------

#[test]
fn circuit_breaker_config_deserializes_through_its_keys() {
    let c: CircuitBreakerConfig = toml::from_str(
        "failure_rate = 0.5\nwindow = 50\nmin_calls = 10\nrecovery_timeout = \"5s\"",
    )
    .expect("valid");
    assert_eq!(c.failure_rate(), Some(0.5));
    assert_eq!(c.window(), Window::calls(50));
    assert_eq!(c.recovery_timeout(), Duration::from_secs(5));
    let err = toml::from_str::<CircuitBreakerConfig>("failure_rate = 1.5").unwrap_err();
    assert!(
        err.to_string().contains("invalid `failure_rate`: must be in (0, 1] (got 1.5)"),
        "{err}"
    );
}

#[test]
fn rate_limit_config_deserializes_through_its_keys() {
    let c: RateLimitConfig =
        toml::from_str("per_minute = 60\nburst = 5\non_limit = \"reject\"").expect("valid");
    assert_eq!(c.burst(), 5);
    assert_eq!(c.on_limit(), OnLimit::Reject);
    let err =
        toml::from_str::<RateLimitConfig>("per_second = 1\non_limit = \"panic\"").unwrap_err();
    assert!(err.to_string().contains("invalid `on_limit`: `panic` is not accepted"), "{err}");
}

#[test]
fn bulkhead_config_deserializes_through_its_keys() {
    let c: BulkheadConfig = toml::from_str("max_concurrent = 4\nmax_wait = \"1s\"").expect("valid");
    assert_eq!((c.max_concurrent(), c.max_wait()), (4, Duration::from_secs(1)));
    let err = toml::from_str::<BulkheadConfig>("max_concurrent = 0").unwrap_err();
    assert!(err.to_string().contains("invalid `max_concurrent`: must be at least 1"), "{err}");
}

#[test]
fn retry_policy_deserializes_through_its_keys() {
    let p: RetryPolicy = toml::from_str(
        "max_attempts = 4\nbackoff = \"linear\"\ninitial_delay = \"100ms\"\njitter = \"none\"\nhonor_retry_after = false",
    )
    .expect("valid");
    assert_eq!(p.max_attempts(), 4);
    assert_eq!(p.backoff().strategy(), Strategy::Linear);
    assert_eq!(p.backoff().initial(), Duration::from_millis(100));
    assert_eq!(p.backoff().jitter(), Jitter::None);
    assert!(!p.honors_retry_after());
    let err = toml::from_str::<RetryPolicy>("initial_delay = 100").unwrap_err();
    assert!(err.to_string().contains("invalid `initial_delay`: expects a duration"), "{err}");
}

#[test]
fn retry_budget_config_deserializes_through_its_keys() {
    let c: RetryBudgetConfig =
        toml::from_str("ratio = 0.2\nmin_retries_per_sec = 5\nttl = \"20s\"").expect("valid");
    assert_eq!((c.ratio(), c.min_retries_per_sec(), c.ttl()), (0.2, 5, Duration::from_secs(20)));
    let err = toml::from_str::<RetryBudgetConfig>("ratio = 2.0").unwrap_err();
    assert!(err.to_string().contains("invalid `ratio`: must be greater than 0"), "{err}");
}

#[test]
fn resilience_config_deserializes_every_layer_over_its_base() {
    let c: ResilienceConfig = toml::from_str(
        "base = \"api\"\ntimeout = \"3s\"\n[retry]\nmax_attempts = 2\n[bulkhead]\nmax_concurrent = 8",
    )
    .expect("valid");
    assert_eq!(c.timeout, Some(Duration::from_secs(3)));
    assert_eq!(c.retry.as_ref().map(RetryPolicy::max_attempts), Some(2));
    assert_eq!(
        c.retry.as_ref().map(|r| r.backoff().initial()),
        Some(Duration::from_secs(2)),
        "the rest of the retry comes from `api`"
    );
    assert_eq!(c.bulkhead.map(|b| b.max_concurrent()), Some(8));
    assert!(c.circuit_breaker.is_some(), "inherited from `api`");
    let err = toml::from_str::<ResilienceConfig>("[retry]\nmax_attempts = 0").unwrap_err();
    assert!(err.to_string().contains("invalid `retry.max_attempts`"), "{err}");
}

#[test]
fn entries_are_the_one_way_in() {
    let from_entries = CircuitBreakerConfig::from_entries(
        None,
        &[("failure_threshold", Value::Int(3)), ("recovery_timeout", Value::Str("2s"))],
        registry(),
    )
    .expect("valid");
    let from_toml: CircuitBreakerConfig =
        toml::from_str("failure_threshold = 3\nrecovery_timeout = \"2s\"").expect("valid");
    assert_eq!(from_entries, from_toml);
}
