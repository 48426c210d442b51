//! [`HedgeLayer`]: hedged requests around a tower service (feature `tower`).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::Hedge;
use crate::tower::{BoxError, BoxFuture};

/// Hedged requests around a tower service: if the call has not answered after the
/// hedge's delay, the same request is sent again on a clone of the service, and the first
/// `Ok` response wins (the other calls' futures are dropped). Its service is a
/// [`Hedged`].
///
/// The request is sent once per attempt, so the service implements `Service<Req>` only
/// for `Req: Clone` (a request that cannot be cloned is a compile error, not a silent
/// single attempt), and the inner service must be `Clone`. An `Ok` response is an answer
/// whatever its status: put a [`RetryLayer`](crate::tower::RetryLayer) outside to retry
/// error responses. In the crate's order the hedge sits inside the retry and outside the
/// circuit breaker, rate limit, bulkhead and timeout (see [`hedge`](super)).
///
/// `poll_ready` reserves nothing: each attempt waits for the readiness of its own clone.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use resilience::hedge::{Hedge, HedgeConfig, HedgeDelay};
/// use resilience::tower::HedgeLayer;
///
/// let config = HedgeConfig::builder().delay(HedgeDelay::Fixed(Duration::from_millis(50))).build()?;
/// let layer = HedgeLayer::new(Arc::new(Hedge::new("replicas", config)));
/// # drop(layer);
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HedgeLayer {
    hedge: Arc<Hedge>,
}

impl HedgeLayer {
    /// Around `hedge`.
    pub fn new(hedge: Arc<Hedge>) -> Self {
        HedgeLayer { hedge }
    }

    /// Around the [`registry()`](crate::registry())'s hedge `name`, created with `config`
    /// on first use (a config set for the name wins).
    pub fn from_registry(
        name: &str,
        config: super::HedgeConfig,
    ) -> Result<Self, crate::ConfigError> {
        Ok(HedgeLayer { hedge: crate::registry().hedges().resolve(name, || Ok(config))? })
    }

    /// The hedge.
    pub fn hedge(&self) -> &Arc<Hedge> {
        &self.hedge
    }
}

impl<S> Layer<S> for HedgeLayer {
    type Service = Hedged<S>;

    fn layer(&self, inner: S) -> Hedged<S> {
        Hedged { inner, hedge: self.hedge.clone() }
    }
}

/// The service of a [`HedgeLayer`].
#[derive(Clone)]
pub struct Hedged<S> {
    inner: S,
    hedge: Arc<Hedge>,
}

impl<S: fmt::Debug> fmt::Debug for Hedged<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedged").field("inner", &self.inner).field("hedge", &self.hedge).finish()
    }
}

impl<S, Req> Service<Req> for Hedged<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    Req: Clone + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let inner = self.inner.clone();
        let hedge = self.hedge.clone();
        Box::pin(async move {
            hedge
                .call_async(move || {
                    let mut svc = inner.clone();
                    let req = req.clone();
                    async move {
                        std::future::poll_fn(|cx| svc.poll_ready(cx)).await.map_err(Into::into)?;
                        svc.call(req).await.map_err(Into::into)
                    }
                })
                .await
        })
    }
}
