//! The named registry: get-or-create, precedence, operator actions, stats, events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::circuit::{CircuitBreakerConfig, CircuitState};
use resilience::events::{EventKind, Interest};
use resilience::rate_limit::{OnLimit, RateLimitConfig};
use resilience::registry::Registry;
use resilience::{Error, registry};

fn breaker_config(failures: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig::builder().failure_threshold(failures).build().expect("valid config")
}

#[test]
fn same_name_same_config_shares_one_instance() {
    let reg = Registry::new();
    let a = reg.circuit_breakers().get_or_create("inventory", breaker_config(3)).expect("created");
    let b = reg.circuit_breakers().get_or_create("inventory", breaker_config(3)).expect("shared");
    assert!(Arc::ptr_eq(&a, &b));
}

#[test]
fn same_name_different_config_is_an_error_not_a_second_instance() {
    let reg = Registry::new();
    reg.circuit_breakers().get_or_create("inventory", breaker_config(3)).expect("created");
    let err =
        reg.circuit_breakers().get_or_create("inventory", breaker_config(7)).expect_err("conflict");
    assert!(err.to_string().contains("inventory"), "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[test]
fn racing_get_or_create_with_different_configs_never_silently_shares() {
    // Many threads ask for the same new name, half with each config: exactly one
    // instance exists, and a caller either gets it with its own config or an error.
    for round in 0..20 {
        let reg = Arc::new(Registry::new());
        let name = format!("race-{round}");
        let outcomes: Vec<_> = (0..8u32)
            .map(|i| {
                let (reg, name) = (reg.clone(), name.clone());
                std::thread::spawn(move || {
                    let failures = 3 + i % 2;
                    (
                        failures,
                        reg.circuit_breakers().get_or_create(&name, breaker_config(failures)),
                    )
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().expect("thread ran"))
            .collect();
        let winner = reg.circuit_breakers().get(&name).expect("one instance");
        for (failures, outcome) in outcomes {
            match outcome {
                Ok(b) => {
                    assert!(Arc::ptr_eq(&b, &winner));
                    assert_eq!(b.config().failure_threshold(), Some(failures));
                }
                Err(e) => {
                    assert_ne!(winner.config().failure_threshold(), Some(failures));
                    assert!(e.to_string().contains("already exists"), "{e}");
                }
            }
        }
    }
}

#[test]
fn registry_config_wins_over_call_site_config() {
    let reg = Registry::new();
    reg.circuit_breakers().configure("orders", breaker_config(9));
    let b = reg.circuit_breakers().resolve("orders", || Ok(breaker_config(2))).expect("resolved");
    assert_eq!(b.config(), breaker_config(9));
    // The explicit get-or-create follows the same precedence.
    let same =
        reg.circuit_breakers().get_or_create("orders", breaker_config(2)).expect("configured wins");
    assert!(Arc::ptr_eq(&b, &same));
}

#[test]
fn resolve_shares_the_first_instance_and_never_errors_on_a_conflict() {
    let reg = Registry::new();
    let first =
        reg.circuit_breakers().resolve("billing", || Ok(breaker_config(2))).expect("created");
    let second =
        reg.circuit_breakers().resolve("billing", || Ok(breaker_config(4))).expect("shared");
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(second.config(), breaker_config(2));
}

#[test]
fn resolve_reports_an_invalid_attribute_config() {
    let reg = Registry::new();
    let err = reg
        .circuit_breakers()
        .resolve("broken", || CircuitBreakerConfig::builder().failure_threshold(0).build())
        .expect_err("invalid");
    assert_eq!(err.field(), "failure_threshold");
    assert!(reg.circuit_breakers().get("broken").is_none());
}

#[test]
fn configure_reconfigures_a_live_instance_and_keeps_its_counters() {
    let reg = Registry::new();
    let b = reg.circuit_breakers().get_or_create("search", breaker_config(5)).expect("created");
    let _ = b.call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
    reg.circuit_breakers().configure("search", breaker_config(1));
    assert_eq!(b.config(), breaker_config(1));
    assert_eq!(b.stats().failures, 1);
}

#[test]
fn operator_actions_by_name() {
    let reg = Registry::new();
    let b = reg.circuit_breakers().get_or_create("payments", breaker_config(5)).expect("created");
    reg.force_open("payments").expect("known");
    assert_eq!(b.state(), CircuitState::ForcedOpen);
    assert!(matches!(b.call(|| Ok::<_, Error>(())), Err(Error::CircuitOpen { .. })));
    reg.disable("payments").expect("known");
    assert_eq!(b.state(), CircuitState::Disabled);
    reg.reset("payments").expect("known");
    assert_eq!(b.state(), CircuitState::Closed);
    let err = reg.reset("nope").expect_err("unknown");
    assert!(err.to_string().contains("payments"), "lists the known names: {err}");
}

#[test]
fn stats_queries_for_one_and_all() {
    let reg = Registry::new();
    let b = reg.circuit_breakers().get_or_create("b-circuit", breaker_config(5)).expect("created");
    reg.circuit_breakers().get_or_create("a-circuit", breaker_config(5)).expect("created");
    b.call(|| Ok::<_, Error>(())).expect("closed");
    let _ = b.call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
    let s = reg.circuit_breakers().stats("b-circuit").expect("exists");
    assert_eq!((s.calls, s.successes, s.failures, s.consecutive_failures), (2, 1, 1, 1));
    let names: Vec<String> =
        reg.circuit_breakers().all_stats().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["a-circuit", "b-circuit"]);
}

#[test]
fn limiter_stats_and_snapshot_table() {
    let reg = Registry::new();
    let cfg = RateLimitConfig::builder()
        .per_second(1)
        .burst(2)
        .on_limit(OnLimit::Reject)
        .build()
        .expect("valid");
    let l = reg.rate_limiters().get_or_create("reg-limiter", cfg).expect("created");
    l.try_acquire(1).expect("first");
    l.try_acquire(1).expect("second");
    assert!(l.try_acquire(1).is_err());
    let s = reg.rate_limiters().stats("reg-limiter").expect("exists");
    assert_eq!((s.granted, s.rejected), (2, 1));
    reg.circuit_breakers().get_or_create("reg-circuit", breaker_config(3)).expect("created");
    let table = reg.snapshot().to_string();
    assert!(table.contains("reg-limiter") && table.contains("reg-circuit"), "{table}");
    assert!(table.contains("Circuit breakers") && table.contains("Rate limiters"), "{table}");
}

#[test]
fn subscribers_see_transitions_of_named_circuits() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let _sub = registry().subscribe(Interest::TRANSITIONS, move |e| {
        if let EventKind::Transition(t) = &e.kind
            && &*t.name == "events-circuit"
        {
            sink.lock().expect("not poisoned").push((t.from, t.to));
        }
    });
    let b = registry()
        .circuit_breakers()
        .get_or_create("events-circuit", breaker_config(1))
        .expect("created");
    let _ = b.call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
    registry().reset("events-circuit").expect("known");
    let seen = seen.lock().expect("not poisoned").clone();
    assert_eq!(
        seen,
        [(CircuitState::Closed, CircuitState::Open), (CircuitState::Open, CircuitState::Closed)]
    );
}

#[test]
fn presets_registered_by_users_shadow_nothing_unless_named_alike() {
    let reg = Registry::new();
    assert!(reg.preset("api").is_some());
    assert!(reg.preset("no-such-preset").is_none());
    reg.register_preset(
        "mine",
        resilience::presets::ResilienceConfig::new().with_timeout(Duration::from_secs(3)),
    );
    assert_eq!(reg.preset("mine").and_then(|c| c.timeout), Some(Duration::from_secs(3)));
}

#[test]
fn snapshot_serializes() {
    fn assert_serialize<T: serde::Serialize>(_: &T) {}
    assert_serialize(&Registry::new().snapshot());
}
