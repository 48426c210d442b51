//! Hedged requests through every front-end: the attribute (alone, stacked, in
//! `#[resilient]`), `Pipeline`, the tower layer, TOML and the registry's snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::circuit::{CircuitBreakerConfig, CircuitState};
use resilience::events::{EventKind, Interest, Layer};
use resilience::hedge::{Hedge, HedgeConfig, HedgeDelay};
use resilience::retry::RetryBudgetConfig;
use resilience::{Error, Pipeline, hedge, registry, resilient};
use tokio::time::{Instant, sleep};

#[derive(Debug, PartialEq)]
enum AppError {
    Down,
    Resilience(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Resilience(e)
    }
}

impl resilience::Classify for AppError {
    fn class(&self) -> resilience::ErrorClass {
        match self {
            AppError::Down => resilience::ErrorClass::Transient,
            AppError::Resilience(e) => e.class(),
        }
    }
}

impl resilience::RetryAfter for AppError {}

/// A replica set whose first answer to each call is slow: attempt 1 of a call takes
/// `slow`, every later one 10 ms.
struct Replicas {
    attempts: AtomicU32,
}

impl Replicas {
    const fn new() -> Self {
        Replicas { attempts: AtomicU32::new(0) }
    }

    async fn get(&self, slow: Duration) -> Result<u32, AppError> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        sleep(if n == 1 { slow } else { Duration::from_millis(10) }).await;
        Ok(n)
    }
}

/// A budget that never refuses in these tests.
fn generous() -> HedgeConfig {
    let budget = RetryBudgetConfig::builder().ratio(1.0).min_retries_per_sec(100).build();
    HedgeConfig::builder().budget(budget.unwrap()).build().unwrap()
}

static ATTR: Replicas = Replicas::new();

#[hedge(name = "hedge-attr", delay = 50ms)]
async fn attr_get(key: &str) -> Result<u32, AppError> {
    assert_eq!(key, "k");
    ATTR.get(Duration::from_secs(1)).await
}

#[tokio::test(start_paused = true)]
async fn the_attribute_hedges_a_slow_call_and_keeps_the_first_answer() {
    registry().hedges().configure(
        "hedge-attr",
        HedgeConfig::builder()
            .delay(HedgeDelay::Fixed(Duration::from_millis(50)))
            .budget(
                RetryBudgetConfig::builder().ratio(1.0).min_retries_per_sec(100).build().unwrap(),
            )
            .build()
            .unwrap(),
    );
    let events = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen = events.clone();
    let _sub = registry().subscribe(Interest::RETRIES, move |e| {
        if e.layer == Layer::Hedge && &*e.name == "hedge-attr" {
            seen.lock().push(e.kind.clone());
        }
    });
    let start = Instant::now();
    assert_eq!(attr_get("k").await, Ok(2), "the hedge answered first");
    assert_eq!(start.elapsed(), Duration::from_millis(60));
    let stats = registry().hedges().stats("hedge-attr").unwrap();
    assert_eq!((stats.calls, stats.hedges, stats.hedges_won), (1, 1, 1));
    assert_eq!(
        *events.lock(),
        [
            EventKind::HedgeStarted { hedge: 1, after: Duration::from_millis(50) },
            EventKind::HedgeWon { attempt: 1, after: Duration::from_millis(60) },
        ]
    );
    let snapshot = registry().snapshot();
    assert!(snapshot.hedges.iter().any(|h| h.name == "hedge-attr"));
    assert!(snapshot.to_string().contains("hedge-attr"), "{snapshot}");
}

struct Client {
    replicas: Replicas,
}

impl Client {
    #[resilient(
        retry(max_attempts = 2),
        hedge(name = "hedge-resilient", delay = 50ms),
        circuit_breaker(name = "hedge-resilient", failure_threshold = 10),
        timeout(2s)
    )]
    async fn get(&self, slow: Duration) -> Result<u32, AppError> {
        self.replicas.get(slow).await
    }
}

#[tokio::test(start_paused = true)]
async fn in_resilient_each_hedge_passes_the_breaker_inside_it() {
    registry().hedges().configure("hedge-resilient", {
        let c = generous();
        HedgeConfig::builder()
            .delay(HedgeDelay::Fixed(Duration::from_millis(50)))
            .budget(c.budget().clone())
            .build()
            .unwrap()
    });
    let client = Client { replicas: Replicas::new() };
    assert_eq!(client.get(Duration::from_secs(1)).await, Ok(2));
    let breaker = registry().circuit_breakers().stats("hedge-resilient").unwrap();
    // Both attempts passed the breaker; the hedge's success counts, the cancelled first
    // attempt is neither a success nor a failure.
    assert_eq!(
        (breaker.calls, breaker.successes, breaker.failures, breaker.state),
        (2, 1, 0, CircuitState::Closed)
    );
    // A call answered before the delay starts no hedge.
    assert_eq!(client.get(Duration::from_millis(5)).await, Ok(3));
    let stats = registry().hedges().stats("hedge-resilient").unwrap();
    assert_eq!((stats.calls, stats.hedges), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_refuses_hedges_too() {
    let breaker = Arc::new(resilience::CircuitBreaker::new(
        "hedge-pipeline-open",
        CircuitBreakerConfig::builder().failure_threshold(1).build().unwrap(),
    ));
    let config = HedgeConfig::builder()
        .delay(HedgeDelay::Fixed(Duration::from_millis(50)))
        .budget(generous().budget().clone())
        .build()
        .unwrap();
    let hedge = Arc::new(Hedge::new("hedge-pipeline-open", config));
    let pipeline = Pipeline::new().with_hedge(hedge.clone()).with_circuit_breaker(breaker.clone());
    let calls = AtomicU32::new(0);
    // The first attempt hangs for 1 s then fails; the hedge at 50 ms fails at once and
    // opens the circuit.
    let r: Result<u32, AppError> = pipeline
        .call_async(|| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    sleep(Duration::from_secs(1)).await;
                }
                Err(AppError::Down)
            }
        })
        .await;
    assert_eq!(r, Err(AppError::Down));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(breaker.state(), CircuitState::Open);
    // Now the circuit rejects the first attempt at once: nothing to hedge.
    let r: Result<u32, AppError> = pipeline
        .call_async(|| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(1) }
        })
        .await;
    assert!(matches!(r, Err(AppError::Resilience(Error::CircuitOpen { .. }))), "{r:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(hedge.stats().hedges, 1);
}

#[tokio::test(start_paused = true)]
async fn the_tower_layer_sends_the_request_again_on_a_clone_of_the_service() {
    use resilience::tower::HedgeLayer;
    use tower::{Layer as _, Service, ServiceExt};

    let attempts = Arc::new(AtomicU32::new(0));
    let seen = attempts.clone();
    let inner = tower::service_fn(move |req: String| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            sleep(Duration::from_millis(if n == 0 { 1_000 } else { 10 })).await;
            Ok::<_, std::convert::Infallible>(format!("{req} from attempt {n}"))
        }
    });
    let config = HedgeConfig::builder()
        .delay(HedgeDelay::Fixed(Duration::from_millis(20)))
        .budget(generous().budget().clone())
        .build()
        .unwrap();
    let layer = HedgeLayer::new(Arc::new(Hedge::new("hedge-tower", config)));
    let mut svc = layer.layer(inner);
    let start = Instant::now();
    let answer = svc.ready().await.unwrap().call("ping".to_owned()).await.unwrap();
    assert_eq!(answer, "ping from attempt 1");
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    assert_eq!(layer.hedge().stats().hedges_won, 1);
}

#[test]
fn toml_tables_and_deserialize_configure_a_hedge() {
    let reg = resilience::registry::Registry::new();
    reg.load_toml(
        r#"
        [replicas.hedge]
        delay = "p99"
        max_hedges = 2
        budget = 0.05
        "#,
    )
    .unwrap();
    let config = reg.hedges().configured("replicas").unwrap();
    assert_eq!(config.delay(), HedgeDelay::Percentile(99.0));
    assert_eq!((config.max_hedges(), config.budget().ratio()), (2, 0.05));
    let err = reg.load_toml("[replicas.hedge]\ndelay = \"fast\"\n").unwrap_err();
    assert!(err.to_string().contains("replicas.hedge.delay"), "{err}");

    let config: HedgeConfig = toml::from_str("delay = \"20ms\"").unwrap();
    assert_eq!(config.delay(), HedgeDelay::Fixed(Duration::from_millis(20)));
    assert!(toml::from_str::<HedgeConfig>("max_hedges = 11").is_err());
}
