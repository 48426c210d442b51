//! The JSON handlers: stats of each kind, a circuit's state, health, metrics.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::{AdminConfig, HealthCircuits};
use crate::circuit::{CircuitState, KeyedCircuitBreaker};
use crate::registry::Registry;

/// What every handler reads: the registry and the config.
#[derive(Clone)]
pub(crate) struct State(Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) registry: &'static Registry,
    pub(crate) config: AdminConfig,
}

impl State {
    pub(crate) fn new(registry: &'static Registry, config: AdminConfig) -> State {
        State(Arc::new(Inner { registry, config }))
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.0
    }
}

/// A 4xx answer: `{"error": message}`.
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, format!("bad path: {}", rejection.body_text()))
    }
}

type Answer = Result<Response, ApiError>;

fn json_ok(value: impl Serialize) -> Answer {
    Ok(Json(value).into_response())
}

fn unknown(kind: &str, name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no {kind} named {name:?}"))
}

const DASHBOARD: &str = include_str!("dashboard.html");

/// `GET /`: the dashboard page.
pub(crate) async fn dashboard() -> Response {
    let mut response = Html(DASHBOARD).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             img-src data:",
        ),
    );
    response
}

/// Any other route.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint (see GET / for the dashboard)")
}

// ----- circuits ---------------------------------------------------------------------

/// A keyed circuit's stats with the state an operator set for every key
/// (`"operator_state": "forced_open" | "disabled" | null`).
fn keyed_json(circuit: &KeyedCircuitBreaker<String>) -> Value {
    let mut value = serde_json::to_value(circuit.stats()).unwrap_or(Value::Null);
    if let Value::Object(object) = &mut value {
        object.insert("operator_state".into(), json!(circuit.operator_state()));
    }
    value
}

/// Whether keyed circuit `circuit` counts as open for `/health`: forced open as a whole,
/// or some key's circuit open.
fn keyed_open(circuit: &KeyedCircuitBreaker<String>) -> bool {
    circuit.operator_state() == Some(CircuitState::ForcedOpen) || circuit.stats().open_keys > 0
}

/// `GET /circuit-breakers`.
pub(crate) async fn circuit_breakers(Extract(state): Extract<State>) -> Answer {
    let registry = state.inner().registry;
    let keyed: Vec<Value> =
        registry.keyed_circuit_breakers().all().iter().map(|(_, c)| keyed_json(c)).collect();
    json_ok(json!({
        "circuit_breakers": registry.circuit_breakers().all_stats(),
        "keyed_circuit_breakers": keyed,
    }))
}

/// `GET /circuit-breakers/{name}`: the plain circuit, else the keyed one.
pub(crate) async fn circuit_breaker(
    Extract(state): Extract<State>,
    name: Result<Path<String>, PathRejection>,
) -> Answer {
    let Path(name) = name?;
    let registry = state.inner().registry;
    if let Some(stats) = registry.circuit_breakers().stats(&name) {
        return json_ok(stats);
    }
    match registry.keyed_circuit_breakers().get(&name) {
        Some(circuit) => json_ok(keyed_json(&circuit)),
        None => Err(unknown("circuit breaker", &name)),
    }
}

const ACCEPTED_STATES: &str = r#"{"state": "closed" | "forced_open" | "disabled"}"#;

/// `POST /circuit-breakers/{name}/state`: token first (nothing is looked at without
/// it), then the name, then the body.
pub(crate) async fn set_state(
    Extract(state): Extract<State>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Answer {
    let inner = state.inner();
    authorize(&inner.config, &headers)?;
    let Path(name) = name?;
    let registry = inner.registry;
    if registry.circuit_breakers().get(&name).is_none()
        && registry.keyed_circuit_breakers().get(&name).is_none()
    {
        return Err(unknown("circuit breaker", &name));
    }
    let wanted = parse_state(&body)?;
    let done = match wanted {
        CircuitState::Closed => registry.reset(&name),
        CircuitState::ForcedOpen => registry.force_open(&name),
        _ => registry.disable(&name),
    };
    if let Err(e) = done {
        return Err(ApiError::new(StatusCode::NOT_FOUND, e.to_string()));
    }
    let now = registry.circuit_breakers().get(&name).map_or(wanted, |b| b.state());
    json_ok(json!({ "name": name, "state": now }))
}

fn parse_state(body: &[u8]) -> Result<CircuitState, ApiError> {
    let bad = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{why}: expected a JSON body {ACCEPTED_STATES}"),
        )
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(&format!("bad JSON ({e})")))?;
    let Some(object) = value.as_object() else {
        return Err(bad("the body is not a JSON object"));
    };
    if let Some(other) = object.keys().find(|k| k.as_str() != "state") {
        return Err(bad(&format!("unknown field {other:?}")));
    }
    match object.get("state").and_then(Value::as_str) {
        Some("closed") => Ok(CircuitState::Closed),
        Some("forced_open") => Ok(CircuitState::ForcedOpen),
        Some("disabled") => Ok(CircuitState::Disabled),
        Some(other) => Err(bad(&format!("unknown state {other:?}"))),
        None => Err(bad("missing string field \"state\"")),
    }
}

/// Refuses a mutation without the configured bearer token.
fn authorize(config: &AdminConfig, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &config.token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "changes over HTTP are off: configure a token with AdminConfig::with_token and \
             send it as `Authorization: Bearer <token>`",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .map(<[u8]>::trim_ascii);
    match given {
        Some(given) if constant_time_eq(given, token) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong bearer token")),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs `Authorization: Bearer <token>`",
        )),
    }
}

/// Whether `a == b`, in a time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

// ----- the other kinds --------------------------------------------------------------

/// `GET /rate-limiters`: direct and keyed, sorted by name.
pub(crate) async fn rate_limiters(Extract(state): Extract<State>) -> Answer {
    json_ok(json!({ "rate_limiters": state.inner().registry.snapshot().rate_limiters }))
}

/// `GET /rate-limiters/{name}`.
pub(crate) async fn rate_limiter(
    Extract(state): Extract<State>,
    name: Result<Path<String>, PathRejection>,
) -> Answer {
    let Path(name) = name?;
    let registry = state.inner().registry;
    match registry.rate_limiters().stats(&name) {
        Some(stats) => json_ok(stats),
        None => match registry.keyed_rate_limiters().stats(&name) {
            Some(stats) => json_ok(stats),
            None => Err(unknown("rate limiter", &name)),
        },
    }
}

/// `GET /bulkheads`.
pub(crate) async fn bulkheads(Extract(state): Extract<State>) -> Answer {
    json_ok(json!({ "bulkheads": state.inner().registry.bulkheads().all_stats() }))
}

/// `GET /bulkheads/{name}`.
pub(crate) async fn bulkhead(
    Extract(state): Extract<State>,
    name: Result<Path<String>, PathRejection>,
) -> Answer {
    let Path(name) = name?;
    match state.inner().registry.bulkheads().stats(&name) {
        Some(stats) => json_ok(stats),
        None => Err(unknown("bulkhead", &name)),
    }
}

/// `GET /retry-budgets`.
pub(crate) async fn retry_budgets(Extract(state): Extract<State>) -> Answer {
    json_ok(json!({ "retry_budgets": state.inner().registry.retry_budgets().all_stats() }))
}

/// `GET /retry-budgets/{name}`.
pub(crate) async fn retry_budget(
    Extract(state): Extract<State>,
    name: Result<Path<String>, PathRejection>,
) -> Answer {
    let Path(name) = name?;
    match state.inner().registry.retry_budgets().stats(&name) {
        Some(stats) => json_ok(stats),
        None => Err(unknown("retry budget", &name)),
    }
}

// ----- health and metrics -----------------------------------------------------------

/// `GET /health`: 503 with the open circuits among those counted.
pub(crate) async fn health(Extract(state): Extract<State>) -> Response {
    let inner = state.inner();
    let registry = inner.registry;
    let mut open: Vec<String> = match &inner.config.health {
        HealthCircuits::All => registry
            .circuit_breakers()
            .all()
            .into_iter()
            .filter(|(_, b)| b.state().is_open())
            .map(|(name, _)| name.to_string())
            .collect(),
        HealthCircuits::Only(names) => names
            .iter()
            .filter(|name| {
                registry.circuit_breakers().get(name).is_some_and(|b| b.state().is_open())
                    || registry.keyed_circuit_breakers().get(name).is_some_and(|c| keyed_open(&c))
            })
            .cloned()
            .collect(),
        HealthCircuits::None => Vec::new(),
    };
    open.sort();
    if open.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "up" }))).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "down", "open": open })))
            .into_response()
    }
}

/// `GET /metrics`: the configured renderer's text.
pub(crate) async fn metrics(Extract(state): Extract<State>) -> Answer {
    let Some(render) = &state.inner().config.metrics else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no metrics renderer configured (see AdminConfig::with_metrics)",
        ));
    };
    // The gauges (and the limiters' grant counts) are read from the registry at scrape
    // time: refresh them before the exporter renders.
    #[cfg(feature = "metrics")]
    crate::metrics::record_gauges(&state.inner().registry.snapshot());
    let text = render();
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], text)
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret!"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn a_state_body_names_one_of_three_states() {
        assert_eq!(parse_state(br#"{"state":"closed"}"#).ok(), Some(CircuitState::Closed));
        assert_eq!(parse_state(br#"{"state":"forced_open"}"#).ok(), Some(CircuitState::ForcedOpen));
        assert_eq!(parse_state(br#"{"state":"disabled"}"#).ok(), Some(CircuitState::Disabled));
        for bad in [&br#"{"state":"open"}"#[..], b"[]", b"", br#"{"state":1}"#, br#"{"x":1}"#] {
            let e = parse_state(bad).err().map(|e| (e.status, e.message));
            assert!(
                matches!(&e, Some((StatusCode::BAD_REQUEST, m)) if m.contains("forced_open")),
                "{e:?}"
            );
        }
    }
}
