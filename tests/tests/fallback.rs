//! The fallback as a layer of its own: `pipeline::layer::fallback`, `Pipeline::fallback`,
//! the tower `FallbackLayer` and `#[fallback(handler, on = ..)]`, each answering only the
//! final errors its `on` picks, outside every other layer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
use resilience::fallback::{AnyError, Rejections};
use resilience::pipeline::layer;
use resilience::tower::{BoxError, FallbackLayer, TimeoutLayer};
use resilience::{
    Backoff, Classify, Error, ErrorClass, Fault, Pipeline, RetryAfter, RetryPolicy, fallback,
    retry, timeout,
};
use tower::{Layer, Service, ServiceExt};

#[derive(Debug, Clone, PartialEq)]
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

impl Classify for AppError {
    fn class(&self) -> ErrorClass {
        match self {
            AppError::Down => ErrorClass::Transient,
            AppError::NotFound => ErrorClass::Permanent,
            AppError::Resilience(e) => e.class(),
        }
    }
}

impl RetryAfter for AppError {
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

fn open_breaker(name: &str) -> Arc<CircuitBreaker> {
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_secs(3600))
        .build();
    let breaker = Arc::new(CircuitBreaker::new(name, config.expect("valid config")));
    breaker.force_open();
    breaker
}

// ----- layer::fallback ---------------------------------------------------------------

#[test]
fn layer_fallback_answers_only_what_on_picks() {
    let rejected = || Err::<u32, Fault<AppError>>(Fault::Rejected(Error::timeout(Duration::ZERO)));
    let failed = || Err::<u32, Fault<AppError>>(Fault::Inner(AppError::NotFound));
    let answer = |_: AppError| Ok(7);

    assert_eq!(layer::fallback(&Rejections, answer, rejected), Ok(7));
    assert_eq!(layer::fallback(&Rejections, answer, failed), Err(AppError::NotFound));
    assert_eq!(layer::fallback(&AnyError, answer, failed), Ok(7));
    let not_found = |e: &AppError| *e == AppError::NotFound;
    assert_eq!(layer::fallback(&not_found, answer, failed), Ok(7));
    assert_eq!(
        layer::fallback(&not_found, answer, rejected),
        Err(AppError::Resilience(Error::timeout(Duration::ZERO)))
    );
    // A success never reaches the handler.
    assert_eq!(layer::fallback(&AnyError, |_| Ok(0), || Ok::<u32, Fault<AppError>>(1)), Ok(1));
}

#[test]
fn layer_fallback_hands_the_final_error_to_the_handler() {
    let breaker = open_breaker("fallback-layer-handler");
    let seen = layer::fallback(
        &Rejections,
        |e: Error| Ok(e.to_string()),
        || layer::circuit(Some(&*breaker), &resilience::circuit::AllErrors, || Ok(String::new())),
    );
    assert!(seen.is_ok_and(|s| s.contains("fallback-layer-handler")), "the rejection itself");
}

#[tokio::test(start_paused = true)]
async fn layer_fallback_async_answers_a_timeout() {
    let slow = async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok::<u32, Fault<AppError>>(1)
    };
    let r = layer::fallback_async(&Rejections, |_| async { Ok(2) }, async {
        layer::timeout_async(Some(Duration::from_secs(1)), slow).await
    })
    .await;
    assert_eq!(r, Ok(2));
}

// ----- Pipeline::fallback ------------------------------------------------------------

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(attempts)
        .backoff(Backoff::constant(Duration::ZERO))
        .build()
        .expect("valid policy")
}

#[test]
fn pipeline_fallback_runs_after_the_retries_and_the_breaker_still_counts() {
    let config = CircuitBreakerConfig::builder().failure_threshold(3).build();
    let breaker = Arc::new(CircuitBreaker::new("fallback-pipeline-counts", config.expect("valid")));
    let pipeline = Pipeline::new().with_retry(quick_retry(3)).with_circuit_breaker(breaker.clone());
    let calls = AtomicU32::new(0);
    let answered = AtomicU32::new(0);
    let cached = pipeline.fallback(AnyError, |e: AppError| {
        answered.fetch_add(1, Ordering::SeqCst);
        assert_eq!(e, AppError::Down, "the final error, after the retries");
        Ok("cached")
    });
    let r = cached.call(|| {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(AppError::Down)
    });
    assert_eq!(r, Ok("cached"));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "every attempt ran: the fallback is outermost");
    assert_eq!(answered.load(Ordering::SeqCst), 1, "once, for the final error");
    assert_eq!(breaker.state(), CircuitState::Open, "the breaker counted the three failures");
}

#[test]
fn pipeline_fallback_on_rejections_leaves_the_operations_errors_alone() {
    let pipeline = Pipeline::new().with_circuit_breaker(open_breaker("fallback-pipeline-rejected"));
    let cached = pipeline.fallback(Rejections, |_: AppError| Ok(0u32));
    assert_eq!(cached.call(|| Ok(5)), Ok(0), "open circuit: answered");

    let closed = Pipeline::new();
    let cached = closed.fallback(Rejections, |_: AppError| Ok(0u32));
    assert_eq!(cached.call(|| Err(AppError::NotFound)), Err(AppError::NotFound));
    assert_eq!(cached.call_blocking(|| Err(AppError::NotFound)), Err(AppError::NotFound));
}

#[test]
fn pipeline_fallback_with_a_predicate() {
    let pipeline = Pipeline::new();
    let not_found = pipeline.fallback(|e: &AppError| *e == AppError::NotFound, |_| Ok(0u32));
    assert_eq!(not_found.call(|| Err(AppError::NotFound)), Ok(0));
    assert_eq!(not_found.call(|| Err(AppError::Down)), Err(AppError::Down));
}

#[tokio::test(start_paused = true)]
async fn pipeline_fallback_async_answers_the_timeout_of_the_last_attempt() {
    let pipeline = Pipeline::new().with_retry(quick_retry(2)).with_timeout(Duration::from_secs(1));
    let attempts = AtomicU32::new(0);
    let cached = pipeline.fallback(Rejections, |_: AppError| async { Ok("cached") });
    let r = cached
        .call_async(|| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok("fresh")
            }
        })
        .await;
    assert_eq!(r, Ok("cached"));
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "both attempts timed out first");
}

// ----- tower -------------------------------------------------------------------------

/// A response the tower layers can classify.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Answer(u32);

impl Classify for Answer {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

impl RetryAfter for Answer {
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

#[derive(Clone)]
struct Upstream {
    delay: Duration,
    fail: bool,
}

impl Service<u32> for Upstream {
    type Response = Answer;
    type Error = std::io::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Answer, std::io::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), std::io::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, n: u32) -> Self::Future {
        let (delay, fail) = (self.delay, self.fail);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            if fail { Err(std::io::Error::other("upstream failed")) } else { Ok(Answer(n)) }
        })
    }
}

fn tower_client<O>(
    on: O,
    upstream: Upstream,
) -> impl Service<u32, Response = Answer, Error = BoxError, Future: Send>
where
    O: resilience::fallback::FallbackOn<BoxError> + Send + Sync + 'static,
{
    let fallback =
        FallbackLayer::new(on, |_: BoxError| async { Ok::<Answer, BoxError>(Answer(0)) });
    fallback.layer(TimeoutLayer::new(Duration::from_secs(1)).layer(upstream))
}

#[tokio::test(start_paused = true)]
async fn tower_fallback_layer_answers_rejections_not_inner_errors() {
    let slow = Upstream { delay: Duration::from_secs(5), fail: false };
    let r = tower_client(Rejections, slow).oneshot(7).await;
    assert_eq!(r.ok(), Some(Answer(0)), "timed out: answered");

    let failing = Upstream { delay: Duration::ZERO, fail: true };
    let r = tower_client(Rejections, failing.clone()).oneshot(7).await;
    assert!(r.is_err_and(|e| e.to_string() == "upstream failed"), "the service's own error");

    let r = tower_client(AnyError, failing.clone()).oneshot(7).await;
    assert_eq!(r.ok(), Some(Answer(0)));

    let io_errors = |e: &BoxError| e.downcast_ref::<std::io::Error>().is_some();
    let r = tower_client(io_errors, failing).oneshot(7).await;
    assert_eq!(r.ok(), Some(Answer(0)), "the predicate picks io errors");

    let healthy = Upstream { delay: Duration::ZERO, fail: false };
    assert_eq!(tower_client(AnyError, healthy).oneshot(7).await.ok(), Some(Answer(7)));
}

#[tokio::test(start_paused = true)]
async fn a_named_tower_fallback_reports_its_answers() {
    use resilience::events::{self, EventKind, Interest, Layer as EventLayer};
    use std::sync::Mutex;

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let _sub = events::subscribe(Interest::FALLBACKS, move |e| {
        if &*e.name == "fallback-tower-named" {
            sink.lock().unwrap().push((e.layer, e.kind.clone()));
        }
    });
    let answer = |_: BoxError| async { Ok::<Answer, BoxError>(Answer(0)) };
    let named = FallbackLayer::new(AnyError, answer).named("fallback-tower-named");
    let slow = Upstream { delay: Duration::from_secs(5), fail: false };
    let timed = TimeoutLayer::new(Duration::from_secs(1));
    let r = named.layer(timed.layer(slow)).oneshot(7).await;
    assert_eq!(r.ok(), Some(Answer(0)), "timed out: answered");
    let failing = Upstream { delay: Duration::ZERO, fail: true };
    let r = named.layer(failing).oneshot(7).await;
    assert_eq!(r.ok(), Some(Answer(0)), "failed: answered");
    let fine = Upstream { delay: Duration::ZERO, fail: false };
    assert_eq!(named.layer(fine).oneshot(7).await.ok(), Some(Answer(7)));
    let kinds = seen.lock().unwrap().clone();
    assert_eq!(
        kinds,
        [
            (EventLayer::Fallback, EventKind::FallbackUsed { rejected: true }),
            (EventLayer::Fallback, EventKind::FallbackUsed { rejected: false }),
        ]
    );
}

// ----- #[fallback] -------------------------------------------------------------------

static TRIED: AtomicU32 = AtomicU32::new(0);

fn cached_quote(symbol: &str) -> Result<String, AppError> {
    Ok(format!("{symbol}: cached"))
}

async fn cached_any(symbol: &str) -> Result<String, AppError> {
    Ok(format!("{symbol}: cached"))
}

#[fallback(cached_any, on = "any")]
#[retry(max_attempts = 3, backoff = constant, initial_delay = 10ms, jitter = none)]
async fn quote_any(symbol: &str) -> Result<String, AppError> {
    TRIED.fetch_add(1, Ordering::SeqCst);
    let _ = symbol;
    Err(AppError::Down)
}

#[tokio::test(start_paused = true)]
async fn macro_fallback_on_any_runs_after_the_retries() {
    TRIED.store(0, Ordering::SeqCst);
    assert_eq!(quote_any("ACME").await, Ok("ACME: cached".to_owned()));
    assert_eq!(TRIED.load(Ordering::SeqCst), 3, "every attempt first");
}

#[fallback(cached_quote)]
#[resilience::circuit_breaker(name = "fallback-macro-rejected", failure_threshold = 1, recovery_timeout = 3600s)]
fn quote_rejected(symbol: &str) -> Result<String, AppError> {
    let _ = symbol;
    Err(AppError::Down)
}

#[test]
fn macro_fallback_on_rejected_answers_the_open_circuit_only() {
    assert_eq!(quote_rejected("ACME"), Err(AppError::Down), "the failure itself is returned");
    assert_eq!(quote_rejected("ACME"), Ok("ACME: cached".to_owned()), "then the open circuit");
}

fn is_not_found(e: &AppError) -> bool {
    *e == AppError::NotFound
}

#[fallback(cached_quote, on = is_not_found)]
fn quote_predicate(symbol: &str) -> Result<String, AppError> {
    if symbol == "missing" { Err(AppError::NotFound) } else { Err(AppError::Down) }
}

#[test]
fn macro_fallback_on_a_predicate() {
    assert_eq!(quote_predicate("missing"), Ok("missing: cached".to_owned()));
    assert_eq!(quote_predicate("ACME"), Err(AppError::Down));
}

async fn cached_async(symbol: &str) -> Result<String, AppError> {
    Ok(format!("{symbol}: cached async"))
}

#[fallback(cached_async)]
#[timeout(1s)]
async fn quote_async(symbol: &str) -> Result<String, AppError> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(symbol.to_owned())
}

async fn cached_after(symbol: &str, delay: Duration) -> Result<String, AppError> {
    let _ = delay;
    Ok(format!("{symbol}: cached async"))
}

#[fallback(cached_after, on = |e: &AppError| matches!(e, AppError::Resilience(Error::Timeout { .. })))]
#[timeout(1s)]
async fn quote_timeout_closure(symbol: &str, delay: Duration) -> Result<String, AppError> {
    tokio::time::sleep(delay).await;
    if symbol == "missing" { Err(AppError::NotFound) } else { Ok(symbol.to_owned()) }
}

#[tokio::test(start_paused = true)]
async fn macro_fallback_async_and_a_closure_predicate() {
    assert_eq!(quote_async("ACME").await, Ok("ACME: cached async".to_owned()));
    let slow = Duration::from_secs(5);
    assert_eq!(quote_timeout_closure("ACME", slow).await, Ok("ACME: cached async".to_owned()));
    assert_eq!(quote_timeout_closure("ACME", Duration::ZERO).await, Ok("ACME".to_owned()));
    assert_eq!(
        quote_timeout_closure("missing", Duration::ZERO).await,
        Err(AppError::NotFound),
        "the predicate picks timeouts only"
    );
}

struct Prices;

impl Prices {
    fn cached(&self, sku: u32) -> u32 {
        sku * 10
    }

    #[fallback(Self::cached)]
    #[resilience::circuit_breaker(name = "fallback-macro-method", failure_threshold = 1)]
    fn price(&self, sku: u32) -> u32 {
        sku
    }
}

#[test]
fn macro_fallback_on_a_method_returning_a_plain_value() {
    assert_eq!(Prices.price(2), 2);
    let breaker = resilience::registry().circuit_breakers().get("fallback-macro-method");
    assert!(breaker.as_ref().is_some_and(|b| {
        b.force_open();
        b.state() == CircuitState::ForcedOpen
    }));
    assert_eq!(Prices.price(2), 20, "the rejection goes to the fallback");
}
