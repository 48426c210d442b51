//! The crate's layers as tower [`Layer`]s (feature `tower`): around any [`Service`] of
//! hyper, tonic, axum or your own.
//!
//! [`ResilienceLayer`] is every layer of a [`ResilienceConfig`] in the crate's fixed
//! order (retry → circuit breaker → rate limit → bulkhead → timeout, the timeout per
//! attempt), built from a config, a [`Preset`] or a name in the [`registry()`]; its
//! instances are the registry's of that name, so a layer named `"payments"` shares its
//! circuit and bucket with `#[resilient(name = "payments", ..)]` and with
//! [`Pipeline::from_config("payments", ..)`](crate::Pipeline::from_config). For another
//! order, the single layers: [`RetryLayer`], [`CircuitBreakerLayer`],
//! [`RateLimitLayer`], [`BulkheadLayer`], [`TimeoutLayer`], and [`HedgeLayer`] for hedged
//! requests (placed between the retry and the circuit breaker in the crate's order). A
//! [`FallbackLayer`] goes outermost, above them all, and answers the final error.
//!
//! **Responses are classified**, not only errors: a response whose [`Classify`] class
//! is transient or throttled (for [`http::Response`]: 408, 425, 429,
//! the 5xx but 501, 505 and 511; see [`crate::http`]) is retried (after its
//! `Retry-After`), and a transient one counts as a failure for the circuit breaker, all
//! without being an `Err`: when the attempts run out, the caller gets the last response.
//! A permanent response (a 404) is returned at once and counts as a success.
//!
//! **Errors** are a [`BoxError`], tower's convention: the inner service's error as it
//! was, or a [`resilience::Error`](crate::Error) when a layer refused the call or cut it
//! short (`err.downcast_ref::<resilience::Error>()`). An error of the inner service is
//! classified through its chain of [`source`](std::error::Error::source)s: a resilience
//! `Error` (of an inner layer) by its class, an [`io::Error`](std::io::Error) by its kind
//! ([`io_error_kind`]), anything else (a transport error:
//! a refused or reset connection) as transient.
//!
//! **Retry needs a request it can send again**: the service of a [`ResilienceLayer`] or
//! [`RetryLayer`] implements `Service<Req>` only for `Req: Clone` (an
//! `http::Request<B>` is `Clone` when its body is, e.g. `Full<Bytes>` or `String`), so a
//! request that cannot be cloned (a streaming body) is a compile error there, not a
//! silent single attempt. Without retry, the other single layers take any request.
//!
//! **`poll_ready` reserves nothing.** A layer of at most a circuit breaker and a rate
//! limiter (a [`ResilienceLayer`] of those two, a [`CircuitBreakerLayer`], a
//! [`RateLimitLayer`]) passes the inner service's readiness on, as tower's own layers
//! do, and admits the call in `call`, as tower's `RateLimit` does: the breaker first (an
//! open circuit takes no permits), then the limiter's permits, then the inner service's
//! call. A refused call never reaches the inner service, whose readiness then serves
//! the next call; a call that has to wait for its permits takes the ready service with
//! it and leaves a clone in its place. Every other stack (with a retry, a bulkhead, a
//! timeout or a keyed layer) answers ready at once: each attempt waits for the
//! readiness of its own clone of the inner service (tower's `Buffer` and `Retry` do the
//! same), and the bulkhead slot and the limiter's permits are taken inside the call's
//! future. Either way a service or future dropped at any point holds nothing: a call
//! dropped before its response counts as ignored by the breaker.
//!
//! ```
//! use http::{Request, Response};
//! use resilience::tower::ResilienceLayer;
//! use resilience::Preset;
//! use std::convert::Infallible;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use tower_layer::Layer;
//! use tower_service::Service;
//!
//! // An upstream that answers 503 twice, then 200.
//! #[derive(Clone)]
//! struct Upstream(Arc<AtomicU32>);
//! impl Service<Request<String>> for Upstream {
//!     type Response = Response<String>;
//!     type Error = Infallible;
//!     type Future = std::future::Ready<Result<Response<String>, Infallible>>;
//!     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
//!         std::task::Poll::Ready(Ok(()))
//!     }
//!     fn call(&mut self, _: Request<String>) -> Self::Future {
//!         let n = self.0.fetch_add(1, Ordering::SeqCst);
//!         let status = if n < 2 { 503 } else { 200 };
//!         std::future::ready(Ok(Response::builder().status(status).body(String::new()).unwrap_or_default()))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let calls = Arc::new(AtomicU32::new(0));
//! let layer = ResilienceLayer::from_preset("docs-tower-upstream", Preset::Api)?;
//! let mut client = layer.layer(Upstream(calls.clone()));
//! let response = client.call(Request::new(String::new())).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(calls.load(Ordering::SeqCst), 3, "two 503s retried");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::bulkhead::Bulkhead;
use crate::circuit::{
    AdaptiveThrottle, ByClass, CallOutcome, Circuit, CircuitBreaker, DetachedPermit,
    KeyedCircuitBreaker, fault_outcome,
};
use crate::classify::io_error_kind;
use crate::fallback::FallbackOn;
use crate::pipeline::layer;
use crate::presets::{Preset, ResilienceConfig};
use crate::rate_limit::{KeyedRateLimiter, RateLimiter};
use crate::retry::{Classified, RetryPolicy};
use crate::{Classify, ConfigError, Error, ErrorClass, Fault, RetryAfter, registry};

pub use crate::hedge::service::{HedgeLayer, Hedged};

/// The error of the services of this module: the inner service's error, or a boxed
/// [`resilience::Error`](crate::Error) for a rejection.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed future of a call's result: the paths of [`ResponseFuture`] that are not
/// written out by hand.
pub(crate) type BoxFuture<R> = Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>;

pin_project! {
    /// The future of [`Resilience`] and [`Guarded`]: one call's response.
    ///
    /// A call through a circuit breaker and a rate limiter with permits left (any of
    /// them, or none: the single [`CircuitBreakerLayer`] and [`RateLimitLayer`], and a
    /// [`ResilienceLayer`] of those two) is admitted by `call` itself, which then calls
    /// the inner service: this future is the inner service's future and the breaker's
    /// permit, and allocates nothing. The other paths run in a boxed future, one
    /// allocation per call: a retry (each attempt clones the request and the service), a
    /// keyed layer (its key is a `String`), a bulkhead, a timeout, a breaker or limiter on
    /// a shared store, and a call that has to wait for its permits.
    ///
    /// Dropped before the response, the call counts as ignored by the breaker and its
    /// half-open probe slot is freed, as on every path.
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req>,
        // The output was returned (the state is left as it was until the future drops).
        returned: bool,
    }
}

pin_project! {
    /// Where a [`ResponseFuture`] is.
    #[project = StateProj]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        // Admitted by the breaker (its permit, if there is a breaker) and the limiter:
        // the inner service's future.
        Calling { admitted: Option<Admitted>, #[pin] call: S::Future },
        // Refused before the inner service was called.
        Refused { error: Option<BoxError> },
        // Every other path.
        Boxed { future: BoxFuture<S::Response> },
    }
}

impl<S, Req> ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    #[inline]
    fn new(state: State<S, Req>) -> Self {
        ResponseFuture { state, returned: false }
    }

    fn boxed(future: BoxFuture<S::Response>) -> Self {
        Self::new(State::Boxed { future })
    }
}

impl<S, Req> fmt::Debug for ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            _ if self.returned => "done",
            State::Calling { .. } => "calling",
            State::Refused { .. } => "refused",
            State::Boxed { .. } => "boxed",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish_non_exhaustive()
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Response: Classify,
{
    type Output = Result<S::Response, BoxError>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.state.project() {
            // The direct path, written so that it inlines into the caller's loop: the
            // response moves once, and only the breaker's report is added to it. The
            // answer is counted as `report(admitted, classified(output))` counts it.
            StateProj::Calling { admitted, call } if !*this.returned => {
                let output = std::task::ready!(call.poll(cx));
                *this.returned = true;
                Poll::Ready(match output {
                    Ok(response) => {
                        if let Some(admitted) = admitted.take() {
                            admitted.record(response_outcome(&response));
                        }
                        Ok(response)
                    }
                    Err(e) => Err(errored(admitted, e.into())),
                })
            }
            state => poll_other(state, this.returned, cx),
        }
    }
}

/// [`ResponseFuture::poll`] off the direct path: a boxed future, a refusal, or a future
/// polled again after it returned.
#[cold]
#[inline(never)]
fn poll_other<S, Req>(
    state: StateProj<'_, S, Req>,
    returned: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Result<S::Response, BoxError>>
where
    S: Service<Req>,
{
    if *returned {
        return Poll::Ready(Err(polled_after_done()));
    }
    let output = match state {
        StateProj::Boxed { future } => std::task::ready!(future.as_mut().poll(cx)),
        StateProj::Refused { error } => match error.take() {
            Some(error) => Err(error),
            None => Err(polled_after_done()),
        },
        // Only reached once it returned (handled above).
        StateProj::Calling { .. } => Err(polled_after_done()),
    };
    *returned = true;
    Poll::Ready(output)
}

/// The inner service's error `e` on the direct path, reported to the breaker that
/// admitted the call (by its class: see [`error_class`]).
#[cold]
#[inline(never)]
fn errored(admitted: &mut Option<Admitted>, e: BoxError) -> BoxError {
    if let Some(admitted) = admitted.take() {
        admitted.record(error_class(&*e).breaker_outcome());
    }
    e
}

#[cold]
fn polled_after_done() -> BoxError {
    Box::new(Error::Config(ConfigError::new(
        "future",
        "a tower ResponseFuture was polled after it returned",
    )))
}

/// How the breaker counts a response of the inner service: a transient one (to be
/// retried) by its class, any other as a success; the same count as
/// `fault_outcome(&classified(Ok(response)), &ByClass)`.
#[inline]
fn response_outcome<R: Classify>(response: &R) -> CallOutcome {
    if response.is_transient() { response.class().breaker_outcome() } else { CallOutcome::Success }
}

/// A breaker's permit held by a call's future: reported when the call returns, and
/// counted as ignored (its half-open probe slot freed) when dropped before.
struct Admitted {
    breaker: Arc<CircuitBreaker>,
    permit: Option<DetachedPermit>,
}

impl Admitted {
    /// Reports the call's `outcome`.
    #[inline]
    fn record(mut self, outcome: CallOutcome) {
        if let Some(permit) = self.permit.take() {
            self.breaker.attach(permit).record(outcome);
        }
    }
}

impl Drop for Admitted {
    #[inline]
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            // Not reported: the call counts as ignored.
            drop(self.breaker.attach(permit));
        }
    }
}

/// What [`Resilience`] and [`Guarded`] hold: the inner service, the layers' stack, where
/// a keyed layer takes its key from, and whether the stack is direct.
#[derive(Clone)]
struct Wrapped<S, K> {
    inner: S,
    stack: Arc<Stack>,
    key: K,
    /// [`Stack::direct`], read once.
    direct: bool,
}

impl<S, K> Wrapped<S, K> {
    fn new(inner: S, stack: &Arc<Stack>, key: K) -> Self {
        Wrapped { inner, stack: stack.clone(), key, direct: stack.direct() }
    }

    /// The readiness of [`Resilience`] and [`Guarded`]: a direct stack's is the inner
    /// service's (its call is admitted in `call`, on that service); any other stack is
    /// ready at once (each attempt waits for its own clone of the inner service).
    #[inline(always)]
    fn poll_ready<Req>(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>>
    where
        S: Service<Req>,
        S::Error: Into<BoxError>,
    {
        if self.direct {
            return self.inner.poll_ready(cx).map_err(Into::into);
        }
        Poll::Ready(Ok(()))
    }

    /// The `Debug` output of the service called `name`.
    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        S: fmt::Debug,
    {
        f.debug_struct(name).field("inner", &self.inner).field("layers", &self.stack).finish()
    }
}

/// A call through a direct stack ([`Stack::direct`]: at most a local breaker and a
/// limiter), made on `inner`, which the caller has driven to readiness: the breaker's
/// admission (an open circuit takes no permits), the limiter's permits, then the inner
/// service's call, all here; only a call whose permits are not there at once moves to
/// a boxed future, taking the ready service with it.
#[inline(always)]
fn call_direct<S, Req>(stack: &Arc<Stack>, inner: &mut S, req: Req) -> ResponseFuture<S, Req>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    S::Response: Classify + Send + 'static,
    Req: Send + 'static,
{
    let admitted = match &stack.breaker {
        Some(breaker) => match breaker.try_acquire() {
            Ok(permit) => {
                let permit = Some(permit.detach());
                Some(Admitted { breaker: breaker.clone(), permit })
            }
            Err(e) => return refused(e),
        },
        None => None,
    };
    if let Some(limiter) = &stack.limiter
        && !limiter.take_now(stack.cost)
    {
        return wait_for_permits(stack, admitted, inner, req);
    }
    ResponseFuture::new(State::Calling { admitted, call: inner.call(req) })
}

/// A direct call the breaker refused: it never reaches the inner service.
#[cold]
#[inline(never)]
fn refused<S: Service<Req>, Req>(e: Error) -> ResponseFuture<S, Req> {
    ResponseFuture::new(State::Refused { error: Some(Box::new(e)) })
}

/// A direct call whose permits were not there at once: it waits (or is rejected) as the
/// limiter's policy says, in a boxed future. The ready service goes with the call, a
/// clone takes its place for the next one.
#[cold]
#[inline(never)]
fn wait_for_permits<S, Req>(
    stack: &Arc<Stack>,
    admitted: Option<Admitted>,
    inner: &mut S,
    req: Req,
) -> ResponseFuture<S, Req>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    S::Response: Classify + Send + 'static,
    Req: Send + 'static,
{
    let ready = std::mem::replace(inner, inner.clone());
    ResponseFuture::boxed(Box::pin(limited(stack.clone(), admitted, ready, req)))
}

/// An inner service's answer as one attempt's result: a transient response is a failed
/// attempt (to retry, and a failure for the breaker), still returned to the caller.
#[inline]
fn classified<R: Classify, E: Into<BoxError>>(result: Result<R, E>) -> Attempt<R> {
    match result {
        Ok(response) if response.is_transient() => Err(Fault::Inner(Failed::Response(response))),
        Ok(response) => Ok(response),
        Err(e) => Err(Fault::Inner(Failed::Error(e.into()))),
    }
}

/// Reports `result` to the breaker that admitted the call, then returns it to the caller.
#[inline]
fn report<R: Classify>(admitted: Option<Admitted>, result: Attempt<R>) -> Result<R, BoxError> {
    if let Some(admitted) = admitted {
        admitted.record(fault_outcome(&result, &ByClass));
    }
    finish(result)
}

/// The rest of a call whose permits were not there at once: the limiter's wait (or
/// rejection), then the call, reported to the breaker that admitted it (dropped during
/// the wait, the call counts as ignored).
async fn limited<S, Req>(
    stack: Arc<Stack>,
    admitted: Option<Admitted>,
    mut svc: S,
    req: Req,
) -> Result<S::Response, BoxError>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Response: Classify,
{
    let result =
        layer::rate_limit_async(stack.limiter.as_deref(), stack.cost, send(&mut svc, req)).await;
    report(admitted, result)
}

/// One attempt on the inner service: its readiness, then the call.
async fn send<S, Req>(svc: &mut S, req: Req) -> Attempt<S::Response>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Response: Classify,
{
    let inner_error = |e: S::Error| Fault::Inner(Failed::Error(e.into()));
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await.map_err(inner_error)?;
    classified(svc.call(req).await)
}

/// Where a keyed layer takes its key from (a request's host, a tenant header, a peer
/// address): [`NoKey`] for unkeyed layers, [`KeyFn`] around a closure.
pub trait RequestKey<Req> {
    /// The key of `request`, `None` when the layer is not keyed.
    fn key(&self, request: &Req) -> Option<String>;
}

/// No key: one circuit and one bucket for every request.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKey;

impl<Req> RequestKey<Req> for NoKey {
    #[inline(always)]
    fn key(&self, _: &Req) -> Option<String> {
        None
    }
}

/// A key from a closure of the request: one circuit and one bucket per key.
#[derive(Clone)]
pub struct KeyFn<F>(F);

impl<F> fmt::Debug for KeyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyFn")
    }
}

impl<Req, F: Fn(&Req) -> String> RequestKey<Req> for KeyFn<F> {
    #[inline]
    fn key(&self, request: &Req) -> Option<String> {
        Some((self.0)(request))
    }
}

/// The instances a layer runs with (each absent or not), in the fixed order.
#[derive(Default, Clone)]
pub(crate) struct Stack {
    retry: Option<RetryPolicy>,
    breaker: Option<Arc<CircuitBreaker>>,
    keyed_breaker: Option<Arc<KeyedCircuitBreaker<String>>>,
    /// A circuit in mode `adaptive_throttle`, in the breaker's place.
    throttle: Option<Arc<AdaptiveThrottle>>,
    limiter: Option<Arc<RateLimiter>>,
    keyed_limiter: Option<Arc<KeyedRateLimiter<String>>>,
    cost: u32,
    bulkhead: Option<Arc<Bulkhead>>,
    timeout: Option<Duration>,
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |n: Option<&Arc<str>>| n.cloned();
        f.debug_struct("Stack")
            .field("retry", &self.retry.as_ref().map(RetryPolicy::max_attempts))
            .field("circuit_breaker", &name(self.breaker.as_ref().map(|b| b.name())))
            .field("keyed_circuit_breaker", &name(self.keyed_breaker.as_ref().map(|b| b.name())))
            .field("adaptive_throttle", &self.throttle.as_ref().map(|t| t.name().to_owned()))
            .field("rate_limiter", &name(self.limiter.as_ref().map(|l| l.name())))
            .field("keyed_rate_limiter", &name(self.keyed_limiter.as_ref().map(|l| l.name())))
            .field("cost", &self.cost)
            .field("bulkhead", &name(self.bulkhead.as_ref().map(|b| b.name())))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A failed attempt: a response to retry, or the inner service's error.
enum Failed<R> {
    Response(R),
    Error(BoxError),
}

impl<R> fmt::Debug for Failed<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failed::Response(_) => f.write_str("Response(..)"),
            Failed::Error(e) => f.debug_tuple("Error").field(e).finish(),
        }
    }
}

impl<R: Classify> Classify for Failed<R> {
    fn class(&self) -> ErrorClass {
        match self {
            Failed::Response(r) => r.class(),
            Failed::Error(e) => error_class(&**e),
        }
    }
}

impl<R: RetryAfter> RetryAfter for Failed<R> {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failed::Response(r) => r.retry_after(),
            Failed::Error(e) => sources(&**e).find_map(|e| {
                e.downcast_ref::<Error>().and_then(Error::retry_after).or_else(|| {
                    e.downcast_ref::<std::io::Error>().and_then(RetryAfter::retry_after)
                })
            }),
        }
    }
}

/// `e` and its sources.
fn sources<'e>(
    e: &'e (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'e (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

/// The class of an inner service's error: the first resilience `Error` or `io::Error` in
/// its chain decides; anything else is a transport error, transient.
///
/// ```
/// use resilience::tower::error_class;
/// use resilience::{Error, ErrorClass};
/// use std::io::ErrorKind;
/// use std::time::Duration;
///
/// assert_eq!(error_class(&Error::circuit_open("c", Duration::from_secs(1))), ErrorClass::Permanent);
/// assert_eq!(error_class(&std::io::Error::from(ErrorKind::ConnectionRefused)), ErrorClass::Transient);
/// assert_eq!(error_class(&std::fmt::Error), ErrorClass::Transient);
/// ```
pub fn error_class(error: &(dyn std::error::Error + 'static)) -> ErrorClass {
    for e in sources(error) {
        if let Some(e) = e.downcast_ref::<Error>() {
            return e.class();
        }
        if let Some(e) = e.downcast_ref::<std::io::Error>() {
            return match e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
                Some(inner) => inner.class(),
                None => io_error_kind(e.kind()),
            };
        }
    }
    ErrorClass::Transient
}

type Attempt<R> = Result<R, Fault<Failed<R>>>;

impl Stack {
    fn new() -> Stack {
        Stack { cost: 1, ..Stack::default() }
    }

    /// Whether a call is admitted by the service's `call` and runs in
    /// [`ResponseFuture`] itself: at most an unkeyed local breaker and an unkeyed
    /// limiter (a keyed layer is never direct, so the key is not needed). Read once per
    /// service, when the layer wraps it (the instances' kinds never change).
    fn direct(&self) -> bool {
        self.retry.is_none()
            && self.keyed_breaker.is_none()
            && self.throttle.is_none()
            && self.keyed_limiter.is_none()
            && self.bulkhead.is_none()
            && self.timeout.is_none()
            && self.breaker.as_ref().is_none_or(|b| !b.is_shared())
    }

    /// The retry policy, if any.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn retry(&self) -> Option<&RetryPolicy> {
        self.retry.as_ref()
    }

    /// Re-syncs the limiter (`key`'s bucket when keyed) from a response's headers.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn sync_from(&self, key: Option<&str>, headers: &::http::HeaderMap) {
        match (&self.keyed_limiter, &self.limiter, key) {
            (Some(limiter), _, Some(key)) => {
                limiter.sync_from_header_map(key, headers);
            }
            (_, Some(limiter), _) => {
                limiter.sync_from_header_map(headers);
            }
            _ => {}
        }
    }

    /// Every layer of `config`, with the registry's instances called `name` (keyed
    /// breaker and limiter when `keyed`).
    pub(crate) fn from_config(
        name: &str,
        config: &ResilienceConfig,
        keyed: bool,
    ) -> Result<Stack, ConfigError> {
        let reg = registry();
        let config = &reg.bind_budget(config.clone(), name);
        let mut s = Stack::new();
        if let Some(r) = &config.retry {
            s.retry = Some(reg.resolve_retry(name, || Ok(r.clone()))?);
        }
        if let Some(c) = &config.circuit_breaker {
            if keyed && c.throttle().is_none() {
                s.keyed_breaker =
                    Some(reg.keyed_circuit_breakers().resolve(name, || Ok(c.clone()))?);
            } else {
                match reg.resolve_circuit(name, || Ok(c.clone()))? {
                    Circuit::Breaker(b) => s.breaker = Some(b),
                    Circuit::Throttle(t) => s.throttle = Some(t),
                }
            }
        }
        if let Some(c) = &config.rate_limit {
            if keyed {
                s.keyed_limiter = Some(reg.keyed_rate_limiters().resolve(name, || Ok(c.clone()))?);
            } else {
                s.limiter = Some(reg.rate_limiters().resolve(name, || Ok(c.clone()))?);
            }
        }
        if let Some(c) = &config.bulkhead {
            s.bulkhead = Some(reg.bulkheads().resolve(name, || Ok(c.clone()))?);
        }
        s.timeout = config.timeout;
        Ok(s)
    }

    /// One attempt through every layer but retry.
    async fn attempt<S, Req>(
        &self,
        svc: &mut S,
        req: Req,
        key: Option<&str>,
    ) -> Attempt<S::Response>
    where
        S: Service<Req>,
        S::Error: Into<BoxError>,
        S::Response: Classify,
    {
        self.attempt_with(key, send(svc, req)).await
    }

    /// The attempt `inner` through every layer but retry, with `key`'s circuit and
    /// bucket when the breaker or limiter is keyed.
    pub(crate) async fn attempt_with<R, E, Fut>(
        &self,
        key: Option<&str>,
        inner: Fut,
    ) -> Result<R, Fault<E>>
    where
        E: Classify,
        Fut: Future<Output = Result<R, Fault<E>>>,
    {
        // Each layer awaits the one inside it through a pinned reference: a layer's
        // future then holds its own state only, not copies of every future inside it.
        let inner = pin!(inner);
        let timed = pin!(layer::timeout_async(self.timeout, inner));
        let bulkheaded = pin!(layer::bulkhead_async(self.bulkhead.as_deref(), timed));
        let limited = pin!(async {
            match (&self.keyed_limiter, key) {
                (Some(limiter), Some(key)) => {
                    layer::keyed_rate_limit_async(Some(&**limiter), key, self.cost, bulkheaded)
                        .await
                }
                _ => layer::rate_limit_async(self.limiter.as_deref(), self.cost, bulkheaded).await,
            }
        });
        match (&self.keyed_breaker, key, &self.throttle) {
            (Some(breaker), Some(key), _) => {
                layer::keyed_circuit_async(Some(&**breaker), key, &ByClass, limited).await
            }
            (_, _, Some(throttle)) => throttle.run_async(&ByClass, limited).await,
            _ => layer::circuit_async(self.breaker.as_deref(), &ByClass, limited).await,
        }
    }
}

/// The caller's result: a response that was retried until the attempts ran out is
/// returned as it is.
fn finish<R>(result: Attempt<R>) -> Result<R, BoxError> {
    match result {
        Ok(response) | Err(Fault::Inner(Failed::Response(response))) => Ok(response),
        Err(Fault::Inner(Failed::Error(e))) => Err(e),
        Err(Fault::Rejected(e)) => Err(Box::new(e)),
    }
}

/// Every layer of a [`ResilienceConfig`] around a tower [`Service`], in the crate's
/// fixed order (see the [module](self)); its service is a [`Resilience`].
///
/// `K` is where a keyed breaker and limiter take their key: [`NoKey`], or a closure of
/// the request ([`from_config_keyed`](Self::from_config_keyed)).
#[derive(Debug)]
pub struct ResilienceLayer<K = NoKey> {
    stack: Arc<Stack>,
    key: K,
}

impl<K: Clone> Clone for ResilienceLayer<K> {
    fn clone(&self) -> Self {
        ResilienceLayer { stack: self.stack.clone(), key: self.key.clone() }
    }
}

/// A preset that limits per tenant needs a key.
fn unkeyed_tenant(config_name: &str, tenant: &str) -> ConfigError {
    ConfigError::new(
        "key",
        format!(
            "preset `{config_name}` sets its limits per {tenant}: build the layer with \
             `ResilienceLayer::from_config_keyed(name, &config, |request| ..)` to key it by {tenant}"
        ),
    )
}

impl ResilienceLayer<NoKey> {
    /// Every layer of `config`, with the [`registry()`]'s instances called `name`
    /// (created from `config` on first use; a config the registry has for `name` wins,
    /// as for the attributes).
    ///
    /// ```
    /// use resilience::tower::ResilienceLayer;
    /// use resilience::{CircuitBreakerConfig, ResilienceConfig};
    ///
    /// let config = ResilienceConfig::default().with_circuit_breaker(CircuitBreakerConfig::default());
    /// let layer = ResilienceLayer::from_config("docs-tower-config", &config)?;
    /// assert!(resilience::registry().circuit_breakers().get("docs-tower-config").is_some());
    /// # drop(layer);
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn from_config(name: &str, config: &ResilienceConfig) -> Result<Self, ConfigError> {
        Ok(ResilienceLayer {
            stack: Arc::new(Stack::from_config(name, config, false)?),
            key: NoKey,
        })
    }

    /// The layers of a built-in preset. A preset that limits per tenant
    /// ([`Preset::tenant`], e.g. [`Preset::Shopify`]) is refused: key it with
    /// [`from_config_keyed`](Self::from_config_keyed).
    pub fn from_preset(name: &str, preset: Preset) -> Result<Self, ConfigError> {
        if let Some(tenant) = preset.tenant() {
            return Err(unkeyed_tenant(preset.name(), tenant));
        }
        Self::from_config(name, &preset.config())
    }

    /// The layers of the config the [`registry()`] holds under `name` (set with
    /// [`Registry::configure`](crate::registry::Registry::configure), a TOML file, or a
    /// registered or built-in preset of that name), sharing its instances with the
    /// attributes of that name. A name the registry does not know is an error, and so
    /// is a built-in preset that limits per tenant (key it with
    /// [`from_config_keyed`](Self::from_config_keyed)).
    pub fn named(name: &str) -> Result<Self, ConfigError> {
        if let Some(tenant) = Preset::from_name(name).and_then(Preset::tenant) {
            return Err(unkeyed_tenant(name, tenant));
        }
        let config = registry().preset(name).ok_or_else(|| {
            ConfigError::new(
                "name",
                format!(
                    "the registry has no config named `{name}`: configure it first \
                     (`registry().configure(\"{name}\", config)` or a config file)"
                ),
            )
        })?;
        Self::from_config(name, &config)
    }

    /// Every layer of `config` with a keyed circuit breaker and rate limiter: one circuit
    /// and one bucket per key, the key taken from each request by `key` (its host, a
    /// tenant header, ...). The keyed instances are the registry's called `name`, shared
    /// with `#[resilient(name = .., key = ..)]`.
    ///
    /// ```
    /// use http::Request;
    /// use resilience::tower::ResilienceLayer;
    /// use resilience::Preset;
    ///
    /// let per_shop = ResilienceLayer::from_config_keyed("docs-tower-shops", &Preset::Shopify.config(), |r: &Request<String>| {
    ///     r.headers().get("x-shop").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
    /// })?;
    /// # drop(per_shop);
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    pub fn from_config_keyed<F, Req>(
        name: &str,
        config: &ResilienceConfig,
        key: F,
    ) -> Result<ResilienceLayer<KeyFn<F>>, ConfigError>
    where
        F: Fn(&Req) -> String,
    {
        Ok(ResilienceLayer {
            stack: Arc::new(Stack::from_config(name, config, true)?),
            key: KeyFn(key),
        })
    }
}

impl<K> ResilienceLayer<K> {
    /// Permits each attempt takes from the rate limiter (default 1).
    pub fn with_cost(mut self, cost: u32) -> Self {
        Arc::make_mut(&mut self.stack).cost = cost;
        self
    }
}

impl<S, K: Clone> Layer<S> for ResilienceLayer<K> {
    type Service = Resilience<S, K>;

    fn layer(&self, inner: S) -> Resilience<S, K> {
        Resilience(Wrapped::new(inner, &self.stack, self.key.clone()))
    }
}

/// The service of a [`ResilienceLayer`] or a [`RetryLayer`]: retries need a request that
/// is `Clone` (see the [module](self)).
#[derive(Clone)]
pub struct Resilience<S, K = NoKey>(Wrapped<S, K>);

impl<S: fmt::Debug, K> fmt::Debug for Resilience<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("Resilience", f)
    }
}

impl<S, K, Req> Service<Req> for Resilience<S, K>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    S::Response: Classify + RetryAfter + Send + 'static,
    Req: Clone + Send + 'static,
    K: RequestKey<Req>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    /// With a retry (or any layer but a breaker and a limiter), ready at once: each
    /// attempt waits for its own clone of the inner service. With at most a breaker and a
    /// limiter, the inner service's readiness, as tower's own layers pass it on.
    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    #[inline(always)]
    fn call(&mut self, req: Req) -> Self::Future {
        if self.0.direct {
            return call_direct(&self.0.stack, &mut self.0.inner, req);
        }
        self.call_stack(req)
    }
}

impl<S, K> Resilience<S, K> {
    /// A call through a stack that is not direct: the whole stack in a boxed future.
    #[inline(never)]
    fn call_stack<Req>(&mut self, req: Req) -> ResponseFuture<S, Req>
    where
        S: Service<Req> + Clone + Send + 'static,
        S::Future: Send,
        S::Error: Into<BoxError>,
        S::Response: Classify + RetryAfter + Send + 'static,
        Req: Clone + Send + 'static,
        K: RequestKey<Req>,
    {
        let Wrapped { inner, stack, key, .. } = &self.0;
        let key = key.key(&req);
        let svc = inner.clone();
        let stack = stack.clone();
        ResponseFuture::boxed(Box::pin(async move {
            let stack = &*stack;
            let key = key.as_deref();
            let result = match &stack.retry {
                Some(retry) => {
                    retry
                        .run_async(&Classified, move || {
                            let mut svc = svc.clone();
                            let req = req.clone();
                            async move { stack.attempt(&mut svc, req, key).await }
                        })
                        .await
                }
                None => {
                    let mut svc = svc;
                    stack.attempt(&mut svc, req, key).await
                }
            };
            finish(result)
        }))
    }
}

/// The service of [`CircuitBreakerLayer`], [`RateLimitLayer`], [`BulkheadLayer`] and
/// [`TimeoutLayer`]: one attempt, any request type.
#[derive(Clone)]
pub struct Guarded<S, K = NoKey>(Wrapped<S, K>);

impl<S: fmt::Debug, K> fmt::Debug for Guarded<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("Guarded", f)
    }
}

impl<S, K, Req> Service<Req> for Guarded<S, K>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    S::Response: Classify + Send + 'static,
    Req: Send + 'static,
    K: RequestKey<Req>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    /// A breaker or a limiter (or none): the inner service's readiness, as tower's own
    /// layers pass it on. A bulkhead, a timeout or a keyed layer: ready at once, the call
    /// waits for its own clone of the inner service.
    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    #[inline(always)]
    fn call(&mut self, req: Req) -> Self::Future {
        if self.0.direct {
            return call_direct(&self.0.stack, &mut self.0.inner, req);
        }
        self.call_stack(req)
    }
}

impl<S, K> Guarded<S, K> {
    /// A call through a stack that is not direct: the whole stack in a boxed future.
    #[inline(never)]
    fn call_stack<Req>(&mut self, req: Req) -> ResponseFuture<S, Req>
    where
        S: Service<Req> + Clone + Send + 'static,
        S::Future: Send,
        S::Error: Into<BoxError>,
        S::Response: Classify + Send + 'static,
        Req: Send + 'static,
        K: RequestKey<Req>,
    {
        let Wrapped { inner, stack, key, .. } = &self.0;
        let key = key.key(&req);
        let mut svc = inner.clone();
        let stack = stack.clone();
        ResponseFuture::boxed(Box::pin(async move {
            finish(stack.attempt(&mut svc, req, key.as_deref()).await)
        }))
    }
}

/// Only a retry policy, outermost in a stack you order yourself; its service is a
/// [`Resilience`] (requests must be `Clone`).
///
/// ```
/// use resilience::tower::RetryLayer;
/// use resilience::RetryPolicy;
///
/// let retry = RetryLayer::new(RetryPolicy::builder().max_attempts(3).build()?);
/// # drop(retry);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RetryLayer {
    stack: Arc<Stack>,
}

impl RetryLayer {
    /// Retries with `policy`: transient and throttled responses and errors, after their
    /// `Retry-After` when the policy honours hints.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer { stack: Arc::new(Stack { retry: Some(policy), ..Stack::new() }) }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Resilience<S, NoKey>;

    fn layer(&self, inner: S) -> Resilience<S, NoKey> {
        Resilience(Wrapped::new(inner, &self.stack, NoKey))
    }
}

macro_rules! single_layer {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<K = NoKey> {
            stack: Arc<Stack>,
            key: K,
        }

        impl<K: Clone> Clone for $name<K> {
            fn clone(&self) -> Self {
                $name { stack: self.stack.clone(), key: self.key.clone() }
            }
        }

        impl<S, K: Clone> Layer<S> for $name<K> {
            type Service = Guarded<S, K>;

            fn layer(&self, inner: S) -> Guarded<S, K> {
                Guarded(Wrapped::new(inner, &self.stack, self.key.clone()))
            }
        }
    };
}

single_layer! {
    /// Only a circuit breaker (direct, or keyed by a closure of the request); its
    /// service is a [`Guarded`]. A response counts by its class: a 5xx is a failure
    /// (and still returned as `Ok`), a 404 a success, a 429 neither.
    ///
    /// ```
    /// use resilience::tower::CircuitBreakerLayer;
    /// use resilience::{CircuitBreaker, CircuitBreakerConfig};
    /// use std::sync::Arc;
    ///
    /// let breaker = Arc::new(CircuitBreaker::new("docs-tower-breaker", CircuitBreakerConfig::default()));
    /// let layer = CircuitBreakerLayer::new(breaker);
    /// # drop(layer);
    /// ```
    CircuitBreakerLayer
}

impl CircuitBreakerLayer<NoKey> {
    /// Around `breaker`.
    pub fn new(breaker: Arc<CircuitBreaker>) -> Self {
        CircuitBreakerLayer {
            stack: Arc::new(Stack { breaker: Some(breaker), ..Stack::new() }),
            key: NoKey,
        }
    }

    /// Around `key`'s circuit of `breaker`, the key taken from each request.
    pub fn keyed<F, Req>(
        breaker: Arc<KeyedCircuitBreaker<String>>,
        key: F,
    ) -> CircuitBreakerLayer<KeyFn<F>>
    where
        F: Fn(&Req) -> String,
    {
        let stack = Stack { keyed_breaker: Some(breaker), ..Stack::new() };
        CircuitBreakerLayer { stack: Arc::new(stack), key: KeyFn(key) }
    }
}

single_layer! {
    /// Only a rate limit (direct, or keyed by a closure of the request): each call takes
    /// [`cost`](Self::with_cost) permits, waiting or rejected as the limiter's
    /// [`OnLimit`](crate::OnLimit) says; its service is a [`Guarded`].
    ///
    /// ```
    /// use resilience::tower::RateLimitLayer;
    /// use resilience::{RateLimitConfig, RateLimiter};
    /// use std::sync::Arc;
    ///
    /// let limiter = Arc::new(RateLimiter::new("docs-tower-limit", RateLimitConfig::builder().per_second(10).build()?));
    /// let layer = RateLimitLayer::new(limiter).with_cost(2);
    /// # drop(layer);
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    RateLimitLayer
}

impl RateLimitLayer<NoKey> {
    /// Around `limiter`.
    pub fn new(limiter: Arc<RateLimiter>) -> Self {
        RateLimitLayer {
            stack: Arc::new(Stack { limiter: Some(limiter), ..Stack::new() }),
            key: NoKey,
        }
    }

    /// Around `key`'s bucket of `limiter`, the key taken from each request.
    pub fn keyed<F, Req>(limiter: Arc<KeyedRateLimiter<String>>, key: F) -> RateLimitLayer<KeyFn<F>>
    where
        F: Fn(&Req) -> String,
    {
        let stack = Stack { keyed_limiter: Some(limiter), ..Stack::new() };
        RateLimitLayer { stack: Arc::new(stack), key: KeyFn(key) }
    }
}

impl<K> RateLimitLayer<K> {
    /// Permits each call takes (default 1).
    pub fn with_cost(mut self, cost: u32) -> Self {
        Arc::make_mut(&mut self.stack).cost = cost;
        self
    }
}

impl<K> RateLimitLayer<K> {
    /// The server side of the same limit: in front of an axum or hyper server, a request
    /// over the limit is answered at once with `429 Too Many Requests` (never waiting,
    /// whatever the limiter's [`OnLimit`](crate::OnLimit)) and never reaches the inner
    /// service. See [`TooManyRequestsLayer`].
    pub fn answer_too_many_requests(self) -> TooManyRequestsLayer<K> {
        TooManyRequestsLayer { stack: self.stack, key: self.key }
    }
}

/// A rate limit in front of a server ([`RateLimitLayer::answer_too_many_requests`]),
/// keyed or not (the key from a closure of the request: a peer address, an API key).
///
/// Over the limit, the answer is `429 Too Many Requests` with an empty body and the
/// headers a client (this crate's among them) re-syncs from:
///
/// * `Retry-After`: whole seconds until the permits are back (rounded up);
/// * `RateLimit: "default";r=0;t=<seconds>` and
///   `RateLimit-Policy: "default";q=<burst>;w=<seconds to refill the burst>`
///   (draft-ietf-httpapi-ratelimit-headers).
///
/// An admitted request's response gets `RateLimit` (permits left) and
/// `RateLimit-Policy` too. The inner service's errors pass through unchanged, so the
/// layer fits axum's `Router::layer`. A limiter that cannot decide (a shared store
/// down with fail-closed, a cost above the burst) answers `503 Service Unavailable`.
///
/// ```
/// use http::{Request, Response};
/// use resilience::tower::RateLimitLayer;
/// use resilience::{KeyedRateLimiter, OnLimit, RateLimitConfig};
/// use std::convert::Infallible;
/// use std::sync::Arc;
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// #[derive(Clone)]
/// struct Hello;
/// impl Service<Request<String>> for Hello {
///     type Response = Response<String>;
///     type Error = Infallible;
///     type Future = std::future::Ready<Result<Response<String>, Infallible>>;
///     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
///         std::task::Poll::Ready(Ok(()))
///     }
///     fn call(&mut self, _: Request<String>) -> Self::Future {
///         std::future::ready(Ok(Response::new("hello".into())))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let per_key = Arc::new(KeyedRateLimiter::new(
///     "docs-server-limit",
///     RateLimitConfig::builder().per_second(1).burst(2).build()?,
/// ));
/// let api_key = |r: &Request<String>| {
///     r.headers().get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("anonymous").to_owned()
/// };
/// let mut server = RateLimitLayer::keyed(per_key, api_key).answer_too_many_requests().layer(Hello);
/// let request = || Request::builder().header("x-api-key", "k1").body(String::new());
/// assert_eq!(server.call(request()?).await?.status(), 200);
/// assert_eq!(server.call(request()?).await?.status(), 200);
/// let refused = server.call(request()?).await?;
/// assert_eq!(refused.status(), 429);
/// assert_eq!(refused.headers()["retry-after"], "1");
/// assert_eq!(refused.headers()["ratelimit"], "\"default\";r=0;t=1");
/// assert_eq!(refused.headers()["ratelimit-policy"], "\"default\";q=2;w=2");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TooManyRequestsLayer<K = NoKey> {
    stack: Arc<Stack>,
    key: K,
}

impl<K: Clone> Clone for TooManyRequestsLayer<K> {
    fn clone(&self) -> Self {
        TooManyRequestsLayer { stack: self.stack.clone(), key: self.key.clone() }
    }
}

impl<S, K: Clone> Layer<S> for TooManyRequestsLayer<K> {
    type Service = TooManyRequests<S, K>;

    fn layer(&self, inner: S) -> TooManyRequests<S, K> {
        TooManyRequests { inner, stack: self.stack.clone(), key: self.key.clone() }
    }
}

/// The service of a [`TooManyRequestsLayer`].
pub struct TooManyRequests<S, K = NoKey> {
    inner: S,
    stack: Arc<Stack>,
    key: K,
}

impl<S: Clone, K: Clone> Clone for TooManyRequests<S, K> {
    fn clone(&self) -> Self {
        TooManyRequests {
            inner: self.inner.clone(),
            stack: self.stack.clone(),
            key: self.key.clone(),
        }
    }
}

impl<S: fmt::Debug, K> fmt::Debug for TooManyRequests<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TooManyRequests")
            .field("inner", &self.inner)
            .field("layers", &self.stack)
            .finish()
    }
}

/// Whole seconds of `d`, rounded up.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// What a server tells its clients about the limit.
struct Quota {
    burst: u32,
    /// Time to refill the whole burst.
    window: Duration,
    /// Permits left, and the time until the bucket is full again.
    left: u32,
}

impl Quota {
    fn policy(&self) -> String {
        format!("\"default\";q={};w={}", self.burst, ceil_secs(self.window).max(1))
    }
}

impl Stack {
    /// The limiter's answer for `key` (server side, never waiting): the quota after
    /// taking the permits, or the rejection.
    fn admit(&self, key: Option<&str>) -> Result<Quota, (Error, Option<Quota>)> {
        let (config, taken, left) = match (&self.keyed_limiter, &self.limiter, key) {
            (Some(l), _, Some(key)) => {
                let taken = l.try_acquire(key, self.cost);
                (l.config(), taken, l.available(key))
            }
            (_, Some(l), _) => {
                let taken = l.try_acquire(self.cost);
                (l.config(), taken, l.available())
            }
            _ => return Ok(Quota { burst: 0, window: Duration::ZERO, left: 0 }),
        };
        let burst = config.burst();
        let window = config.rate().interval().saturating_mul(burst);
        let quota = Quota { burst, window, left };
        match taken {
            Ok(()) => Ok(quota),
            Err(e) => Err((e, Some(quota))),
        }
    }
}

fn header(value: String) -> Option<::http::HeaderValue> {
    ::http::HeaderValue::try_from(value).ok()
}

/// The 429 (or 503) answer to a refused request.
fn refusal<B: Default>(error: &Error, quota: Option<&Quota>) -> ::http::Response<B> {
    use ::http::header::RETRY_AFTER;
    let mut response = ::http::Response::new(B::default());
    let Error::RateLimited { .. } = error else {
        *response.status_mut() = ::http::StatusCode::SERVICE_UNAVAILABLE;
        return response;
    };
    *response.status_mut() = ::http::StatusCode::TOO_MANY_REQUESTS;
    let wait = ceil_secs(error.retry_after().unwrap_or(Duration::ZERO)).max(1);
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, ::http::HeaderValue::from(wait));
    if let Some(v) = header(format!("\"default\";r=0;t={wait}")) {
        headers.insert("ratelimit", v);
    }
    if let Some(v) = quota.and_then(|q| header(q.policy())) {
        headers.insert("ratelimit-policy", v);
    }
    response
}

impl<S, K, ReqB, ResB> Service<::http::Request<ReqB>> for TooManyRequests<S, K>
where
    S: Service<::http::Request<ReqB>, Response = ::http::Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Default + Send + 'static,
    K: RequestKey<::http::Request<ReqB>>,
{
    type Response = ::http::Response<ResB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<::http::Response<ResB>, S::Error>> + Send>>;

    /// Ready at once: an admitted request waits for its own clone of the inner service,
    /// and the permits are taken when the request arrives, never here.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: ::http::Request<ReqB>) -> Self::Future {
        let key = self.key.key(&req);
        let quota = match self.stack.admit(key.as_deref()) {
            Ok(quota) => quota,
            Err((e, quota)) => {
                let answer = refusal(&e, quota.as_ref());
                return Box::pin(std::future::ready(Ok(answer)));
            }
        };
        let mut svc = self.inner.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
            let mut response = svc.call(req).await?;
            if quota.burst > 0 {
                let headers = response.headers_mut();
                if let Some(v) = header(format!("\"default\";r={}", quota.left)) {
                    headers.insert("ratelimit", v);
                }
                if let Some(v) = header(quota.policy()) {
                    headers.insert("ratelimit-policy", v);
                }
            }
            Ok(response)
        })
    }
}

single_layer! {
    /// Only a bulkhead: at most its `max_concurrent` calls at once; its service is a
    /// [`Guarded`].
    ///
    /// ```
    /// use resilience::tower::BulkheadLayer;
    /// use resilience::{Bulkhead, BulkheadConfig};
    /// use std::sync::Arc;
    ///
    /// let bulkhead = Arc::new(Bulkhead::new("docs-tower-bulkhead", BulkheadConfig::builder().max_concurrent(8).build()?));
    /// let layer = BulkheadLayer::new(bulkhead);
    /// # drop(layer);
    /// # Ok::<(), resilience::ConfigError>(())
    /// ```
    BulkheadLayer
}

impl BulkheadLayer<NoKey> {
    /// Around `bulkhead`.
    pub fn new(bulkhead: Arc<Bulkhead>) -> Self {
        BulkheadLayer {
            stack: Arc::new(Stack { bulkhead: Some(bulkhead), ..Stack::new() }),
            key: NoKey,
        }
    }
}

single_layer! {
    /// Only a time limit on each call (cut to the deadline of the call when an outer
    /// retry sets one): past it the call's future is dropped and the caller gets
    /// [`Error::Timeout`]; its service is a [`Guarded`].
    ///
    /// ```
    /// use resilience::tower::TimeoutLayer;
    /// use std::time::Duration;
    ///
    /// let layer = TimeoutLayer::new(Duration::from_secs(2));
    /// # drop(layer);
    /// ```
    TimeoutLayer
}

impl TimeoutLayer<NoKey> {
    /// A limit of `limit` per call.
    pub fn new(limit: Duration) -> Self {
        TimeoutLayer { stack: Arc::new(Stack { timeout: Some(limit), ..Stack::new() }), key: NoKey }
    }
}

/// A fallback around a service (see [`fallback`](mod@crate::fallback)): when the call's
/// error is one `on` answers, the caller gets `handler`'s answer to it instead. Its
/// service is a [`Fallback`].
///
/// Put it **outermost**, above a [`ResilienceLayer`] or [`RetryLayer`]: it then sees
/// only the final error, after the retries, and the circuit breaker still counts what
/// the inner service did. `on` is a [`FallbackOn`] over the [`BoxError`]:
/// [`Rejections`](crate::fallback::Rejections) answers an error that is a
/// [`resilience::Error`](crate::Error) (a layer refused the call or cut it short),
/// [`AnyError`](crate::fallback::AnyError) every error, and a closure
/// `Fn(&BoxError) -> bool` those it picks. A response is not an error: a 503 that the
/// retry gave up on reaches the caller as a response, not through the fallback.
///
/// ```
/// use http::StatusCode;
/// use resilience::fallback::Rejections;
/// use resilience::tower::{BoxError, FallbackLayer, TimeoutLayer};
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// #[derive(Clone)]
/// struct Slow;
/// impl Service<()> for Slow {
///     type Response = StatusCode;
///     type Error = Infallible;
///     type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<StatusCode, Infallible>> + Send>>;
///     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
///         std::task::Poll::Ready(Ok(()))
///     }
///     fn call(&mut self, _: ()) -> Self::Future {
///         Box::pin(async {
///             tokio::time::sleep(Duration::from_secs(10)).await;
///             Ok(StatusCode::OK)
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), BoxError> {
/// let stale = |_: BoxError| async { Ok::<_, BoxError>(StatusCode::NON_AUTHORITATIVE_INFORMATION) };
/// let fallback = FallbackLayer::new(Rejections, stale);
/// let mut client = fallback.layer(TimeoutLayer::new(Duration::from_secs(1)).layer(Slow));
/// assert_eq!(client.call(()).await?, StatusCode::NON_AUTHORITATIVE_INFORMATION, "timed out: answered");
/// # Ok(())
/// # }
/// ```
pub struct FallbackLayer<O, H> {
    policy: Arc<FallbackPolicy<O, H>>,
    name: Option<Arc<str>>,
}

struct FallbackPolicy<O, H> {
    on: O,
    handler: H,
}

impl<O, H> Clone for FallbackLayer<O, H> {
    fn clone(&self) -> Self {
        FallbackLayer { policy: self.policy.clone(), name: self.name.clone() }
    }
}

impl<O, H> fmt::Debug for FallbackLayer<O, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer").field("name", &self.name).finish_non_exhaustive()
    }
}

impl<O, H> FallbackLayer<O, H> {
    /// A fallback that answers the errors `on` picks with `handler`, an
    /// `Fn(BoxError) -> impl Future<Output = Result<Response, BoxError>>`.
    pub fn new(on: O, handler: H) -> Self {
        FallbackLayer { policy: Arc::new(FallbackPolicy { on, handler }), name: None }
    }

    /// With a name, which the fallback reports its answers under
    /// ([`EventKind::FallbackUsed`](crate::events::EventKind::FallbackUsed) and the
    /// metric `resilience_fallback_used_total`); without one it reports nothing.
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl<S, O, H> Layer<S> for FallbackLayer<O, H> {
    type Service = Fallback<S, O, H>;

    fn layer(&self, inner: S) -> Fallback<S, O, H> {
        Fallback { inner, policy: self.policy.clone(), name: self.name.clone() }
    }
}

/// The service of [`FallbackLayer`].
pub struct Fallback<S, O, H> {
    inner: S,
    policy: Arc<FallbackPolicy<O, H>>,
    name: Option<Arc<str>>,
}

impl<S: Clone, O, H> Clone for Fallback<S, O, H> {
    fn clone(&self) -> Self {
        Fallback { inner: self.inner.clone(), policy: self.policy.clone(), name: self.name.clone() }
    }
}

impl<S: fmt::Debug, O, H> fmt::Debug for Fallback<S, O, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<S, O, H, HFut, Req> Service<Req> for Fallback<S, O, H>
where
    S: Service<Req>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
    O: FallbackOn<BoxError> + Send + Sync + 'static,
    H: Fn(BoxError) -> HFut + Send + Sync + 'static,
    HFut: Future<Output = Result<S::Response, BoxError>> + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    /// The inner service's readiness: the fallback answers calls, not readiness.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let call = self.inner.call(req);
        let policy = self.policy.clone();
        let name = self.name.clone();
        Box::pin(async move {
            let error: BoxError = match call.await {
                Ok(response) => return Ok(response),
                Err(e) => e.into(),
            };
            let rejected = error.downcast_ref::<Error>().is_some();
            if policy.on.answers(rejected, &error) {
                if let Some(name) = &name {
                    crate::fallback::report(name, rejected);
                }
                (policy.handler)(error).await
            } else {
                Err(error)
            }
        })
    }
}
