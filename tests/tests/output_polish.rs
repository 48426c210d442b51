//! What operators read: a forced-open circuit says so, stats serialize durations as
//! seconds, and configs no instance uses are listed in the snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use resilience::Error;
use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
use resilience::clock::ManualClock;
use resilience::registry::Registry;

fn rejection(b: &CircuitBreaker) -> Error {
    b.call(|| Ok::<(), Error>(())).expect_err("rejected")
}

#[test]
fn a_forced_open_circuit_says_an_operator_forced_it() {
    let b = CircuitBreaker::new("polish-forced", CircuitBreakerConfig::default());
    b.force_open();
    let e = rejection(&b);
    assert!(matches!(e, Error::CircuitOpen { state: CircuitState::ForcedOpen, .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("forced open by an operator"), "{text}");
    assert!(!text.contains("0ns"), "no probe is coming: {text}");
}

#[test]
fn an_open_circuit_says_when_the_next_probe_is_allowed() {
    let clock = ManualClock::new();
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let b = CircuitBreaker::with_clock("polish-open", config, clock.shared());
    let _ = b.call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
    let e = rejection(&b);
    assert!(matches!(e, Error::CircuitOpen { state: CircuitState::Open, .. }), "{e:?}");
    assert!(e.to_string().contains("next probe allowed in 30s"), "{e}");
}

#[test]
fn stats_serialize_durations_as_seconds() {
    let clock = ManualClock::new();
    let b =
        CircuitBreaker::with_clock("polish-json", CircuitBreakerConfig::default(), clock.shared());
    clock.advance(Duration::from_millis(1500));
    let json = serde_json::to_value(b.stats()).unwrap();
    assert_eq!(json["time_in_state"], serde_json::json!(1.5), "{json}");
    assert_eq!(json["last_transition"], serde_json::Value::Null);
    b.force_open();
    let json = serde_json::to_value(b.stats()).unwrap();
    assert_eq!(json["last_transition"], serde_json::json!(1.5), "{json}");
}

#[test]
fn configs_no_instance_uses_are_listed_in_the_snapshot() {
    let registry = Registry::new();
    registry
        .load_toml(
            "[polish-orders.circuit_breaker]\nfailure_threshold = 3\n\
             [polish-ordres.circuit_breaker]\nfailure_threshold = 3\n\
             [polish-shared.retry]\nmax_attempts = 2\n",
        )
        .unwrap();
    let _ = registry.circuit_breakers().resolve("polish-orders", || unreachable!("configured"));
    assert!(registry.preset("polish-shared").is_some(), "a table used as a preset is used");
    let snapshot = registry.snapshot();
    assert_eq!(snapshot.unused_configs, ["polish-ordres"]);
    let table = snapshot.to_string();
    assert!(table.contains("Configured but not used (yet): polish-ordres"), "{table}");
}
