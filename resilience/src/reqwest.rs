//! A [`reqwest-middleware`](reqwest_middleware) middleware over the same configs, presets
//! and named instances (feature `reqwest`; no TLS backend is enabled by this crate).
//!
//! [`ResilienceMiddleware`] runs every request through the layers of a
//! [`ResilienceConfig`] in the crate's fixed order, as the
//! [tower layer](crate::tower::ResilienceLayer) does:
//!
//! * **Responses are classified** like [`http::Response`](crate::http)s: a 5xx (but 501,
//!   505, 511), 408 or 425 is retried and counts as a failure for the circuit breaker; a
//!   429, or a 503 with `Retry-After`, is retried after the server's `Retry-After`
//!   (capped by the backoff's `max_delay`) and counts as neither; any other 4xx is
//!   returned at once. When the attempts run out, the caller gets the last response.
//! * **The limiter re-syncs from each response's headers** (`Retry-After`,
//!   `X-RateLimit-*`, the IETF `RateLimit` fields, Shopify's call limit; see
//!   [`RateLimiter::sync_from_headers`](crate::RateLimiter::sync_from_headers)).
//! * **Only idempotent requests are retried** by default (RFC 9110: GET, HEAD, OPTIONS,
//!   PUT, DELETE, TRACE), and any request carrying an `Idempotency-Key` header. A connect
//!   error (nothing was sent) is retried for every method. The rest is opt-in per request
//!   with the [`Retryable`] extension. A request whose body cannot be cloned (a stream)
//!   is sent once.
//! * **One circuit and one bucket per upstream host** by default (`host:port` of the URL),
//!   as keyed instances of the registry called like the middleware; or one for every
//!   host ([`one_instance`](ResilienceMiddleware::one_instance)), or keyed by a closure
//!   of your own ([`key_by`](ResilienceMiddleware::key_by)).
//!
//! ```
//! use resilience::reqwest::ResilienceMiddleware;
//! use resilience::Preset;
//!
//! // One circuit and one bucket per tenant, from the request's `x-tenant` header.
//! let per_tenant = ResilienceMiddleware::from_preset("docs-reqwest-tenants", Preset::Api)?
//!     .key_by(|r: &reqwest::Request| {
//!         r.headers().get("x-tenant").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
//!     })?;
//! # drop(per_tenant);
//! # Ok::<(), resilience::ConfigError>(())
//! ```
//!
//! A layer's rejection is a [`reqwest_middleware::Error::Middleware`] holding the
//! [`resilience::Error`](crate::Error) (`e.downcast_ref::<resilience::Error>()`).
//!
//! ```no_run
//! use reqwest_middleware::ClientBuilder;
//! use resilience::reqwest::{ResilienceMiddleware, Retryable};
//! use resilience::Preset;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(ResilienceMiddleware::from_preset("github", Preset::Api)?)
//!     .build();
//! // GET: retried on 5xx and 429, after the server's Retry-After.
//! let repo = client.get("http://api.example.com/repos/1").send().await?;
//! // POST: sent once unless it says it is safe to repeat.
//! let created = client
//!     .post("http://api.example.com/repos")
//!     .header("Idempotency-Key", "4f7c")
//!     .send()
//!     .await?;
//! // Or opt in for one request.
//! let run = client.post("http://api.example.com/jobs").with_extension(Retryable).send().await?;
//! # drop((repo, created, run));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::http::{Extensions, Method};
use ::reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::classify::{Classify, ErrorClass, RetryAfter};
use crate::http::{class_of, retry_after};
use crate::presets::{Preset, ResilienceConfig};
use crate::retry::Classified;
use crate::tower::Stack;
use crate::{ConfigError, Error, Fault, registry};

/// A request extension that makes a non-idempotent request (a POST, a PATCH) retryable:
/// `client.post(url).with_extension(Retryable)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retryable;

/// Whether RFC 9110 calls `method` idempotent: GET, HEAD, OPTIONS, PUT, DELETE, TRACE.
///
/// ```
/// use http::Method;
/// use resilience::reqwest::is_idempotent;
///
/// assert!(is_idempotent(&Method::PUT));
/// assert!(!is_idempotent(&Method::POST));
/// assert!(!is_idempotent(&Method::PATCH));
/// ```
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Where the middleware takes a request's key.
#[derive(Clone)]
enum Keying {
    Host,
    One,
    By(Arc<dyn Fn(&Request) -> String + Send + Sync>),
}

/// The layers of a [`ResilienceConfig`] as a `reqwest-middleware` middleware (see the
/// [module](self)).
#[derive(Clone)]
pub struct ResilienceMiddleware {
    name: Arc<str>,
    config: ResilienceConfig,
    stack: Arc<Stack>,
    keying: Keying,
}

impl fmt::Debug for ResilienceMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keying = match self.keying {
            Keying::Host => "host",
            Keying::One => "one instance",
            Keying::By(_) => "closure",
        };
        f.debug_struct("ResilienceMiddleware")
            .field("name", &self.name)
            .field("layers", &self.stack)
            .field("keyed_by", &keying)
            .finish()
    }
}

impl ResilienceMiddleware {
    /// Every layer of `config`, with the registry's keyed instances called `name` (one
    /// circuit and one bucket per host).
    pub fn from_config(name: &str, config: &ResilienceConfig) -> Result<Self, ConfigError> {
        Ok(ResilienceMiddleware {
            name: Arc::from(name),
            config: config.clone(),
            stack: Arc::new(Stack::from_config(name, config, true)?),
            keying: Keying::Host,
        })
    }

    /// The layers of a built-in preset (per host, as every middleware).
    pub fn from_preset(name: &str, preset: Preset) -> Result<Self, ConfigError> {
        Self::from_config(name, &preset.config())
    }

    /// The layers of the config the [`registry()`] holds under `name`; a name it does not
    /// know is an error.
    pub fn named(name: &str) -> Result<Self, ConfigError> {
        let config = registry().preset(name).ok_or_else(|| {
            ConfigError::new("name", format!("the registry has no config named `{name}`"))
        })?;
        Self::from_config(name, &config)
    }

    /// One circuit and one bucket for every host: the registry's instances called like
    /// the middleware, shared with `#[resilient(name = ..)]` of that name.
    pub fn one_instance(self) -> Result<Self, ConfigError> {
        Ok(ResilienceMiddleware {
            stack: Arc::new(Stack::from_config(&self.name, &self.config, false)?),
            keying: Keying::One,
            ..self
        })
    }

    /// One circuit and one bucket per key that `key` gives a request (a tenant header, a
    /// path prefix) instead of per host.
    pub fn key_by(
        self,
        key: impl Fn(&Request) -> String + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        let stack = match self.keying {
            Keying::One => Arc::new(Stack::from_config(&self.name, &self.config, true)?),
            _ => self.stack.clone(),
        };
        Ok(ResilienceMiddleware { stack, keying: Keying::By(Arc::new(key)), ..self })
    }

    fn key(&self, request: &Request) -> Option<String> {
        match &self.keying {
            Keying::Host => {
                let url = request.url();
                let host = url.host_str().unwrap_or_default();
                Some(match url.port_or_known_default() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                })
            }
            Keying::One => None,
            Keying::By(f) => Some(f(request)),
        }
    }
}

/// A failed attempt: its true class (for the breaker) and whether it may be retried.
enum Failed {
    Response(Response, ErrorClass, bool),
    Error(reqwest_middleware::Error, ErrorClass, bool),
}

impl fmt::Debug for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failed::Response(r, ..) => write!(f, "Response({})", r.status()),
            Failed::Error(e, ..) => write!(f, "Error({e})"),
        }
    }
}

impl Classify for Failed {
    /// Permanent when the request may not be repeated: not retried.
    fn class(&self) -> ErrorClass {
        match self {
            Failed::Response(_, class, true) | Failed::Error(_, class, true) => *class,
            _ => ErrorClass::Permanent,
        }
    }

    /// By the true class, retried or not.
    fn breaker_outcome(&self) -> crate::circuit::CallOutcome {
        match self {
            Failed::Response(_, class, _) | Failed::Error(_, class, _) => class.breaker_outcome(),
        }
    }
}

impl RetryAfter for Failed {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failed::Response(r, ..) => retry_after(r.headers()),
            Failed::Error(..) => None,
        }
    }
}

/// The class of a client error: a rejection of an inner layer by its class, a request
/// that could not be built or redirected permanent, anything else (connect, timeout,
/// body) transient.
fn error_class(e: &reqwest_middleware::Error) -> ErrorClass {
    match e {
        reqwest_middleware::Error::Reqwest(e) if e.is_builder() || e.is_redirect() => {
            ErrorClass::Permanent
        }
        reqwest_middleware::Error::Reqwest(_) => ErrorClass::Transient,
        reqwest_middleware::Error::Middleware(e) => {
            e.downcast_ref::<Error>().map_or(ErrorClass::Transient, Error::class)
        }
    }
}

#[async_trait::async_trait]
impl Middleware for ResilienceMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let key = self.key(&req);
        let key = key.as_deref();
        let repeatable = is_idempotent(req.method())
            || req.headers().contains_key("idempotency-key")
            || extensions.get::<Retryable>().is_some();
        let stack = &*self.stack;
        let attempt = |req: Request, mut ext: Extensions| {
            let next = next.clone();
            let inner = async move {
                match next.run(req, &mut ext).await {
                    Ok(response) => {
                        stack.sync_from(key, response.headers());
                        match class_of(response.status(), response.headers()) {
                            Some(class) if class.is_retryable() => {
                                Err(Fault::Inner(Failed::Response(response, class, repeatable)))
                            }
                            _ => Ok(response),
                        }
                    }
                    Err(e) => {
                        let connect =
                            matches!(&e, reqwest_middleware::Error::Reqwest(r) if r.is_connect());
                        let class = error_class(&e);
                        Err(Fault::Inner(Failed::Error(e, class, repeatable || connect)))
                    }
                }
            };
            stack.attempt_with(key, inner)
        };
        let result = match (stack.retry(), req.try_clone()) {
            (Some(retry), Some(_)) => {
                retry
                    .run_async(&Classified, || {
                        let ext = extensions.clone();
                        let copy = req.try_clone();
                        async move {
                            match copy {
                                Some(copy) => attempt(copy, ext).await,
                                // Cloned once already: the body is not a stream.
                                None => Err(Fault::Rejected(Error::Config(ConfigError::new(
                                    "body",
                                    "the request body cannot be sent again",
                                )))),
                            }
                        }
                    })
                    .await
            }
            _ => attempt(req, extensions.clone()).await,
        };
        match result {
            Ok(response) | Err(Fault::Inner(Failed::Response(response, ..))) => Ok(response),
            Err(Fault::Inner(Failed::Error(e, ..))) => Err(e),
            Err(Fault::Rejected(e)) => Err(reqwest_middleware::Error::middleware(e)),
        }
    }
}
