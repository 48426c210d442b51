//! Default instance names identify the call site: `module::fn` for a free function,
//! `module::Type::method` for a method (generic arguments left out), so two types with a
//! method of the same name never share a circuit, limiter, bulkhead or retry policy unless
//! they write the same `name`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use resilience::circuit::CircuitState;
use resilience::retry::RetryPolicy;
use resilience::{Error, bulkhead, circuit_breaker, rate_limit, registry, resilient, retry};

#[derive(Debug)]
enum ApiError {
    Down,
    Resilience(Error),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Resilience(e)
    }
}

fn is_open<T>(r: &Result<T, ApiError>) -> bool {
    matches!(r, Err(ApiError::Resilience(Error::CircuitOpen { .. })))
}

fn is_rate_limited<T>(r: &Result<T, ApiError>) -> bool {
    matches!(r, Err(ApiError::Resilience(Error::RateLimited { .. })))
}

fn circuit(name: &str) -> Option<CircuitState> {
    registry().circuit_breakers().stats(name).map(|s| s.state)
}

// ----- two types, one method name ------------------------------------------------------

struct GitlabClient {
    up: bool,
}

struct BitbucketClient {
    up: bool,
}

impl GitlabClient {
    #[circuit_breaker(failure_threshold = 2)]
    async fn get(&self, p: &str) -> Result<String, ApiError> {
        if self.up { Ok(format!("gitlab:{p}")) } else { Err(ApiError::Down) }
    }

    /// An associated function without a receiver: the macro cannot see the impl.
    #[circuit_breaker]
    fn connect() -> Result<u32, ApiError> {
        Ok(1)
    }
}

impl BitbucketClient {
    #[circuit_breaker(failure_threshold = 2)]
    async fn get(&self, p: &str) -> Result<String, ApiError> {
        if self.up { Ok(format!("bitbucket:{p}")) } else { Err(ApiError::Down) }
    }

    #[bulkhead(max_concurrent = 2)]
    fn handoff(self: Arc<Self>) -> Result<bool, ApiError> {
        Ok(self.up)
    }
}

#[tokio::test]
async fn gitlab_down_leaves_the_bitbucket_circuit_closed() {
    let (gitlab, bitbucket) = (GitlabClient { up: false }, BitbucketClient { up: true });
    for _ in 0..2 {
        assert!(matches!(gitlab.get("/user").await, Err(ApiError::Down)));
    }
    assert!(is_open(&gitlab.get("/user").await), "GitLab's circuit opened");

    let healthy = bitbucket.get("/user").await;
    assert_eq!(healthy.unwrap(), "bitbucket:/user", "Bitbucket's call runs");
    assert_eq!(circuit("macro_names::GitlabClient::get"), Some(CircuitState::Open));
    assert_eq!(circuit("macro_names::BitbucketClient::get"), Some(CircuitState::Closed));
    assert!(registry().circuit_breakers().get("macro_names::get").is_none());
}

#[test]
fn a_method_taking_self_by_arc_is_named_after_its_type() {
    assert!(Arc::new(BitbucketClient { up: true }).handoff().unwrap());
    let stats = registry().bulkheads().stats("macro_names::BitbucketClient::handoff");
    assert_eq!(stats.map(|s| s.completed), Some(1));
}

#[test]
fn an_associated_function_without_a_receiver_keeps_the_module_path() {
    assert_eq!(GitlabClient::connect().unwrap(), 1);
    let stats = registry().circuit_breakers().stats("macro_names::connect");
    assert_eq!(stats.map(|s| s.successes), Some(1));
}

// ----- two impls of one trait ----------------------------------------------------------

trait Connector {
    async fn fetch(&self) -> Result<u32, ApiError>;
}

struct Shopify;
struct Stripe;

impl Connector for Shopify {
    #[rate_limit(per_minute = 1, burst = 1, on_limit = reject)]
    async fn fetch(&self) -> Result<u32, ApiError> {
        Ok(1)
    }
}

impl Connector for Stripe {
    #[rate_limit(per_minute = 1, burst = 1, on_limit = reject)]
    async fn fetch(&self) -> Result<u32, ApiError> {
        Ok(2)
    }
}

#[tokio::test(start_paused = true)]
async fn two_impls_of_a_trait_get_separate_limiters() {
    assert_eq!(Shopify.fetch().await.unwrap(), 1);
    assert!(is_rate_limited(&Shopify.fetch().await), "Shopify's bucket is empty");
    assert_eq!(Stripe.fetch().await.unwrap(), 2, "Stripe's bucket is its own");
    for name in ["macro_names::Shopify::fetch", "macro_names::Stripe::fetch"] {
        let granted = registry().rate_limiters().stats(name).map(|s| s.granted);
        assert_eq!(granted, Some(1), "{name}");
    }
}

#[async_trait]
trait Source {
    async fn pull(&self) -> Result<u32, ApiError>;
}

struct Github;
struct Jira;

#[async_trait]
impl Source for Github {
    #[resilient(preset = "api")]
    async fn pull(&self) -> Result<u32, ApiError> {
        Ok(1)
    }
}

#[async_trait]
impl Source for Jira {
    #[resilient(preset = "api")]
    async fn pull(&self) -> Result<u32, ApiError> {
        Ok(2)
    }
}

#[tokio::test(start_paused = true)]
async fn async_trait_impls_under_a_preset_get_their_own_circuits_and_limiters() {
    assert_eq!(Github.pull().await.unwrap(), 1);
    assert_eq!(Jira.pull().await.unwrap(), 2);
    assert_eq!(Jira.pull().await.unwrap(), 2);
    for (name, calls) in [("macro_names::Github::pull", 1), ("macro_names::Jira::pull", 2)] {
        let successes = registry().circuit_breakers().stats(name).map(|s| s.successes);
        assert_eq!(successes, Some(calls), "{name}");
        let granted = registry().rate_limiters().stats(name).map(|s| s.granted);
        assert_eq!(granted, Some(calls), "{name}");
    }
}

// ----- generics, retry policies, written names, free functions -----------------------

struct Cache<T>(T);

impl<T: Send + Sync> Cache<T> {
    #[bulkhead(max_concurrent = 2)]
    async fn load(&self) -> Result<u32, ApiError> {
        let _ = &self.0;
        Ok(3)
    }
}

#[tokio::test]
async fn every_instantiation_of_a_generic_type_shares_one_name() {
    assert_eq!(Cache(1u8).load().await.unwrap(), 3);
    assert_eq!(Cache("text").load().await.unwrap(), 3);
    let stats = registry().bulkheads().stats("macro_names::Cache::load");
    assert_eq!(stats.map(|s| s.completed), Some(2));
}

struct Flaky {
    calls: AtomicU32,
}

impl Flaky {
    #[retry(max_attempts = 5, initial_delay = 10ms)]
    async fn send(&self) -> Result<u32, ApiError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(ApiError::Down)
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_policy_configured_for_type_and_method_wins_over_the_attribute() {
    let policy = RetryPolicy::builder().max_attempts(2).build().unwrap();
    registry().configure_retry("macro_names::Flaky::send", policy);
    let flaky = Flaky { calls: AtomicU32::new(0) };
    assert!(matches!(flaky.send().await, Err(ApiError::Down)));
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 2, "the configured policy ran, not 5 attempts");
}

struct Primary;
struct Replica;

impl Primary {
    #[circuit_breaker(name = "forge-shared", failure_threshold = 1)]
    fn query(&self) -> Result<u32, ApiError> {
        Err(ApiError::Down)
    }
}

impl Replica {
    #[circuit_breaker(name = "forge-shared", failure_threshold = 1)]
    fn query(&self) -> Result<u32, ApiError> {
        Ok(2)
    }
}

#[test]
fn an_equal_written_name_still_shares_one_circuit() {
    assert!(matches!(Primary.query(), Err(ApiError::Down)));
    assert!(is_open(&Replica.query()), "one circuit for both types");
    assert_eq!(circuit("forge-shared"), Some(CircuitState::Open));
    assert!(registry().circuit_breakers().get("macro_names::Replica::query").is_none());
}

#[circuit_breaker]
fn free_lookup() -> Result<u32, ApiError> {
    Ok(7)
}

#[test]
fn a_free_function_keeps_its_module_path_and_name() {
    assert_eq!(free_lookup().unwrap(), 7);
    assert_eq!(concat!(module_path!(), "::free_lookup"), "macro_names::free_lookup");
    let stats = registry().circuit_breakers().stats("macro_names::free_lookup");
    assert_eq!(stats.map(|s| s.successes), Some(1));
}

// ----- a trait's default method body: one call site for every implementing type --------

trait Ping {
    #[circuit_breaker]
    fn ping(&self) -> Result<u32, ApiError> {
        Ok(0)
    }
}

struct Alpha;
struct Beta;

impl Ping for Alpha {}
impl Ping for Beta {}

#[test]
fn a_default_method_body_is_one_call_site_named_after_the_first_type_calling_it() {
    assert_eq!(Alpha.ping().unwrap(), 0);
    assert_eq!(Beta.ping().unwrap(), 0);
    let stats = registry().circuit_breakers().stats("macro_names::Alpha::ping");
    assert_eq!(stats.map(|s| s.successes), Some(2), "as documented: name it to tell them apart");
    assert!(registry().circuit_breakers().get("macro_names::Beta::ping").is_none());
}
