//! `#[circuit_breaker]` as a user writes it: tripping, half-open probes, shared names,
//! registry stats and precedence, classification and fallbacks.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::circuit::{CircuitBreakerConfig, CircuitState};
use resilience::{Error, circuit_breaker, registry};

#[derive(Debug, PartialEq)]
enum AppError {
    Down,
    NotFound,
    Resilience(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Resilience(e)
    }
}

fn is_open(r: &Result<u32, AppError>) -> bool {
    matches!(r, Err(AppError::Resilience(Error::CircuitOpen { .. })))
}

#[circuit_breaker(failure_threshold = 3, recovery_timeout = 30s)]
fn trips(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Down)
}

#[test]
fn opens_after_n_failures_and_rejects_without_running() {
    let calls = AtomicU32::new(0);
    for _ in 0..3 {
        assert_eq!(trips(&calls), Err(AppError::Down));
    }
    let rejected = trips(&calls);
    assert!(is_open(&rejected), "{rejected:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "the rejected call did not run");

    let stats = registry().circuit_breakers().stats(concat!(module_path!(), "::trips")).unwrap();
    assert_eq!(stats.state, CircuitState::Open);
    assert_eq!((stats.calls, stats.failures, stats.rejections), (3, 3, 1));
}

#[circuit_breaker(
    name = "macro-circuit-half-open",
    failure_threshold = 1,
    recovery_timeout = 10s,
    half_open_max_calls = 2,
    success_threshold = 2
)]
async fn probed(calls: &AtomicU32, fail: bool) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    if fail { Err(AppError::Down) } else { Ok(1) }
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_exactly_k_probes_through() {
    let calls = AtomicU32::new(0);
    assert_eq!(probed(&calls, true).await, Err(AppError::Down));
    assert!(is_open(&probed(&calls, false).await));
    tokio::time::advance(Duration::from_secs(10)).await;

    let (a, b, c) =
        tokio::join!(probed(&calls, false), probed(&calls, false), probed(&calls, false));
    let results = [a, b, c];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2, "{results:?}");
    assert_eq!(results.iter().filter(|r| is_open(r)).count(), 1, "{results:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1 + 2);
    let stats = registry().circuit_breakers().stats("macro-circuit-half-open").unwrap();
    assert_eq!(stats.state, CircuitState::Closed, "two successful probes close it");
}

#[circuit_breaker(name = "macro-circuit-shared", failure_threshold = 2)]
fn shared_a() -> Result<u32, AppError> {
    Err(AppError::Down)
}

#[circuit_breaker(name = "macro-circuit-shared", failure_threshold = 2)]
fn shared_b(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Ok(7)
}

#[test]
fn functions_naming_the_same_circuit_share_it() {
    let calls = AtomicU32::new(0);
    assert_eq!(shared_b(&calls), Ok(7));
    let _ = shared_a();
    let _ = shared_a();
    assert!(is_open(&shared_b(&calls)), "a's failures opened b's circuit");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let stats = registry().circuit_breakers().stats("macro-circuit-shared").unwrap();
    assert_eq!((stats.calls, stats.successes, stats.failures, stats.rejections), (3, 1, 2, 1));
}

#[circuit_breaker(name = "macro-circuit-configured", failure_threshold = 50)]
fn configured() -> Result<u32, AppError> {
    Err(AppError::Down)
}

#[test]
fn a_config_in_the_registry_wins_over_the_attribute() {
    let config = CircuitBreakerConfig::builder().failure_threshold(1).build().unwrap();
    registry().circuit_breakers().configure("macro-circuit-configured", config);
    assert_eq!(configured(), Err(AppError::Down));
    assert!(matches!(configured(), Err(AppError::Resilience(Error::CircuitOpen { .. }))));
}

fn not_found(e: &AppError) -> bool {
    *e == AppError::NotFound
}

#[circuit_breaker(name = "macro-circuit-classified", failure_threshold = 2, ignore_if = not_found)]
fn classified(error: AppError) -> Result<u32, AppError> {
    Err(error)
}

#[circuit_breaker(
    name = "macro-circuit-failure-if",
    failure_threshold = 1,
    failure_if = |e: &AppError| *e == AppError::Down
)]
fn failure_if(error: AppError) -> Result<u32, AppError> {
    Err(error)
}

#[test]
fn ignored_errors_and_non_failures_do_not_trip() {
    for _ in 0..10 {
        assert_eq!(classified(AppError::NotFound), Err(AppError::NotFound));
    }
    let stats = registry().circuit_breakers().stats("macro-circuit-classified").unwrap();
    assert_eq!((stats.state, stats.ignored, stats.failures), (CircuitState::Closed, 10, 0));

    for _ in 0..3 {
        assert_eq!(failure_if(AppError::NotFound), Err(AppError::NotFound));
    }
    let stats = registry().circuit_breakers().stats("macro-circuit-failure-if").unwrap();
    assert_eq!((stats.state, stats.successes), (CircuitState::Closed, 3));
    let _ = failure_if(AppError::Down);
    assert_eq!(
        registry().circuit_breakers().stats("macro-circuit-failure-if").unwrap().state,
        CircuitState::Open
    );
}

fn cached_price(sku: &str, quantity: u32) -> Result<u32, AppError> {
    Ok(sku.len() as u32 * quantity)
}

#[circuit_breaker(name = "macro-circuit-fallback", failure_threshold = 1, fallback = cached_price)]
fn price(sku: &str, quantity: u32) -> Result<u32, AppError> {
    let _ = (sku, quantity);
    Err(AppError::Down)
}

#[test]
fn a_fallback_answers_while_the_circuit_is_open() {
    assert_eq!(price("abc", 2), Err(AppError::Down), "a failure is returned as it is");
    assert_eq!(price("abc", 2), Ok(6), "the open circuit calls the fallback with the arguments");
}

struct Catalog {
    fallbacks: AtomicU32,
}

impl Catalog {
    async fn stale(&self, id: u64) -> String {
        self.fallbacks.fetch_add(1, Ordering::SeqCst);
        format!("stale-{id}")
    }

    #[circuit_breaker(name = "macro-circuit-value-fallback", failure_threshold = 1, fallback = Self::stale)]
    async fn title(&self, id: u64) -> String {
        format!("fresh-{id}")
    }
}

#[tokio::test(start_paused = true)]
async fn a_fallback_makes_a_non_result_return_possible() {
    let catalog = Catalog { fallbacks: AtomicU32::new(0) };
    assert_eq!(catalog.title(1).await, "fresh-1");
    registry().force_open("macro-circuit-value-fallback").unwrap();
    assert_eq!(catalog.title(2).await, "stale-2");
    assert_eq!(catalog.fallbacks.load(Ordering::SeqCst), 1);
}

#[circuit_breaker(failure_threshold = 1, recovery_timeout = 5s)]
async fn recovers(fail: bool) -> Result<u32, AppError> {
    if fail { Err(AppError::Down) } else { Ok(1) }
}

#[tokio::test(start_paused = true)]
async fn the_circuit_half_opens_after_the_recovery_timeout() {
    let name = concat!(module_path!(), "::recovers");
    let _ = recovers(true).await;
    let r = recovers(false).await;
    match r {
        Err(AppError::Resilience(Error::CircuitOpen { name: n, retry_after, .. })) => {
            assert_eq!(&*n, name);
            assert_eq!(retry_after, Duration::from_secs(5));
        }
        other => panic!("expected CircuitOpen, got {other:?}"),
    }
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(recovers(false).await, Ok(1), "a probe runs after the recovery timeout");
}

/// Counts the `resilience.call` spans it is shown.
#[derive(Default)]
struct CallSpans(AtomicU32);

impl tracing::Subscriber for CallSpans {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        if span.metadata().name() == "resilience.call" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[circuit_breaker(
    name = "macro-circuit-watched",
    failure_threshold = 3,
    recovery_timeout = 30s,
    ignore_if = not_found
)]
fn watched(error: Option<AppError>) -> Result<u32, AppError> {
    match error {
        Some(e) => Err(e),
        None => Ok(7),
    }
}

/// A lone sync `#[circuit_breaker]` runs its body through the breaker directly when
/// nothing listens, and through the traced pipeline under a subscriber: both count the
/// same outcomes into the same circuit and reject the same way.
#[test]
fn a_lone_breaker_counts_alike_with_and_without_a_subscriber() {
    let spans = std::sync::Arc::new(CallSpans::default());
    tracing::subscriber::with_default(spans.clone(), || {
        assert_eq!(watched(None), Ok(7));
        assert_eq!(watched(Some(AppError::Down)), Err(AppError::Down));
        assert_eq!(watched(Some(AppError::NotFound)), Err(AppError::NotFound));
    });
    assert_eq!(spans.0.load(Ordering::SeqCst), 3, "the observed calls ran in their spans");

    assert_eq!(watched(Some(AppError::NotFound)), Err(AppError::NotFound));
    assert_eq!(watched(Some(AppError::Down)), Err(AppError::Down));
    let stats = registry().circuit_breakers().stats("macro-circuit-watched").unwrap();
    assert_eq!(
        (stats.state, stats.failures),
        (CircuitState::Closed, 2),
        "ignored errors do not count"
    );

    assert_eq!(watched(Some(AppError::Down)), Err(AppError::Down));
    let rejected = watched(None);
    assert!(is_open(&rejected), "{rejected:?}");
    let observed = tracing::subscriber::with_default(spans.clone(), || watched(None));
    assert!(is_open(&observed), "{observed:?}");
    let stats = registry().circuit_breakers().stats("macro-circuit-watched").unwrap();
    assert_eq!((stats.state, stats.failures, stats.rejections), (CircuitState::Open, 3, 2));
}
