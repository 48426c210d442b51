//! An HTTP admin surface for a [`Registry`]: read every circuit, limiter, bulkhead and
//! retry budget as JSON, change a circuit's state, follow the event stream, and watch a
//! live dashboard page during an incident (feature `admin`, on axum).
//!
//! Mount [`router`] into a service's own axum router, or run a listener of its own with
//! [`serve`] (bound to `127.0.0.1` unless [`AdminConfig::bind_ip`] says otherwise):
//!
//! ```no_run
//! use resilience::admin::{self, AdminConfig};
//!
//! # async fn run() -> std::io::Result<()> {
//! let admin = admin::router(resilience::registry(), AdminConfig::new().with_token("s3cret"));
//! let app = axum::Router::new()
//!     // .route("/orders", ...) : the service's own routes
//!     .nest("/resilience", admin);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! # Endpoints
//!
//! Paths are relative to where the router is mounted; names in paths are URL-decoded;
//! every JSON field is snake_case; every error is `{"error": "..."}` with a 4xx status.
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /` | the dashboard: one self-contained page (no CDN, works offline) |
//! | `GET /circuit-breakers` | `{"circuit_breakers": [..], "keyed_circuit_breakers": [..]}`, sorted by name |
//! | `GET /circuit-breakers/{name}` | one circuit's stats (plain, or keyed with the `operator_state` set for every key), 404 if unknown |
//! | `POST /circuit-breakers/{name}/state` | body `{"state": "closed" \| "forced_open" \| "disabled"}`; token required; answers `{"name", "state"}` |
//! | `GET /rate-limiters`, `/rate-limiters/{name}` | `{"rate_limiters": [..]}` (direct and keyed) / one of them |
//! | `GET /bulkheads`, `/bulkheads/{name}` | `{"bulkheads": [..]}` / one of them |
//! | `GET /retry-budgets`, `/retry-budgets/{name}` | `{"retry_budgets": [..]}` / one of them |
//! | `GET /events` | Server-Sent Events (transitions, rejections, waits, retries, budget refusals, timeouts, config reloads; see [`AdminConfig::event_interest`]): each event a JSON object with `type`, `layer`, `name`, `at` (seconds on the instance's clock) and the kind's fields; a `gap` event counts events a slow client missed |
//! | `GET /health` | 200 `{"status": "up"}` when no counted circuit is open, else 503 `{"status": "down", "open": [names]}` |
//! | `GET /metrics` | the text of [`AdminConfig::with_metrics`]'s renderer as `text/plain; version=0.0.4`, 404 when none is set |
//!
//! # Security
//!
//! Reading is open to whoever reaches the listener. Every mutating endpoint requires
//! `Authorization: Bearer <token>` with the token of [`AdminConfig::with_token`],
//! compared in constant time: a missing or wrong token is 401 and changes nothing. With
//! no token configured, mutation is off (403, with a message saying how to enable it).
//! Request bodies are limited ([`AdminConfig::body_limit`], 4 KiB by default), unknown
//! routes are 404, and no request makes a handler panic.
//!
//! # The event stream never slows a call
//!
//! Each `/events` client subscribes to the registry's [events](crate::events) with a
//! bounded buffer ([`AdminConfig::event_buffer`], 1024 events). The observer only tries
//! to push: when the client's buffer is full the event is dropped and counted, and the
//! client receives a `{"type": "gap", "skipped": n}` event once it catches up. A stalled
//! client holds at most its buffer; a closed connection unsubscribes.

mod api;
mod stream;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::events::Interest;
use crate::registry::Registry;

type Renderer = Arc<dyn Fn() -> String + Send + Sync>;

/// Which circuits `/health` counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthCircuits {
    /// Every (plain) circuit breaker of the registry; keyed circuits do not count (one
    /// tenant's open circuit is not the service's health). The default.
    #[default]
    All,
    /// Only the circuits with these names (plain or keyed: a keyed one counts as open
    /// when any key's circuit is).
    Only(Vec<String>),
    /// None: `/health` is always up while the process serves.
    None,
}

/// Options of the admin router: the operator token, the `/metrics` renderer, which
/// circuits `/health` counts, limits.
///
/// ```
/// use resilience::admin::AdminConfig;
///
/// let config = AdminConfig::new()
///     .with_token("s3cret")
///     .health_circuits(["payments", "inventory"])
///     .with_metrics(|| "# no metrics yet\n".to_string());
/// # drop(config);
/// ```
#[derive(Clone)]
pub struct AdminConfig {
    pub(crate) token: Option<Arc<[u8]>>,
    pub(crate) metrics: Option<Renderer>,
    pub(crate) health: HealthCircuits,
    pub(crate) body_limit: usize,
    pub(crate) event_buffer: usize,
    pub(crate) interest: Interest,
    pub(crate) bind_ip: IpAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig::new()
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("metrics", &self.metrics.is_some())
            .field("health", &self.health)
            .field("body_limit", &self.body_limit)
            .field("event_buffer", &self.event_buffer)
            .field("interest", &self.interest)
            .field("bind_ip", &self.bind_ip)
            .finish()
    }
}

impl AdminConfig {
    /// Read-only (no token), no metrics, every circuit counted by `/health`, bodies up
    /// to 4 KiB, 1024 buffered events per stream client, every event topic but the two
    /// reported on every call ([`Interest::CALLS`] and [`Interest::ATTEMPTS`]), bound to
    /// `127.0.0.1` by [`serve`].
    pub fn new() -> Self {
        AdminConfig {
            token: None,
            metrics: None,
            health: HealthCircuits::All,
            body_limit: 4 * 1024,
            event_buffer: 1024,
            interest: Interest::ALL.without(Interest::CALLS | Interest::ATTEMPTS),
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    /// Allow the mutating endpoints for requests carrying `Authorization: Bearer <token>`.
    /// An empty token allows nothing.
    pub fn with_token(mut self, token: impl AsRef<str>) -> Self {
        let token = token.as_ref().as_bytes();
        self.token = if token.is_empty() { None } else { Some(Arc::from(token)) };
        self
    }

    /// Serve `render()`'s text at `GET /metrics` as `text/plain; version=0.0.4` (the
    /// Prometheus text format). With the `metrics` feature, each scrape first refreshes
    /// the gauges from the router's registry (`metrics::record_gauges`),
    /// so they are current without a timer. With the `metrics-exporter-prometheus` crate, pass its
    /// handle's `render`:
    ///
    /// ```
    /// # use resilience::admin::AdminConfig;
    /// # struct PrometheusHandle;
    /// # impl PrometheusHandle { fn render(&self) -> String { String::new() } }
    /// # let handle = PrometheusHandle;
    /// // let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    /// let config = AdminConfig::new().with_metrics(move || handle.render());
    /// # drop(config);
    /// ```
    pub fn with_metrics(mut self, render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.metrics = Some(Arc::new(render));
        self
    }

    /// Count only these circuits in `/health` (see [`HealthCircuits`]).
    pub fn health_circuits<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.health = HealthCircuits::Only(names.into_iter().map(Into::into).collect());
        self
    }

    /// Which circuits `/health` counts.
    pub fn health(mut self, circuits: HealthCircuits) -> Self {
        self.health = circuits;
        self
    }

    /// The largest request body accepted (larger ones are refused with 413).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Events buffered for each `/events` client (at least 1); more are dropped and
    /// counted in a `gap` event.
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events.max(1);
        self
    }

    /// The event topics `/events` delivers. [`Interest::CALLS`] and [`Interest::ATTEMPTS`]
    /// are off by default: they are reported on every call (not only on trouble), and the
    /// stats endpoints count calls already.
    pub fn event_interest(mut self, interest: Interest) -> Self {
        self.interest = interest;
        self
    }

    /// The address [`serve`] and [`AdminServer::bind`] listen on (`127.0.0.1` unless
    /// set; `0.0.0.0` exposes the admin surface to the network).
    pub fn bind_ip(mut self, ip: IpAddr) -> Self {
        self.bind_ip = ip;
        self
    }
}

/// The admin router over `registry`, to nest into a service's router
/// (`.nest("/resilience", router(registry(), config))`) or to serve alone.
pub fn router(registry: &'static Registry, config: AdminConfig) -> Router {
    let limit = config.body_limit;
    let state = api::State::new(registry, config);
    Router::new()
        .route("/", get(api::dashboard))
        .route("/circuit-breakers", get(api::circuit_breakers))
        .route("/circuit-breakers/{name}", get(api::circuit_breaker))
        .route("/circuit-breakers/{name}/state", post(api::set_state))
        .route("/rate-limiters", get(api::rate_limiters))
        .route("/rate-limiters/{name}", get(api::rate_limiter))
        .route("/bulkheads", get(api::bulkheads))
        .route("/bulkheads/{name}", get(api::bulkhead))
        .route("/retry-budgets", get(api::retry_budgets))
        .route("/retry-budgets/{name}", get(api::retry_budget))
        .route("/events", get(stream::events))
        .route("/health", get(api::health))
        .route("/metrics", get(api::metrics))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// An admin listener bound to its address, not yet serving.
///
/// ```no_run
/// use resilience::admin::{AdminConfig, AdminServer};
///
/// # async fn run() -> std::io::Result<()> {
/// let server = AdminServer::bind(resilience::registry(), 0, AdminConfig::new()).await?;
/// println!("dashboard: http://{}/", server.local_addr());
/// server.run().await
/// # }
/// ```
pub struct AdminServer {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    router: Router,
}

impl fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl AdminServer {
    /// Bind `port` (0 picks a free one) on the config's address (`127.0.0.1` unless
    /// [`AdminConfig::bind_ip`] says otherwise), serving [`router`] at the root.
    pub async fn bind(
        registry: &'static Registry,
        port: u16,
        config: AdminConfig,
    ) -> std::io::Result<AdminServer> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(config.bind_ip, port)).await?;
        let addr = listener.local_addr()?;
        Ok(AdminServer { listener, addr, router: router(registry, config) })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve until the process ends (or the listener fails).
    pub async fn run(self) -> std::io::Result<()> {
        axum::serve(self.listener, self.router).await
    }

    /// Serve until `shutdown` completes, then stop accepting and let open requests
    /// finish (an `/events` stream ends with the connection).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await
    }
}

/// Serve the admin surface of the global [`registry()`](crate::registry()) on `port` of
/// `127.0.0.1` (or [`AdminConfig::bind_ip`]) until the process ends.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// resilience::admin::serve(9090, resilience::admin::AdminConfig::new()).await
/// # }
/// ```
pub async fn serve(port: u16, config: AdminConfig) -> std::io::Result<()> {
    AdminServer::bind(crate::registry(), port, config).await?.run().await
}
