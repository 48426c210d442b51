//! The adaptive throttle as a circuit breaker `mode`: one named circuit in the registry,
//! reachable from TOML, `Pipeline`, tower and `#[circuit_breaker(mode = ..)]`, with its
//! stats in the snapshot and the operator actions of a breaker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::circuit::{Circuit, CircuitBreakerConfig, CircuitState, ThrottleConfig};
use resilience::registry::Registry;
use resilience::tower::ResilienceLayer;
use resilience::{Error, Pipeline, ResilienceConfig, circuit_breaker, registry};
use tower::{Layer, Service, ServiceExt};

fn throttled() -> CircuitBreakerConfig {
    let throttle = ThrottleConfig::builder().k(1.5).window(Duration::from_secs(60)).build();
    let config = CircuitBreakerConfig::builder().adaptive_throttle(throttle.expect("valid"));
    config.build().expect("valid")
}

#[test]
fn a_toml_circuit_in_throttle_mode_is_one_throttle_in_the_registry() {
    let registry = Registry::new();
    let loaded = registry.load_toml(
        "[search.circuit_breaker]\nmode = \"adaptive_throttle\"\nk = 1.5\nwindow = \"60s\"\nbuckets = 6\n",
    );
    assert_eq!(loaded.map_err(|e| e.to_string()), Ok(()));
    // The call site asks for a breaker; the registry's config for the name wins.
    let circuit = registry.resolve_circuit("search", || Ok(CircuitBreakerConfig::default()));
    let throttle = match circuit {
        Ok(Circuit::Throttle(t)) => t,
        other => panic!("expected a throttle, got {other:?}"),
    };
    let config = throttle.config();
    assert_eq!((config.k(), config.window(), config.buckets()), (1.5, Duration::from_secs(60), 6));
    let again = registry.adaptive_throttles().get("search");
    assert!(again.is_some_and(|t| Arc::ptr_eq(&t, &throttle)), "one instance per name");
    assert!(registry.circuit_breakers().get("search").is_none(), "and no breaker");

    // Its stats are in the snapshot and its table.
    let _ = throttle.call(|| Ok::<_, Error>(()));
    let snapshot = registry.snapshot();
    let stats = snapshot.throttles.iter().find(|t| t.name == "search");
    assert_eq!(stats.map(|t| (t.requests, t.accepts, t.k)), Some((1, 1, 1.5)));
    let table = snapshot.to_string();
    assert!(table.contains("Adaptive throttles") && table.contains("p(reject)"), "{table}");
}

#[test]
fn operator_actions_reach_a_throttle_by_name() {
    let registry = Registry::new();
    let circuit = registry.resolve_circuit("ops-throttle", || Ok(throttled()));
    let throttle = circuit.ok().and_then(|c| c.throttle().cloned()).expect("a throttle");
    assert_eq!(registry.force_open("ops-throttle").map_err(|e| e.to_string()), Ok(()));
    assert_eq!(throttle.state(), CircuitState::ForcedOpen);
    let rejected = throttle.call(|| Ok::<_, Error>(()));
    assert!(matches!(rejected, Err(Error::CircuitOpen { state: CircuitState::ForcedOpen, .. })));
    assert_eq!(registry.disable("ops-throttle").map_err(|e| e.to_string()), Ok(()));
    assert_eq!(throttle.state(), CircuitState::Disabled);
    assert_eq!(registry.reset("ops-throttle").map_err(|e| e.to_string()), Ok(()));
    assert_eq!(throttle.state(), CircuitState::Closed);
    assert_eq!(throttle.stats().requests, 0, "reset clears the window");
}

#[test]
fn mode_keys_in_toml_are_checked() {
    let err = |text: &str| Registry::new().load_toml(text).err().map(|e| e.to_string());
    let k_alone = err("[a.circuit_breaker]\nk = 2.0\n").unwrap_or_default();
    assert!(k_alone.contains("adaptive_throttle"), "{k_alone}");
    let bad_mode = err("[a.circuit_breaker]\nmode = \"sometimes\"\n").unwrap_or_default();
    assert!(bad_mode.contains("consecutive") && bad_mode.contains("sometimes"), "{bad_mode}");
    let breaker_key =
        err("[a.circuit_breaker]\nmode = \"adaptive_throttle\"\nfailure_threshold = 3\n");
    assert!(breaker_key.is_some_and(|e| e.contains("does not apply")));
}

#[test]
fn pipeline_from_config_builds_the_throttle_in_the_breakers_place() {
    let config = ResilienceConfig::default().with_circuit_breaker(throttled());
    let pipeline = Pipeline::from_config("throttle-mode-pipeline", &config).expect("valid");
    assert!(pipeline.circuit_breaker().is_none());
    let throttle = pipeline.adaptive_throttle().cloned().expect("a throttle");
    assert_eq!(throttle.config().k(), 1.5);
    let ok: Result<u32, Error> = pipeline.call_blocking(|| Ok(1));
    assert_eq!(ok, Ok(1));
    let failed: Result<u32, Error> = pipeline.call_blocking(|| Err(Error::timeout(Duration::ZERO)));
    assert!(failed.is_err());
    let s = throttle.stats();
    assert_eq!((s.requests, s.accepts), (2, 1), "a transient error is not accepted");
    throttle.force_open();
    let rejected: Result<u32, Error> = pipeline.call_blocking(|| Ok(1));
    assert!(matches!(rejected, Err(Error::CircuitOpen { .. })));
}

#[tokio::test(start_paused = true)]
async fn tower_resilience_layer_builds_the_throttle() {
    let config = ResilienceConfig::default().with_circuit_breaker(throttled());
    let layer = ResilienceLayer::from_config("throttle-mode-tower", &config).expect("valid");
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let service = tower::service_fn(move |_: ()| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, std::io::Error>(http::StatusCode::OK) }
    });
    let mut client = layer.layer(service);
    let response = client.ready().await.expect("ready").call(()).await;
    assert_eq!(response.ok(), Some(http::StatusCode::OK));
    let throttle = registry().adaptive_throttles().get("throttle-mode-tower").expect("registered");
    assert_eq!(throttle.stats().accepts, 1);
    throttle.force_open();
    let rejected = client.ready().await.expect("ready").call(()).await;
    assert!(rejected.is_err_and(|e| e.downcast_ref::<Error>().is_some()));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the rejected call never reached the service");
}

#[circuit_breaker(name = "throttle-mode-macro", mode = "adaptive_throttle", k = 2.0, window = 120s)]
fn throttled_call(fail: bool) -> Result<u32, Error> {
    if fail { Err(Error::timeout(Duration::ZERO)) } else { Ok(1) }
}

#[test]
fn the_attribute_takes_the_mode_and_its_keys() {
    assert_eq!(throttled_call(false), Ok(1));
    let throttle = registry().adaptive_throttles().get("throttle-mode-macro").expect("registered");
    let config = throttle.config();
    assert_eq!((config.k(), config.window()), (2.0, Duration::from_secs(120)));
    assert!(throttled_call(true).is_err());
    let s = throttle.stats();
    assert_eq!((s.requests, s.accepts), (2, 1));
    assert!(registry().circuit_breakers().get("throttle-mode-macro").is_none());
}

#[circuit_breaker(name = "throttle-mode-from-toml")]
fn configured_elsewhere(fail: bool) -> Result<u32, Error> {
    if fail { Err(Error::timeout(Duration::ZERO)) } else { Ok(1) }
}

#[resilience::resilient(circuit_breaker(name = "throttle-mode-from-toml-async"))]
async fn configured_elsewhere_async(fail: bool) -> Result<u32, Error> {
    if fail { Err(Error::timeout(Duration::ZERO)) } else { Ok(1) }
}

#[tokio::test(start_paused = true)]
async fn a_plain_attribute_follows_the_mode_the_registry_sets_for_its_circuit() {
    let loaded = registry().load_toml(
        "[throttle-mode-from-toml.circuit_breaker]\nmode = \"adaptive_throttle\"\nk = 1.5\nwindow = \"60s\"\n\n\
         [throttle-mode-from-toml-async.circuit_breaker]\nmode = \"adaptive_throttle\"\nk = 3.0\n",
    );
    assert_eq!(loaded.map_err(|e| e.to_string()), Ok(()));

    // The attribute writes no mode: the registry's config for the name makes it a throttle.
    assert_eq!(configured_elsewhere(false), Ok(1));
    assert!(configured_elsewhere(true).is_err());
    assert_eq!(configured_elsewhere_async(false).await, Ok(1));
    assert!(configured_elsewhere_async(true).await.is_err());
    assert!(configured_elsewhere_async(true).await.is_err());

    let snapshot = registry().snapshot();
    let stats = |name: &str| {
        let t = snapshot.throttles.iter().find(|t| t.name == name);
        t.map(|t| (t.requests, t.accepts, t.k))
    };
    assert_eq!(stats("throttle-mode-from-toml"), Some((2, 1, 1.5)));
    assert_eq!(stats("throttle-mode-from-toml-async"), Some((3, 1, 3.0)));
    for name in ["throttle-mode-from-toml", "throttle-mode-from-toml-async"] {
        assert!(registry().circuit_breakers().get(name).is_none(), "no breaker for {name}");
        assert!(snapshot.circuits.iter().all(|c| c.name != name));
    }
}
