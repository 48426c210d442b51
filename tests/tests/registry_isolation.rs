//! A `Registry::new()` is self-contained: instances, configs, presets, retry budgets, files
//! and event subscribers stay in the registry they were given to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::circuit::CircuitBreakerConfig;
use resilience::events::Interest;
use resilience::presets::{Preset, ResilienceConfig};
use resilience::registry::{Registry, registry};
use resilience::retry::RetryBudgetConfig;

fn breaker(threshold: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig::builder().failure_threshold(threshold).build().unwrap()
}

#[test]
fn two_registries_keep_their_own_instances_and_configs() {
    let (a, b) = (Registry::new(), Registry::new());
    let in_a = a.circuit_breakers().get_or_create("iso-orders", breaker(3)).unwrap();
    let in_b = b.circuit_breakers().get_or_create("iso-orders", breaker(7)).unwrap();
    assert!(!Arc::ptr_eq(&in_a, &in_b), "one name, one instance per registry");
    a.circuit_breakers().configure("iso-orders", breaker(4));
    assert_eq!(in_a.config().failure_threshold(), Some(4));
    assert_eq!(in_b.config().failure_threshold(), Some(7), "b is not touched");
    a.force_open("iso-orders").unwrap();
    assert!(!b.circuit_breakers().stats("iso-orders").unwrap().state.is_open());
    assert!(registry().circuit_breakers().get("iso-orders").is_none(), "nor is the global one");
}

#[test]
fn presets_and_budgets_belong_to_their_registry() {
    let (a, b) = (Registry::new(), Registry::new());
    a.register_preset("iso-billing", ResilienceConfig::new().with_timeout(Duration::from_secs(3)));
    assert!(a.preset("iso-billing").is_some());
    assert!(b.preset("iso-billing").is_none());

    // A preset sharing a budget by name draws on the budget of the registry that resolves
    // it.
    let shared = Preset::Api.config().with_retry_budget("iso-api");
    a.register_preset("iso-shared", shared.clone());
    b.register_preset("iso-shared", shared);
    let in_a = a.preset("iso-shared").unwrap().retry.unwrap();
    let in_b = b.preset("iso-shared").unwrap().retry.unwrap();
    assert!(!Arc::ptr_eq(in_a.budget().unwrap(), in_b.budget().unwrap()));
    assert!(Arc::ptr_eq(in_a.budget().unwrap(), &a.retry_budget("iso-api")));
    // A built-in preset's budget is each call site's own, bound when one is built: a
    // bundle configured for a name draws on that registry's budget of the name.
    assert!(a.preset("api").unwrap().retry.unwrap().budget().is_none());
    a.configure("iso-site", Preset::Api.config());
    let site = a.resolve_retry("iso-site", || unreachable!("configured")).unwrap();
    assert!(Arc::ptr_eq(site.budget().unwrap(), &a.retry_budget("iso-site")));
    assert!(b.retry_budgets().stats("iso-site").is_none());

    let tight = RetryBudgetConfig::builder().ratio(0.01).build().unwrap();
    a.retry_budgets().configure("iso-budget", tight.clone());
    assert_eq!(a.retry_budget("iso-budget").config(), tight);
    assert_ne!(b.retry_budget("iso-budget").config(), tight);
}

#[test]
fn a_file_loaded_into_one_registry_configures_only_that_one() {
    let (a, b) = (Registry::new(), Registry::new());
    a.load_toml(
        "[iso-file.circuit_breaker]\nfailure_threshold = 9\n\
         [iso-file.retry]\nbudget = \"iso-file-budget\"\n",
    )
    .unwrap();
    let resolved = a.circuit_breakers().resolve("iso-file", || Ok(breaker(1))).unwrap();
    assert_eq!(resolved.config().failure_threshold(), Some(9));
    let other = b.circuit_breakers().resolve("iso-file", || Ok(breaker(1))).unwrap();
    assert_eq!(other.config().failure_threshold(), Some(1));
    assert_eq!(a.retry_budgets().names(), [Arc::<str>::from("iso-file-budget")]);
    assert!(b.retry_budgets().names().is_empty());
}

#[test]
fn subscribers_hear_only_their_registry() {
    let (a, b) = (Registry::new(), Registry::new());
    let heard = Arc::new(AtomicU32::new(0));
    let h = heard.clone();
    let _sub = b.subscribe(Interest::ALL, move |_| {
        h.fetch_add(1, Ordering::SeqCst);
    });
    let c = a.circuit_breakers().get_or_create("iso-events", breaker(1)).unwrap();
    let _ =
        c.call(|| Err::<(), resilience::Error>(resilience::Error::timeout(Duration::from_secs(1))));
    a.reset("iso-events").unwrap();
    assert_eq!(heard.load(Ordering::SeqCst), 0);
}
