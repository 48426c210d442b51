//! Presets and TOML configs through the public API.

use std::time::Duration;

use resilience::Pipeline;
use resilience::presets::Preset;
use resilience::registry::Registry;

#[test]
fn every_builtin_preset_is_reachable_by_name() {
    let reg = Registry::new();
    for p in Preset::ALL {
        let c = reg.preset(p.name()).expect("built in");
        assert!(c.retry.is_some(), "{p} has a retry");
        assert!(c.circuit_breaker.is_some(), "{p} has a breaker");
        assert!(c.rate_limit.is_some(), "{p} has a limit");
    }
}

#[test]
fn shopify_preset_is_a_forty_request_bucket_at_two_per_second() {
    let c = Preset::Shopify.config();
    let limit = c.rate_limit.expect("has a limit");
    assert_eq!(limit.burst(), 40);
    assert_eq!(limit.rate().per_second_f64(), 2.0);
}

#[test]
fn toml_sections_inherit_from_presets_and_each_other() {
    let reg = Registry::new();
    reg.load_toml(
        r#"
        [base-api]
        base = "api"
        timeout = "5s"

        [orders]
        base = "base-api"
        [orders.retry]
        max_attempts = 7
        "#,
    )
    .expect("valid file");
    let orders = reg.preset("orders").expect("loaded");
    assert_eq!(orders.timeout, Some(Duration::from_secs(5)));
    assert_eq!(orders.retry.as_ref().map(|r| r.max_attempts()), Some(7));
    // Inherited from `api` through `base-api`.
    assert_eq!(orders.retry.as_ref().map(|r| r.backoff().initial()), Some(Duration::from_secs(2)));
}

#[test]
fn toml_configs_win_over_call_sites() {
    let reg = Registry::new();
    reg.load_toml("[inventory.circuit_breaker]\nfailure_threshold = 9\n").expect("valid");
    let b = reg
        .circuit_breakers()
        .resolve("inventory", || {
            resilience::circuit::CircuitBreakerConfig::builder().failure_threshold(2).build()
        })
        .expect("resolved");
    assert_eq!(b.config().failure_threshold(), Some(9));
}

#[test]
fn toml_errors_name_the_path_and_apply_nothing() {
    let reg = Registry::new();
    let cases = [
        ("[a.retry]\nmax_attempts = 0", "a.retry.max_attempts"),
        ("[a.rate_limit]\nper_second = 1\nper_minute = 60", "a.rate_limit.per_minute"),
        ("[a]\ntimeout = \"5\"", "a.timeout"),
        ("[a]\nbase = \"nope\"", "a.base"),
        ("[a]\nbase = \"b\"\n[b]\nbase = \"a\"", "base"),
        ("[a.retry]\nbackoff = \"quadratic\"", "a.retry.backoff"),
        ("[a]\nunknown_key = 1", "toml"),
        ("not toml at all [", "toml"),
    ];
    for (text, field) in cases {
        let err = reg.load_toml(text).expect_err(text);
        assert!(err.field().contains(field), "{text:?}: {err}");
    }
    assert!(reg.preset("a").is_none(), "a failed load applies nothing");
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_from_a_preset_runs() {
    let p = Pipeline::from_config("preset-pipeline", &Preset::Development.config()).expect("valid");
    let r: Result<u32, resilience::Error> = p.call_async(|| async { Ok(1) }).await;
    assert_eq!(r, Ok(1));
}
