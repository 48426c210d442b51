//! Keyed circuit breakers: one tenant's failures open that tenant's circuit only, in
//! bounded memory, with stats per name listing the worst keys; the attribute forms
//! (`#[circuit_breaker(key = ..)]`, `#[resilient(key = ..)]`), the per-tenant `shopify`
//! preset keying its breaker like its limiter, and the `Pipeline` layer.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::circuit::{AllErrors, CircuitBreakerConfig, CircuitState, KeyedCircuitBreaker};
use resilience::clock::ManualClock;
use resilience::pipeline::layer;
use resilience::registry::Registry;
use resilience::{Error, Fault, Preset, circuit_breaker, registry, resilient};

#[derive(Debug, PartialEq)]
enum ShopError {
    /// A frozen shop (402): permanent, and says nothing about other shops.
    PaymentRequired,
    Resilience(Error),
}

impl From<Error> for ShopError {
    fn from(e: Error) -> Self {
        ShopError::Resilience(e)
    }
}

fn is_open<T: std::fmt::Debug>(r: &Result<T, ShopError>) -> bool {
    matches!(r, Err(ShopError::Resilience(Error::CircuitOpen { .. })))
}

fn config(threshold: u32) -> CircuitBreakerConfig {
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(threshold)
        .recovery_timeout(Duration::from_secs(60));
    config.build().unwrap()
}

fn fail(b: &KeyedCircuitBreaker, key: &str) -> Result<(), Error> {
    b.call(key, || Err(Error::timeout(Duration::from_secs(1))))
}

// ----- the runtime type --------------------------------------------------------------

#[test]
fn one_key_opening_does_not_affect_another_key() {
    let clock = ManualClock::new();
    let b: KeyedCircuitBreaker =
        KeyedCircuitBreaker::with_clock("shops", config(3), clock.shared());
    for _ in 0..3 {
        assert!(fail(&b, "frozen.myshopify.com").is_err());
    }
    assert_eq!(b.state("frozen.myshopify.com"), CircuitState::Open);
    assert_eq!(b.state("healthy.myshopify.com"), CircuitState::Closed);
    assert_eq!(b.call("healthy.myshopify.com", || Ok::<_, Error>(1)), Ok(1));
    match b.call("frozen.myshopify.com", || Ok::<_, Error>(1)) {
        Err(Error::CircuitOpen { name, retry_after, .. }) => {
            assert_eq!(&*name, "shops[frozen.myshopify.com]", "the rejection names the tenant");
            assert_eq!(retry_after, Duration::from_secs(60));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // The open key recovers on its own schedule.
    clock.advance(Duration::from_secs(60));
    assert_eq!(b.call("frozen.myshopify.com", || Ok::<_, Error>(2)), Ok(2));
}

#[test]
fn the_number_of_keys_never_exceeds_the_bound_and_idle_keys_are_evicted() {
    let clock = ManualClock::new();
    let b: KeyedCircuitBreaker =
        KeyedCircuitBreaker::with_clock("bounded", config(2), clock.shared());
    b.set_max_keys(100).unwrap();
    b.set_idle_timeout(Duration::from_secs(30));
    // A full map is swept at most once a second: 100 new tenants a second.
    for i in 0..1_000 {
        clock.advance(Duration::from_millis(10));
        let key = format!("tenant-{i}");
        assert_eq!(b.call(key.as_str(), || Ok::<_, Error>(i)), Ok(i));
        assert!(b.len() <= 100, "{} keys after {i}", b.len());
    }
    // Failing tenants are kept while clean ones make room; a full map of failing
    // tenants sends a new tenant through one shared overflow circuit.
    for i in 0..150 {
        clock.advance(Duration::from_millis(10));
        let _ = fail(&b, &format!("failing-{i}"));
        assert!(b.len() <= 100);
    }
    assert_eq!(b.len(), 100);
    assert!(b.get("failing-99").is_some() && b.get("failing-100").is_none());
    // The 50 failing tenants beyond the bound shared the overflow circuit and opened it.
    match b.call("latecomer", || Ok::<_, Error>(7)) {
        Err(Error::CircuitOpen { name, .. }) => assert_eq!(&*name, "bounded[overflow]"),
        other => panic!("expected the overflow circuit's rejection, got {other:?}"),
    }
    assert!(b.get("latecomer").is_none(), "the map is full of failing tenants");
    let stats = b.stats();
    assert_eq!((stats.keys, stats.worst.len()), (100, 5));
    assert_eq!(stats.worst[0].key, "overflow", "the open overflow circuit is listed first");

    // Idle: two sweeps 30 s apart see no call for a closed, clean circuit.
    let b: KeyedCircuitBreaker = KeyedCircuitBreaker::with_clock("idle", config(2), clock.shared());
    b.set_idle_timeout(Duration::from_secs(30));
    for i in 0..10 {
        assert_eq!(b.call(format!("t{i}").as_str(), || Ok::<_, Error>(())), Ok(()));
    }
    let _ = fail(&b, "t0");
    assert_eq!(b.evict_idle(), 0, "every key was just used");
    clock.advance(Duration::from_secs(30));
    assert_eq!(b.evict_idle(), 9, "t0 has a failure pending and stays");
    assert_eq!(b.len(), 1);
    assert_eq!(b.stats().calls, 11, "evicted keys still count in the totals");
}

#[test]
fn stats_per_name_list_the_worst_keys_in_the_registry_snapshot() {
    let registry = Registry::new();
    let b = registry.keyed_circuit_breakers().get_or_create("tenants", config(2)).unwrap();
    for _ in 0..2 {
        let _ = fail(&b, "down");
    }
    let _ = fail(&b, "flaky");
    for i in 0..20 {
        assert_eq!(b.call(format!("ok-{i}").as_str(), || Ok::<_, Error>(())), Ok(()));
    }
    let snapshot = registry.snapshot();
    let stats = &snapshot.keyed_circuits[0];
    assert_eq!(stats.name, "tenants");
    assert_eq!((stats.keys, stats.open_keys, stats.calls, stats.failures), (22, 1, 23, 3));
    let worst: Vec<(&str, CircuitState)> =
        stats.worst.iter().map(|w| (w.key.as_str(), w.stats.state)).collect();
    assert_eq!(worst, [("down", CircuitState::Open), ("flaky", CircuitState::Closed)]);
    let table = snapshot.to_string();
    assert!(table.contains("Keyed circuit breakers"), "{table}");
    assert!(table.contains("down (open, 2 failed)"), "{table}");
}

#[test]
fn operators_act_per_name_and_per_key() {
    let registry = Registry::new();
    let b = registry.keyed_circuit_breakers().get_or_create("ops", config(5)).unwrap();
    registry.force_open_key("ops", "a").unwrap();
    assert_eq!(b.state("a"), CircuitState::ForcedOpen);
    assert_eq!(b.call("b", || Ok::<_, Error>(())), Ok(()));
    registry.reset_key("ops", "a").unwrap();
    assert_eq!(b.call("a", || Ok::<_, Error>(())), Ok(()));
    registry.force_open("ops").unwrap();
    assert!(b.call("b", || Ok::<_, Error>(())).is_err());
    assert!(b.call("new", || Ok::<_, Error>(())).is_err(), "keys seen later are forced too");
    registry.reset("ops").unwrap();
    assert_eq!(b.call("new", || Ok::<_, Error>(())), Ok(()));
    assert!(registry.force_open_key("no-such-name", "a").is_err());
}

#[test]
fn a_registry_config_reconfigures_every_key_of_a_live_keyed_breaker() {
    let registry = Registry::new();
    let b = registry.keyed_circuit_breakers().get_or_create("reconfigured", config(5)).unwrap();
    assert!(fail(&b, "a").is_err());
    let bundle = resilience::ResilienceConfig::new().with_circuit_breaker(config(1));
    registry.configure("reconfigured", bundle);
    assert_eq!(b.config().failure_threshold(), Some(1));
    assert!(fail(&b, "a").is_err());
    assert_eq!(b.state("a"), CircuitState::Open, "the live key takes the new threshold");
    assert!(fail(&b, "new").is_err());
    assert_eq!(b.state("new"), CircuitState::Open, "so does a key seen later");
}

#[test]
fn threads_on_many_keys_open_exactly_the_failing_ones() {
    let b: KeyedCircuitBreaker = KeyedCircuitBreaker::new("threads", config(3));
    std::thread::scope(|s| {
        for t in 0..4 {
            let b = &b;
            s.spawn(move || {
                for i in 0..400u32 {
                    let key = format!("k{}", (i + t) % 16);
                    let failing = (i + t) % 16 < 4;
                    let _ = b.call(key.as_str(), || {
                        if failing { Err(Error::timeout(Duration::from_secs(1))) } else { Ok(()) }
                    });
                }
            });
        }
    });
    let stats = b.stats();
    assert_eq!((stats.keys, stats.open_keys), (16, 4));
    assert_eq!(stats.calls + stats.rejections, 1_600, "every call counted once");
    for k in 4..16 {
        assert_eq!(b.state(format!("k{k}").as_str()), CircuitState::Closed);
    }
}

#[test]
fn the_pipeline_layer_keys_the_circuit() {
    let b: KeyedCircuitBreaker = KeyedCircuitBreaker::new("pipeline-keyed", config(1));
    let down: Result<(), Fault<Error>> = layer::keyed_circuit(Some(&b), "a", &AllErrors, || {
        Err(Fault::Inner(Error::timeout(Duration::from_secs(1))))
    });
    assert!(down.is_err());
    let other: Result<u32, Fault<Error>> =
        layer::keyed_circuit(Some(&b), "b", &AllErrors, || Ok(3));
    assert_eq!(other.map_err(Fault::into_error), Ok(3));
    let rejected: Result<u32, Fault<Error>> =
        layer::keyed_circuit(Some(&b), "a", &AllErrors, || Ok(3));
    assert!(matches!(rejected, Err(Fault::Rejected(Error::CircuitOpen { .. }))));
}

// ----- the attributes ----------------------------------------------------------------

#[circuit_breaker(name = "keyed-sync", failure_threshold = 2, key = shop)]
fn sync_call(shop: &str, fail: bool) -> Result<u32, ShopError> {
    if fail { Err(ShopError::PaymentRequired) } else { Ok(1) }
}

#[test]
fn the_attribute_with_a_key_keys_a_sync_fn() {
    for _ in 0..2 {
        assert_eq!(sync_call("frozen", true), Err(ShopError::PaymentRequired));
    }
    assert!(is_open(&sync_call("frozen", false)));
    assert_eq!(sync_call("healthy", false), Ok(1));
    let b = registry().keyed_circuit_breakers().get("keyed-sync").unwrap();
    assert_eq!(b.state("frozen"), CircuitState::Open);
    assert!(registry().circuit_breakers().get("keyed-sync").is_none());
}

#[circuit_breaker(name = "keyed-async", failure_threshold = 2, recovery_timeout = 30s, key = shop)]
async fn async_call(shop: String, fail: bool) -> Result<u32, ShopError> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    if fail { Err(ShopError::PaymentRequired) } else { Ok(2) }
}

#[tokio::test(start_paused = true)]
async fn the_attribute_with_a_key_keys_an_async_fn() {
    for _ in 0..2 {
        assert_eq!(async_call("frozen".into(), true).await, Err(ShopError::PaymentRequired));
    }
    assert!(is_open(&async_call("frozen".into(), false).await));
    assert_eq!(async_call("healthy".into(), false).await, Ok(2));
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(async_call("frozen".into(), false).await, Ok(2), "probed back after 30 s");
}

struct Client {
    calls: AtomicU32,
}

impl Client {
    #[circuit_breaker(failure_threshold = 1, key = self.tenant(id))]
    fn get(&self, id: u64) -> Result<u64, ShopError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if id.is_multiple_of(2) { Err(ShopError::PaymentRequired) } else { Ok(id) }
    }

    #[circuit_breaker(failure_threshold = 1, key = id)]
    async fn get_async(&self, id: u64) -> Result<u64, ShopError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if id.is_multiple_of(2) { Err(ShopError::PaymentRequired) } else { Ok(id) }
    }

    fn tenant(&self, id: u64) -> String {
        format!("tenant-{id}")
    }
}

#[tokio::test(start_paused = true)]
async fn the_attribute_with_a_key_keys_methods() {
    let client = Client { calls: AtomicU32::new(0) };
    assert_eq!(client.get(2), Err(ShopError::PaymentRequired));
    assert!(is_open(&client.get(2)));
    assert_eq!(client.get(3), Ok(3));
    assert_eq!(client.get_async(4).await, Err(ShopError::PaymentRequired));
    assert!(is_open(&client.get_async(4).await));
    assert_eq!(client.get_async(5).await, Ok(5));
    assert_eq!(client.calls.load(Ordering::SeqCst), 4, "rejected calls did not run");
    let name = "keyed_circuit::Client::get";
    let b = registry().keyed_circuit_breakers().get(name).unwrap();
    assert_eq!(b.state("tenant-2"), CircuitState::Open);
}

#[resilient(
    preset = "shopify",
    key = shop,
    retry(max_attempts = 1),
    circuit_breaker(name = "keyed-resilient")
)]
async fn shopify_call(shop: &str, fail: bool) -> Result<u32, ShopError> {
    if fail { Err(ShopError::PaymentRequired) } else { Ok(3) }
}

#[tokio::test(start_paused = true)]
async fn a_frozen_shop_does_not_open_a_healthy_shops_circuit() {
    // The README's headline form: three errors from one shop used to open the one
    // circuit of the function for every shop.
    for _ in 0..3 {
        assert_eq!(shopify_call("frozen", true).await, Err(ShopError::PaymentRequired));
    }
    assert!(is_open(&shopify_call("frozen", false).await));
    assert_eq!(shopify_call("healthy", false).await, Ok(3));
    let b = registry().keyed_circuit_breakers().get("keyed-resilient").unwrap();
    assert_eq!(
        b.config().failure_threshold(),
        Preset::Shopify.config().circuit_breaker.unwrap().failure_threshold()
    );
}

#[resilient(preset = "shopify", rate_limit(key = shop), retry(max_attempts = 1))]
async fn keyed_by_the_limiter(shop: &str, fail: bool) -> Result<u32, ShopError> {
    if fail { Err(ShopError::PaymentRequired) } else { Ok(4) }
}

#[tokio::test(start_paused = true)]
async fn the_shopify_preset_keys_its_breaker_like_its_limiter() {
    for _ in 0..3 {
        assert_eq!(keyed_by_the_limiter("frozen", true).await, Err(ShopError::PaymentRequired));
    }
    assert_eq!(keyed_by_the_limiter("healthy", false).await, Ok(4));
    let name = concat!(module_path!(), "::keyed_by_the_limiter");
    assert!(registry().circuit_breakers().get(name).is_none(), "no breaker shared by every shop");
    let b = registry().keyed_circuit_breakers().get(name).unwrap();
    assert_eq!(b.state("frozen"), CircuitState::Open);
    assert_eq!(b.state("healthy"), CircuitState::Closed);
    assert_eq!(registry().keyed_rate_limiters().get(name).unwrap().len(), 2);
}

#[resilient(preset = "shopify", key = none, retry(max_attempts = 1))]
async fn one_for_every_shop(shop: &str) -> Result<u32, ShopError> {
    let _ = shop;
    Err(ShopError::PaymentRequired)
}

#[tokio::test(start_paused = true)]
async fn key_none_is_one_circuit_for_every_tenant() {
    for _ in 0..3 {
        let _ = one_for_every_shop("a").await;
    }
    assert!(is_open(&one_for_every_shop("b").await), "written out: one circuit for all");
    let name = concat!(module_path!(), "::one_for_every_shop");
    assert!(registry().circuit_breakers().get(name).is_some());
    assert!(registry().rate_limiters().get(name).is_some());
}
