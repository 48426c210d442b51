//! The state-store interface the core owns: a small in-memory store, written here, shares
//! one circuit between two breakers and one bucket between two limiters, exactly as the
//! Redis store does between processes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use resilience::backend::{
    Admission, BoxFuture, BucketRequest, CircuitCall, Grant, SharedBucket, SharedCircuit,
    SharedState, StateStore, StoreError, Ticket,
};
use resilience::circuit::{CallOutcome, CircuitBreaker, CircuitBreakerConfig, CircuitState};
use resilience::clock::{Clock, ManualClock};
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, RateLimitConfig, RateLimiter};
use resilience::{Backend, Error, FailMode};

// ----- the in-memory store -------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shared {
    Closed { failures: u32 },
    Open { until: Duration },
}

/// The theoretical arrival time of each bucket, by limiter name and key.
type Buckets = Arc<Mutex<HashMap<(String, Option<String>), Duration>>>;

/// Circuits and buckets in maps, on the store's own clock (like Redis's `TIME`).
#[derive(Debug, Default)]
struct MemoryStore {
    clock: ManualClock,
    circuits: Arc<Mutex<HashMap<String, Shared>>>,
    buckets: Buckets,
    /// While set, every handle answers as an unreachable store would.
    down: Arc<Mutex<bool>>,
}

#[derive(Debug)]
struct MemoryCircuit {
    name: String,
    clock: ManualClock,
    circuits: Arc<Mutex<HashMap<String, Shared>>>,
    down: Arc<Mutex<bool>>,
}

#[derive(Debug)]
struct MemoryBucket {
    clock: ManualClock,
    buckets: Buckets,
}

impl StateStore for MemoryStore {
    fn circuit(
        &self,
        name: &str,
        _: &CircuitBreakerConfig,
    ) -> Result<Option<Arc<dyn SharedCircuit>>, resilience::ConfigError> {
        Ok(Some(Arc::new(MemoryCircuit {
            name: name.to_owned(),
            clock: self.clock.clone(),
            circuits: Arc::clone(&self.circuits),
            down: Arc::clone(&self.down),
        })))
    }

    fn bucket(
        &self,
        _: &str,
        _: &RateLimitConfig,
    ) -> Result<Option<Arc<dyn SharedBucket>>, resilience::ConfigError> {
        Ok(Some(Arc::new(MemoryBucket {
            clock: self.clock.clone(),
            buckets: Arc::clone(&self.buckets),
        })))
    }
}

impl MemoryCircuit {
    fn get(&self) -> Result<Shared, StoreError> {
        if *self.down.lock() {
            return Err(StoreError::new("store down"));
        }
        Ok(*self.circuits.lock().get(&self.name).unwrap_or(&Shared::Closed { failures: 0 }))
    }
}

impl SharedCircuit for MemoryCircuit {
    fn admit(&self, _: &CircuitCall<'_>) -> Result<Admission, StoreError> {
        Ok(match self.get()? {
            Shared::Open { until } if self.clock.now() < until => {
                Admission::Rejected { retry_after: until - self.clock.now() }
            }
            _ => Admission::Admitted(Ticket { generation: 0, probe: 0 }),
        })
    }

    fn admit_async<'a>(
        &'a self,
        call: CircuitCall<'a>,
    ) -> BoxFuture<'a, Result<Admission, StoreError>> {
        Box::pin(async move { self.admit(&call) })
    }

    fn report(&self, call: &CircuitCall<'_>, _: Ticket, outcome: CallOutcome) {
        let threshold = call.config.failure_threshold().unwrap_or(u32::MAX);
        let mut circuits = self.circuits.lock();
        let entry = circuits.entry(self.name.clone()).or_insert(Shared::Closed { failures: 0 });
        *entry = match (*entry, outcome) {
            (Shared::Closed { failures }, CallOutcome::Failure) if failures + 1 >= threshold => {
                Shared::Open { until: self.clock.now() + call.config.recovery_timeout() }
            }
            (Shared::Closed { failures }, CallOutcome::Failure) => {
                Shared::Closed { failures: failures + 1 }
            }
            (Shared::Open { .. }, CallOutcome::Failure) => {
                Shared::Open { until: self.clock.now() + call.config.recovery_timeout() }
            }
            (_, CallOutcome::Success) => Shared::Closed { failures: 0 },
            (same, CallOutcome::Ignored) => same,
        };
    }

    fn report_async<'a>(
        &'a self,
        call: CircuitCall<'a>,
        ticket: Ticket,
        outcome: CallOutcome,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.report(&call, ticket, outcome) })
    }

    fn state(&self, _: &CircuitCall<'_>) -> Result<SharedState, StoreError> {
        Ok(match self.get()? {
            Shared::Open { until } if self.clock.now() < until => {
                SharedState::Open { retry_after: until - self.clock.now() }
            }
            Shared::Open { .. } => SharedState::HalfOpen,
            Shared::Closed { .. } => SharedState::Closed,
        })
    }

    fn reset(&self, _: &CircuitCall<'_>) -> Result<(), StoreError> {
        self.get()?;
        self.circuits.lock().remove(&self.name);
        Ok(())
    }
}

impl MemoryBucket {
    fn id(request: &BucketRequest<'_>) -> (String, Option<String>) {
        (request.name.to_owned(), request.key.map(str::to_owned))
    }
}

/// GCRA on the theoretical arrival time, as the Redis script does it.
impl SharedBucket for MemoryBucket {
    fn acquire(&self, request: &BucketRequest<'_>) -> Result<Grant, StoreError> {
        let now = self.clock.now();
        let mut buckets = self.buckets.lock();
        let tat = buckets.entry(Self::id(request)).or_insert(now);
        let next = (*tat).max(now) + request.increment;
        let wait = next.saturating_sub(now + request.capacity);
        if wait.is_zero() {
            *tat = next;
            return Ok(Grant::Now);
        }
        if wait > request.max_wait {
            return Ok(Grant::Refused { retry_after: wait });
        }
        *tat = next;
        Ok(Grant::After(wait))
    }

    fn acquire_async<'a>(
        &'a self,
        request: BucketRequest<'a>,
    ) -> BoxFuture<'a, Result<Grant, StoreError>> {
        Box::pin(async move { self.acquire(&request) })
    }

    fn hold(&self, request: &BucketRequest<'_>, ahead: Duration) -> Result<(), StoreError> {
        let target = self.clock.now() + ahead;
        let mut buckets = self.buckets.lock();
        let tat = buckets.entry(Self::id(request)).or_insert(target);
        *tat = (*tat).max(target);
        Ok(())
    }
}

// ----- circuits ------------------------------------------------------------------------

fn circuit(threshold: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig::builder()
        .failure_threshold(threshold)
        .recovery_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn breaker(store: &MemoryStore, name: &str, config: CircuitBreakerConfig) -> CircuitBreaker {
    CircuitBreaker::with_store(name, config, store).unwrap_or_else(|e| panic!("{e}"))
}

fn fail(b: &CircuitBreaker) -> Result<(), Error> {
    b.call(|| Err(Error::timeout(Duration::from_secs(1))))
}

#[test]
fn two_breakers_on_one_store_share_their_circuit() {
    let store = MemoryStore::default();
    let a = breaker(&store, "inventory", circuit(2));
    let b = breaker(&store, "inventory", circuit(2));
    assert!(a.is_shared() && b.is_shared());
    // One failure each: neither local breaker has seen two, the shared circuit has.
    assert!(matches!(fail(&a), Err(Error::Timeout { .. })));
    assert!(matches!(fail(&b), Err(Error::Timeout { .. })));
    assert_eq!((a.state(), b.state()), (CircuitState::Closed, CircuitState::Closed));
    assert_eq!(
        a.shared_state(),
        Ok(Some(SharedState::Open { retry_after: Duration::from_secs(30) }))
    );
    for breaker in [&a, &b] {
        match breaker.call(|| Ok::<_, Error>(())) {
            Err(Error::CircuitOpen { retry_after, .. }) => {
                assert_eq!(retry_after, Duration::from_secs(30));
            }
            other => panic!("the shared circuit is open: {other:?}"),
        }
        assert_eq!(breaker.stats().rejections, 1, "a shared rejection is counted locally");
    }
    // Once the shared open period is over, calls flow again for both.
    store.clock.advance(Duration::from_secs(30));
    assert_eq!(b.call(|| Ok::<_, Error>(1)), Ok(1));
    assert_eq!(a.shared_state(), Ok(Some(SharedState::Closed)));
    assert_eq!(a.call(|| Ok::<_, Error>(2)), Ok(2));
}

#[tokio::test]
async fn async_calls_go_through_the_shared_circuit_too() {
    let store = MemoryStore::default();
    let a = breaker(&store, "geo", circuit(1));
    let b = breaker(&store, "geo", circuit(5));
    let r = a.call_async(|| async { Err::<(), _>(Error::timeout(Duration::from_secs(1))) }).await;
    assert!(matches!(r, Err(Error::Timeout { .. })));
    let r = b.call_async(|| async { Ok::<_, Error>(()) }).await;
    assert!(matches!(r, Err(Error::CircuitOpen { .. })), "{r:?}");
    assert_eq!(b.state(), CircuitState::Closed, "only the shared circuit is open");
}

#[test]
fn reset_shared_closes_the_circuit_for_every_breaker_and_reset_stays_local() {
    let store = MemoryStore::default();
    let a = breaker(&store, "payments", circuit(1));
    let b = breaker(&store, "payments", circuit(1));
    assert!(fail(&a).is_err());
    assert_eq!(a.state(), CircuitState::Open);
    // `reset` is this process's breaker only: the shared circuit still rejects.
    a.reset();
    assert!(matches!(a.call(|| Ok::<_, Error>(())), Err(Error::CircuitOpen { .. })));
    // `reset_shared` closes it for both.
    assert_eq!(b.reset_shared(), Ok(()));
    assert_eq!(a.call(|| Ok::<_, Error>(3)), Ok(3));
    assert_eq!(b.call(|| Ok::<_, Error>(4)), Ok(4));
}

#[test]
fn an_unreachable_store_fails_open_or_closed_as_configured() {
    let store = MemoryStore::default();
    let open = breaker(&store, "search", circuit(1));
    let closed_config = circuit(1).to_builder().backend(Backend::Redis(FailMode::Closed)).build();
    let closed = breaker(&store, "search", closed_config.unwrap_or_else(|e| panic!("{e}")));
    *store.down.lock() = true;
    assert_eq!(open.call(|| Ok::<_, Error>(5)), Ok(5), "failing open: the local breaker decides");
    match closed.call(|| Ok::<_, Error>(6)) {
        Err(Error::BackendUnavailable { reason, .. }) => assert_eq!(&*reason, "store down"),
        other => panic!("failing closed: {other:?}"),
    }
    assert_eq!(closed.stats().rejections, 1);
    assert!(matches!(open.shared_state(), Err(Error::BackendUnavailable { .. })));
    assert!(matches!(open.reset_shared(), Err(Error::BackendUnavailable { .. })));
}

#[test]
fn a_store_that_shares_nothing_leaves_the_breaker_local() {
    #[derive(Debug)]
    struct Nowhere;
    impl StateStore for Nowhere {
        fn circuit(
            &self,
            _: &str,
            _: &CircuitBreakerConfig,
        ) -> Result<Option<Arc<dyn SharedCircuit>>, resilience::ConfigError> {
            Ok(None)
        }
        fn bucket(
            &self,
            _: &str,
            _: &RateLimitConfig,
        ) -> Result<Option<Arc<dyn SharedBucket>>, resilience::ConfigError> {
            Ok(None)
        }
    }
    let b = CircuitBreaker::with_store("alone", circuit(1), &Nowhere);
    let b = b.unwrap_or_else(|e| panic!("{e}"));
    assert!(!b.is_shared());
    assert_eq!(b.shared_state(), Ok(None));
    let l = RateLimiter::with_store("alone", limit(), &Nowhere).unwrap_or_else(|e| panic!("{e}"));
    assert!(!l.is_shared());
}

// ----- limiters ------------------------------------------------------------------------

/// One permit a minute, a burst of two, rejecting.
fn limit() -> RateLimitConfig {
    RateLimitConfig::builder()
        .per_minute(1)
        .burst(2)
        .on_limit(OnLimit::Reject)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn limiter(store: &MemoryStore, name: &str) -> RateLimiter {
    RateLimiter::with_store(name, limit(), store).unwrap_or_else(|e| panic!("{e}"))
}

fn retry_after(r: Result<(), Error>) -> Duration {
    match r {
        Err(Error::RateLimited { retry_after, .. }) => retry_after,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn two_limiters_on_one_store_share_their_bucket() {
    let store = MemoryStore::default();
    let a = limiter(&store, "shopify");
    let b = limiter(&store, "shopify");
    assert!(a.is_shared() && b.is_shared());
    assert_eq!(a.try_acquire(1), Ok(()));
    assert_eq!(b.try_acquire(1), Ok(()));
    // The burst of two is spent between them.
    assert_eq!(retry_after(a.try_acquire(1)), Duration::from_secs(60));
    assert_eq!(retry_after(b.acquire(1)), Duration::from_secs(60));
    assert_eq!((a.stats().granted, a.stats().rejected), (1, 1));
    store.clock.advance(Duration::from_secs(60));
    assert_eq!(b.try_acquire(1), Ok(()));
    assert_eq!(retry_after(a.try_acquire(1)), Duration::from_secs(60));
    // Another name is another bucket.
    assert_eq!(limiter(&store, "stripe").try_acquire(2), Ok(()));
}

#[tokio::test]
async fn async_acquires_share_the_bucket_too() {
    let store = MemoryStore::default();
    let a = limiter(&store, "async-shop");
    let b = limiter(&store, "async-shop");
    assert_eq!(a.acquire_async(2).await, Ok(()));
    assert_eq!(retry_after(b.acquire_async(1).await), Duration::from_secs(60));
}

#[test]
fn a_pause_and_a_header_resync_reach_every_limiter_sharing_the_bucket() {
    let store = MemoryStore::default();
    let a = limiter(&store, "paused");
    let b = limiter(&store, "paused");
    a.pause_for(Duration::from_secs(10));
    assert_eq!(retry_after(b.try_acquire(1)), Duration::from_secs(10));

    let c = limiter(&store, "resynced");
    let d = limiter(&store, "resynced");
    let report = c.sync_from_headers([("RateLimit-Remaining", "0")]);
    assert_eq!(report.remaining, Some(0));
    assert_eq!(retry_after(d.try_acquire(1)), Duration::from_secs(60));
}

#[test]
fn two_keyed_limiters_share_each_keys_bucket() {
    let store = MemoryStore::default();
    let keyed = || -> KeyedRateLimiter {
        KeyedRateLimiter::with_store("shops", limit(), &store).unwrap_or_else(|e| panic!("{e}"))
    };
    let (a, b) = (keyed(), keyed());
    assert!(a.is_shared());
    assert_eq!(a.try_acquire("a.myshopify.com", 2), Ok(()));
    assert_eq!(retry_after(b.try_acquire("a.myshopify.com", 1)), Duration::from_secs(60));
    assert_eq!(b.try_acquire("b.myshopify.com", 2), Ok(()), "another key, another bucket");
    b.pause_for("c.myshopify.com", Duration::from_secs(5));
    assert_eq!(retry_after(a.try_acquire("c.myshopify.com", 1)), Duration::from_secs(5));
}

#[test]
fn a_registry_keeps_its_shared_instances_in_its_own_store() {
    use resilience::registry::Registry;
    let store = Arc::new(MemoryStore::default());
    let shared = circuit(2).to_builder().backend(Backend::Redis(FailMode::Open)).build().unwrap();
    let (a, b) = (Registry::new(), Registry::new());
    a.set_store(store.clone());
    b.set_store(store.clone());
    let in_a = a.circuit_breakers().get_or_create("registry-inventory", shared.clone()).unwrap();
    let in_b = b.circuit_breakers().get_or_create("registry-inventory", shared).unwrap();
    assert!(in_a.is_shared() && in_b.is_shared(), "both in the registries' store");
    assert!(fail(&in_a).is_err() && fail(&in_b).is_err());
    assert!(matches!(in_a.call(|| Ok::<_, Error>(())), Err(Error::CircuitOpen { .. })));
    assert!(matches!(in_b.call(|| Ok::<_, Error>(())), Err(Error::CircuitOpen { .. })));

    // A local config in the same registry stays local.
    let local = a.circuit_breakers().get_or_create("registry-local", circuit(2)).unwrap();
    assert!(!local.is_shared());
}
